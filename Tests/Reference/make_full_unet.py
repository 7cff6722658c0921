#!/usr/bin/env python3
"""Write a full-size SD 2.1 768-v UNet (865.9M parameters) with random weights as a diffusers
folder:  DIR/unet/{config.json, diffusion_pytorch_model.safetensors}  (float32, ~3.5 GB).

The config is the real stabilityai/stable-diffusion-2-1 `unet/config.json` (SD2-SPEC §2.1).
Weights use the same re-initialisation as make_fixtures.py (every layer non-trivial, O(1)
activations), so the folder is useful for loader / memory / speed tests of the real-size
network.  With --io it also writes DIR/io.safetensors with one small forward pass
(sample [1,4,16,16], timestep [1], encoder_hidden_states [1,77,1024], output), all float32.

Usage:  .venv/bin/python Tests/Reference/make_full_unet.py --out .models/sd2-unet-random [--io]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")

import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

import diffusers  # noqa: E402
from diffusers import UNet2DConditionModel  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_fixtures import reinit_  # noqa: E402

diffusers.utils.logging.set_verbosity_error()
diffusers.utils.logging.disable_progress_bar()

# stabilityai/stable-diffusion-2-1  unet/config.json  (768-v)
SD21_UNET_CONFIG = {
    "act_fn": "silu",
    "attention_head_dim": [5, 10, 20, 20],
    "block_out_channels": [320, 640, 1280, 1280],
    "center_input_sample": False,
    "cross_attention_dim": 1024,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "downsample_padding": 1,
    "dual_cross_attention": False,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "num_class_embeds": None,
    "only_cross_attention": False,
    "out_channels": 4,
    "sample_size": 96,
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    "upcast_attention": True,
    "use_linear_projection": True,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="output folder (gets a unet/ subfolder)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--io", action="store_true", help="also write io.safetensors with one forward pass")
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    t0 = time.time()

    # Build without running the default initialisers (meta device), then allocate and fill.
    with torch.device("meta"):
        model = UNet2DConditionModel(**SD21_UNET_CONFIG)
    model = model.to_empty(device="cpu").eval()
    assert not list(model.buffers()), "unexpected buffers would be left uninitialised"
    torch.manual_seed(args.seed)
    reinit_(model)
    n = sum(p.numel() for p in model.parameters())
    print(f"parameters: {n:,} ({n / 1e6:.1f}M)  built in {time.time() - t0:.1f}s")

    out = args.out / "unet"
    model.save_pretrained(str(out), safe_serialization=True, max_shard_size="100GB")
    files = sorted(p.name for p in out.iterdir())
    assert files == ["config.json", "diffusion_pytorch_model.safetensors"], files
    size = (out / "diffusion_pytorch_model.safetensors").stat().st_size
    print(f"wrote {out} ({size / 2**30:.2f} GiB) in {time.time() - t0:.1f}s")

    if args.io:
        g = torch.Generator().manual_seed(args.seed + 1)
        sample = torch.randn(1, 4, 16, 16, generator=g)
        t = torch.tensor([981.0])
        ehs = torch.randn(1, 77, 1024, generator=g)
        y = model(sample, t, encoder_hidden_states=ehs).sample
        save_file({"sample": sample, "timestep": t, "encoder_hidden_states": ehs, "output": y.contiguous()},
                  str(args.out / "io.safetensors"), metadata={"format": "pt"})
        print(f"io.safetensors: max|output| {float(y.abs().max()):.3f}  ({time.time() - t0:.1f}s)")


if __name__ == "__main__":
    main()
