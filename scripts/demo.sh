#!/usr/bin/env bash
# The main job, on a fresh Debian machine: install, build, then run a real farm on loopback —
# one coordinator, two workers serving the embedded tiny SD2 models — submit a 6-image batch and
# a tiled x4 upscale, wait for both and write the PNGs to ./demo-out/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build -c release --product atelier
A=.build/release/atelier
out=${1:-demo-out}
data=$(mktemp -d /tmp/atelier-demo.XXXXXX)
export ATELIER_COORDINATOR=${ATELIER_COORDINATOR:-tcp://127.0.0.1:7733}
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT

$A coordinator --data "$data" 2>"$data/coordinator.log" & pids+=($!)
$A worker --name demo-worker-1 2>"$data/worker-1.log" & pids+=($!)
$A worker --name demo-worker-2 2>"$data/worker-2.log" & pids+=($!)

# Wait until both workers have registered (they load their models first).
for _ in $(seq 1 120); do
  [ "$($A workers 2>/dev/null | grep -c ' alive ')" -ge 2 ] && break
  sleep 0.5
done
$A workers

batch=$($A submit "a lighthouse at dusk" "a red fox in snow" --count 3 --seed 42 --steps 20)
echo "submitted batch $batch (2 prompts × 3 images)"
input="Tests/Fixtures/demo/pattern-96x64.png"   # 12 tiles of 32 px with 8 px overlap
upscale=$($A submit-upscale --image "$input" --prompt "a lighthouse" --seed 7 --steps 20 --tile 32 --overlap 8)
echo "submitted tiled upscale $upscale"
$A wait "$batch" --out "$out/batch"
$A wait "$upscale" --out "$out/upscale"
$A status "$upscale" | head -2
echo "results:"; ls -l "$out"/batch "$out"/upscale
