#!/usr/bin/env bash
# The test command: set everything up, build, run every test. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build --build-tests
swift test --skip-build 2>&1 | tee /tmp/atelier-test.log
