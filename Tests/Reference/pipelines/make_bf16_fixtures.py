#!/usr/bin/env python3
"""diffusers in bf16 on the committed pipeline fixtures: the reference Atelier's `--precision bf16`
is compared with (issue 8: "report the bf16 mode's image-level deviation from diffusers fp32 and
from diffusers bf16 on the parity fixtures").

Every case of Tests/Fixtures/pipelines/cases.json whose model is not the depth model is rendered
again by the same diffusers pipeline loaded with `dtype=torch.bfloat16` (diffusers' usual bf16
mode: every network and activation in bf16), with the same arguments and seed, into
Tests/Fixtures/pipelines/expected-bf16/<name>.png; cases-bf16.json lists them. The fp32 fixtures
are not touched. The depth model's DPT estimator and depth maps stay out (its own fp32 parity
is covered elsewhere).

    .venv/bin/python Tests/Reference/pipelines/make_bf16_fixtures.py
"""
import json
import sys
from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import make_pipeline_fixtures as fx  # noqa: E402


def load_bf16(models_dir: Path, name: str, cls):
    pipe = cls.from_pretrained(str(models_dir / name), dtype=torch.bfloat16, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    for comp in pipe.components.values():
        if isinstance(comp, nn.Module):
            assert all(p.dtype == torch.bfloat16 for p in comp.parameters()), type(comp).__name__
    return pipe


def main() -> None:
    root = fx.REPO / "Tests" / "Fixtures" / "pipelines"
    torch.set_num_threads(1)
    cases = [c for c in json.loads((root / "cases.json").read_text()) if c["model"] != "tiny-depth"]
    (root / "expected-bf16").mkdir(exist_ok=True)
    pipes, base_sched = {}, {}
    for key in sorted({(c["model"], c["mode"]) for c in cases}):
        p = load_bf16(root / "models", key[0], fx.MODE_CLASSES[key[1]])
        pipes[key], base_sched[key] = p, p.scheduler
    out = []
    for case in cases:
        case = dict(case, debug=None)
        image, *_ = fx.run_case(pipes, base_sched, root, case)
        rel = f"expected-bf16/{case['name']}.png"
        image.save(root / rel)
        out.append({"name": case["name"], "expected_bf16": rel})
        print(case["name"], flush=True)
    (root / "cases-bf16.json").write_text(json.dumps(
        {"generator": "Tests/Reference/pipelines/make_bf16_fixtures.py",
         "versions": {"torch": torch.__version__, "diffusers": fx.diffusers.__version__},
         "cases": out}, indent=1) + "\n")


if __name__ == "__main__":
    main()
