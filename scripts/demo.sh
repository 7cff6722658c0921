#!/usr/bin/env bash
# The main job: set everything up, build, and run Atelier on the embedded default model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build -c release --product atelier
.build/release/atelier inspect "$@"
