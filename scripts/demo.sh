#!/usr/bin/env bash
# The main job, on a fresh Debian machine: install, build, then run a real farm on loopback —
# one coordinator, two workers serving the embedded demo models (Models/demo: SD2 architecture,
# trained on procedural scenes) — submit a batch of held-out captions the models never saw in
# training, then a tiled x4 upscale of the first result, and lay everything out on one contact
# sheet with the captions under the pictures.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# A debug build by default: the embedded models are tiny and render in seconds unoptimised.
# Without the default traits (Package.swift): the demo's coordinator keeps its queue in SQLite and
# serves no status page, so it needs neither PostgresNIO nor Hummingbird, nor the SwiftNIO and
# BoringSSL they bring; the same CLI otherwise. ATELIER_DEMO_BUILD=release for real SD2 weights.
config=${ATELIER_DEMO_BUILD:-debug}
swift build -c "$config" --product atelier --disable-default-traits
A=.build/$config/atelier
out=${1:-demo-out}
rm -rf "$out/batch" "$out/upscale" "$out/contact-sheet.png"
mkdir -p "$out"
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

# 11 held-out captions (Models/demo/heldout-captions.txt: never in the training set).
head -n 11 Models/demo/heldout-captions.txt > "$data/prompts.txt"
batch=$($A submit --prompts-file "$data/prompts.txt" --seed 42 --steps 20 --scheduler ddim --guidance 5 --width 64 --height 64)
echo "submitted batch $batch ($(wc -l < "$data/prompts.txt") held-out captions, 64×64)"
$A wait "$batch" --out "$out/batch"

# A tiled x4 upscale of the first picture: 64 px → 256 px in 9 tiles of 32 px with 8 px overlap.
first=$(head -n 1 "$data/prompts.txt")
upscale=$($A submit-upscale --image "$out/batch/0.png" --prompt "$first" --seed 7 --steps 20 --guidance 1 --noise-level 20 --tile 32 --overlap 8)
echo "submitted tiled upscale $upscale"
$A wait "$upscale" --out "$out/upscale"
$A status "$upscale" | head -2

sheet=$($A contact-sheet "$out"/batch/{0..10}.png "$out/upscale/upscaled.png" --columns 4 --output "$out/contact-sheet.png")
echo
echo "pictures:      $out/batch/0.png … $out/batch/10.png (64×64)"
echo "x4 upscale:    $out/upscale/upscaled.png (256×256, of batch/0.png)"
echo "contact sheet: $sheet"
