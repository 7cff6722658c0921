#!/usr/bin/env bash
# The load benchmark: 10,000 tasks queued in 10 jobs on one coordinator (default options), drained
# by 32 `atelier worker --engine noop` processes over loopback TCP. Prints dispatch throughput,
# lease latency (p50/p99), the coordinator's peak RSS (VmHWM), and checks that every task was done
# exactly once and its result is fetchable. Options: --tasks N --jobs N --workers N --probes N.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
CONFIG=${ATELIER_SUITE_CONFIG:-release}
if [ "$CONFIG" = debug ]; then
  swift build --build-tests   # the build CI makes (a --product build can leave a plan that makes it build far more)
else
  swift build -c "$CONFIG" --product atelier
  swift build -c "$CONFIG" --product atelier-chaos
fi
ulimit -n 65536 2>/dev/null || true
exec ".build/$CONFIG/atelier-chaos" load --atelier ".build/$CONFIG/atelier" "$@"
