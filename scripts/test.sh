#!/usr/bin/env bash
# The test command: set everything up, build, run every test. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
# The AVX-512 GEMM path, bit for bit, even where the CPU has no AVX-512 (seconds).
bash scripts/avx512-emulation-check.sh
swift build --build-tests
swift test --skip-build 2>&1 | tee /tmp/atelier-test.log
