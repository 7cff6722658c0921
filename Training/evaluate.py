#!/usr/bin/env python3
"""Render held-out captions with diffusers and score them with the pixel checker.

    /work/main/.venv/bin/python Training/evaluate.py [--ckpt | --model Models/demo/base] [-n 50]

--ckpt evaluates the training checkpoints in .train-logs/ (EMA UNet) before export.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import checker  # noqa: E402
import scenes  # noqa: E402
import train  # noqa: E402


def pipeline_from_ckpt():
    from diffusers import DDIMScheduler, StableDiffusionPipeline
    L = torch.load(train.WORK / "latents.pt", weights_only=True)
    vae = train.make_vae()
    train.load_ckpt("vae", vae=vae)
    if (train.WORK / "vaedec.pt").exists():
        train.load_ckpt("vaedec", vae=vae)
    vae.register_to_config(scaling_factor=L["scaling_factor"])
    te = train.make_te()
    unet = train.make_unet(train.UNET_CONFIG)
    ema = train.EMA(unet, 0.999)
    ck = torch.load(train.WORK / "base.pt", weights_only=True)
    te.load_state_dict(ck["te"])
    ema.load_state_dict(ck["ema"])
    print("base step", ck["step"])
    sched = DDIMScheduler.from_config(train.BASE_SCHEDULER)
    return StableDiffusionPipeline(vae=vae.eval(), text_encoder=te.eval(), tokenizer=train.tokenizer(),
                                   unet=ema.shadow.eval(), scheduler=sched, safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model")
    ap.add_argument("--ckpt", action="store_true")
    ap.add_argument("-n", type=int, default=50)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--guidance", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--grid", default=str(train.WORK / "eval.png"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.ckpt:
        pipe = pipeline_from_ckpt()
    else:
        from diffusers import DDIMScheduler, StableDiffusionPipeline
        pipe = StableDiffusionPipeline.from_pretrained(args.model, torch_dtype=torch.float32, safety_checker=None)
        pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    caps = scenes.held_out_captions()[: args.n]
    ok_c = ok_s = 0
    split = {"one-tone": [0, 0], "two-tone": [0, 0]}
    tiles = []
    for i, cap in enumerate(caps):
        img = pipe(cap, num_inference_steps=args.steps, guidance_scale=args.guidance, height=64, width=64,
                   generator=torch.Generator().manual_seed(args.seed + i)).images[0]
        a = np.asarray(img)
        seen = checker.classify(a)
        c, s = checker.agrees(seen, cap)
        ok_c += c
        ok_s += s
        bg = scenes.parse_caption(cap)[3]
        kind = split["two-tone" if len(bg) == 2 else "one-tone"]
        kind[0] += c
        kind[1] += 1
        tiles.append(a)
        if not c or not s:
            print(("" if c else "COLOUR ") + ("" if s else "SHAPE ") + cap, "->", seen)
    print(f"colour {ok_c}/{len(caps)}  shape {ok_s}/{len(caps)}")
    print("  ".join(f"{k} {v[0]}/{v[1]}" for k, v in split.items()))
    from PIL import Image
    cols = 10
    rows = [np.concatenate(tiles[r * cols:(r + 1) * cols] + [np.zeros_like(tiles[0])] * max(0, (r + 1) * cols - len(tiles)), 1)
            for r in range((len(tiles) + cols - 1) // cols)]
    Image.fromarray(np.concatenate(rows, 0)).save(args.grid)


if __name__ == "__main__":
    main()
