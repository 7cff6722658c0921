#!/usr/bin/env bash
# The benchmark of record (issue 8): Atelier vs diffusers/PyTorch on the same random-weight
# full-size SD2 models, same machine, same run, same thread count. Builds the release `atelier`,
# then runs Tests/Reference/bench_of_record.py (which builds the models into .models/bench/ once).
# Needs the reference virtualenv (Tests/Reference/README.md): $ATELIER_REF_PYTHON, else
# .venv/bin/python, else /work/main/.venv/bin/python.
# Options go to the script: --quick (smoke run, minutes), --only unet512,vae512,…, --json out.json,
# --precisions fp32,bf16, --threads 2, --reps 3, --rounds 3 (sides taking turns), --upscale-steps 2, --torch-bf16 cast|autocast,
# --torch-cap 900 (PyTorch bf16 without native bf16: killed after that many seconds, a lower bound).
# The full run takes about an hour and a half on 2 cores; run nothing else meanwhile.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${ATELIER_REF_PYTHON:-}
if [ -z "$PY" ]; then
  for candidate in .venv/bin/python /work/main/.venv/bin/python; do
    if [ -x "$candidate" ]; then PY=$candidate; break; fi
  done
fi
if [ -z "$PY" ] || ! "$PY" -c 'import torch, diffusers, transformers' 2>/dev/null; then
  echo "bench-record: no reference virtualenv with torch and diffusers; see Tests/Reference/README.md (or set ATELIER_REF_PYTHON)" >&2
  exit 2
fi
swift build -c release --product atelier
exec "$PY" Tests/Reference/bench_of_record.py --atelier .build/release/atelier "$@"
