#!/usr/bin/env python3
"""Reference fixtures for the embedded demo models (Models/demo), rebuilt from scratch:

    /work/main/.venv/bin/python Tests/Reference/demo/make_demo_fixtures.py

Writes Tests/Fixtures/demo-models/:
  cases.json              diffusers parity cases (DemoModelParityTests): txt2img on Models/demo/base,
                          x4 upscales on Models/demo/x4, each with the PNG diffusers produced
  expected/<case>.png     diffusers' output_type="pil" image
  scenes/<i>-64.png       held-out scenes rendered exactly (Training/scenes.py), the upscaler's targets
  scenes/<i>-16.png       the same scenes rendered at 16 px (box filter of the 64 px render), its inputs
  scenes.json             caption of each scene (DemoUpscalerPSNRTests)

torch runs with 1 thread (results do not depend on the core count); the models are loaded from the
committed fp16 folders with dtype float32, as Atelier computes.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import warnings

warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "Training"))
import scenes  # noqa: E402

from diffusers import StableDiffusionPipeline, StableDiffusionUpscalePipeline  # noqa: E402

OUT = REPO / "Tests" / "Fixtures" / "demo-models"
MODELS = REPO / "Models" / "demo"


def main() -> None:
    torch.set_num_threads(1)
    if OUT.exists():
        shutil.rmtree(OUT)
    (OUT / "expected").mkdir(parents=True)
    (OUT / "scenes").mkdir()
    held = scenes.held_out_captions()

    # exact held-out scenes: 64 px targets and 16 px inputs
    rng = random.Random(77)
    scene_list = []
    for i, cap in enumerate(held[50:66]):
        sc = scenes.sample_scene(rng, fixed=cap)
        hi = scenes.render(sc, 64)
        lo = hi.reshape(16, 4, 16, 4, 3).mean(axis=(1, 3)).round().astype(np.uint8)
        Image.fromarray(hi).save(OUT / "scenes" / f"{i}-64.png")
        Image.fromarray(lo).save(OUT / "scenes" / f"{i}-16.png")
        scene_list.append({"caption": cap, "target": f"scenes/{i}-64.png", "input": f"scenes/{i}-16.png"})
    (OUT / "scenes.json").write_text(json.dumps(scene_list, indent=2) + "\n")

    base = StableDiffusionPipeline.from_pretrained(str(MODELS / "base"), torch_dtype=torch.float32, safety_checker=None)
    x4 = StableDiffusionUpscalePipeline.from_pretrained(str(MODELS / "x4"), torch_dtype=torch.float32)
    for p in (base, x4):
        p.set_progress_bar_config(disable=True)
    cases = []
    for i, cap in enumerate(held[:4]):
        cases.append(dict(name=f"t2i-{i}", model="base", prompt=cap, seed=100 + i, steps=20, guidance=5.0,
                          width=64, height=64, noise_level=None, init_image=None))
    cases.append(dict(name="t2i-negative-96x64", model="base", prompt=held[4], negative_prompt="a black background",
                      seed=7, steps=10, guidance=7.5, width=96, height=64, noise_level=None, init_image=None))
    for i in range(2):
        cases.append(dict(name=f"x4-{i}", model="x4", prompt=scene_list[i]["caption"], seed=200 + i, steps=20,
                          guidance=1.0, width=None, height=None, noise_level=20, init_image=scene_list[i]["input"]))
    cases.append(dict(name="x4-guided", model="x4", prompt=scene_list[2]["caption"], seed=5, steps=10,
                      guidance=4.0, width=None, height=None, noise_level=40, init_image=scene_list[2]["input"]))
    for c in cases:
        c.setdefault("negative_prompt", "")
        g = torch.Generator("cpu").manual_seed(c["seed"])
        if c["model"] == "base":
            img = base(c["prompt"], negative_prompt=c["negative_prompt"], num_inference_steps=c["steps"],
                       guidance_scale=c["guidance"], width=c["width"], height=c["height"], generator=g,
                       output_type="pil").images[0]
        else:
            inp = Image.open(OUT / c["init_image"]).convert("RGB")
            img = x4(c["prompt"], image=inp, negative_prompt=c["negative_prompt"], num_inference_steps=c["steps"],
                     guidance_scale=c["guidance"], noise_level=c["noise_level"], generator=g,
                     output_type="pil").images[0]
        c["expected"] = f"expected/{c['name']}.png"
        img.save(OUT / c["expected"])
        print(c["name"], img.size)
    (OUT / "cases.json").write_text(json.dumps(cases, indent=2) + "\n")


if __name__ == "__main__":
    main()
