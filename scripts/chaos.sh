#!/usr/bin/env bash
# The chaos suite: a real coordinator (default options) and real workers on loopback, serving the
# embedded tiny models, while ≥ 50 worker kill -9s, 5 coordinator kill -9s (restarted on the same
# data folder), a worker SIGSTOPped past its lease, a 10× slower straggler and (as root) a full
# tmpfs under the coordinator hit them. Prints a table of faults and of images expected, received,
# lost, duplicated, mismatched (vs. `atelier render`) and corrupt; exits 1 if any of the last four
# is non-zero. `scripts/chaos.sh --quick` is CI's one-minute lane. Logs are kept on failure
# (ATELIER_CHAOS_KEEP=1 keeps them always).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
CONFIG=${ATELIER_SUITE_CONFIG:-debug}
if [ "$CONFIG" = debug ]; then
  swift build --build-tests   # the build CI makes (a --product build can leave a plan that makes it build far more)
else
  swift build -c "$CONFIG" --product atelier
  swift build -c "$CONFIG" --product atelier-chaos
fi
exec ".build/$CONFIG/atelier-chaos" chaos --atelier ".build/$CONFIG/atelier" "$@"
