#!/usr/bin/env python3
"""Parity fixtures for the DPT-Hybrid (MiDaS) depth estimator of SD2-depth.

Writes, under Tests/Fixtures/depth/ (deleted and rebuilt on every run):

  <config>/config.json, model.safetensors (float16), preprocessor_config.json
           A random-weight `DPTForDepthEstimation` in the layout of Intel/dpt-hybrid-midas (model
           and image processor in one folder).
  <config>/io.safetensors   float32: `pixel_values` [1,3,S,S] -> `predicted_depth` [1,H,W], plus
           intermediates (`feature_maps.{0,1,2}` from BiT, `neck_inputs.{2,3}` = the selected ViT
           hidden states) and, for one config, `image_pixel_values` / `image_predicted_depth` for a
           PNG from Tests/Fixtures/pipelines/inputs run through the folder's image processor.
  pipeline/cases.json, expected/<case>.png, debug/<case>.safetensors
           StableDiffusionDepth2ImgPipeline on Tests/Fixtures/pipelines/models/tiny-depth *without*
           `depth_map`, so the estimator runs; debug holds the processor output and predicted_depth.
  meta.json  versions and conventions.

With --real it also writes a random model with the real SD2-depth shapes (hidden 768, 12 layers,
BiT [3,4,9], ~123M parameters, fp32) to .models/dpt-hybrid-random/ (git-ignored): depth_estimator/,
feature_extractor/ (384x384), and io.safetensors with one 384x384 forward pass.

Every parameter is re-initialised so that every layer matters: conv/linear weights ~ N(0, 1/fan_in)
(irrelevant in scale for BiT's weight-standardised convs), biases ~ 0.1 N(0,1), GroupNorm/LayerNorm
/BatchNorm weights ~ 1 + 0.1 N(0,1), their biases ~ 0.1 N(0,1), BatchNorm running stats random,
cls token and position embeddings ~ 0.5 N(0,1). The small configs are stored as float16 and the
references computed from the folders reloaded from disk in float32 (so from the fp16 values).

Usage:  /work/refvenv/bin/python Tests/Reference/depth/make_depth_fixtures.py [--real]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")

import numpy as np  # noqa: E402
import PIL  # noqa: E402
from PIL import Image  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

import diffusers  # noqa: E402
import transformers  # noqa: E402
from diffusers import DDIMScheduler, StableDiffusionDepth2ImgPipeline  # noqa: E402
from transformers import BitConfig, DPTConfig, DPTForDepthEstimation  # noqa: E402
from transformers.models.dpt.image_processing_pil_dpt import DPTImageProcessorPil  # noqa: E402

diffusers.utils.logging.set_verbosity_error()
diffusers.utils.logging.disable_progress_bar()
transformers.utils.logging.set_verbosity_error()
torch.set_grad_enabled(False)

REPO = Path(__file__).resolve().parents[3]
PIPE_ROOT = REPO / "Tests" / "Fixtures" / "pipelines"


# ----------------------------------------------------------------------------------------
# models
# ----------------------------------------------------------------------------------------


@torch.no_grad()
def reinit_(model: nn.Module, other_scale: float = 0.5) -> None:
    done: set[int] = set()

    def put(p, v):
        p.copy_(v)
        done.add(id(p))

    for mod in model.modules():
        if isinstance(mod, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            w = mod.weight
            put(w, torch.randn_like(w) / math.sqrt(w[0].numel()))
            if mod.bias is not None:
                put(mod.bias, 0.1 * torch.randn_like(mod.bias))
        elif isinstance(mod, (nn.GroupNorm, nn.LayerNorm, nn.BatchNorm2d)):
            if mod.weight is not None:
                put(mod.weight, 1.0 + 0.1 * torch.randn_like(mod.weight))
            if mod.bias is not None:
                put(mod.bias, 0.1 * torch.randn_like(mod.bias))
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.copy_(0.1 * torch.randn_like(mod.running_mean))
                mod.running_var.copy_(1.0 + 0.25 * torch.rand_like(mod.running_var))
    for name, p in model.named_parameters():
        if id(p) not in done:
            assert name.endswith(("cls_token", "position_embeddings")), f"reinit_ missed {name}"
            p.copy_(other_scale * torch.randn_like(p))


def processor(size: int) -> DPTImageProcessorPil:
    """What stable-diffusion-2-depth/feature_extractor/preprocessor_config.json describes."""
    return DPTImageProcessorPil(do_resize=True, size={"height": size, "width": size}, resample=2,
                                keep_aspect_ratio=False, ensure_multiple_of=1, do_rescale=True,
                                rescale_factor=1 / 255, do_normalize=True, image_mean=[0.5, 0.5, 0.5],
                                image_std=[0.5, 0.5, 0.5], do_pad=False)


def small_configs() -> dict[str, DPTConfig]:
    """Small hybrid configs that between them exercise every config-driven branch."""
    out = {}
    # Like SD2-depth, scaled down: multi-layer BiT stages (layers without a downsample), make_div
    # rounding (mid = make_div(12) = 16), "SAME" dynamic padding, 3 ViT layers of which 1 and 2
    # feed the neck, reassemble [1, 1, 1, 0.5].
    bit = BitConfig(num_channels=3, embedding_size=16, hidden_sizes=[16, 32, 48], depths=[2, 2, 3],
                    num_groups=4, layer_type="bottleneck", global_padding="same",
                    embedding_dynamic_padding=True, out_features=["stage1", "stage2", "stage3"])
    out["hybrid-small"] = DPTConfig(
        hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=64, image_size=64,
        patch_size=16, qkv_bias=True, is_hybrid=True, backbone_config=bit, backbone_featmap_shape=[1, 48, 4, 4],
        backbone_out_indices=[2, 5, 1, 2], neck_hidden_sizes=[16, 32, 32, 32], fusion_hidden_size=16,
        reassemble_factors=[1, 1, 1, 0.5], readout_type="project", neck_ignore_stages=[0, 1],
        layer_norm_eps=1e-12, head_in_index=-1, use_batch_norm_in_fusion_residual=False)
    # Odd sizes: a 48 px input gives BiT maps 12/6/3, so the stem and stride-2 convs pad
    # asymmetrically, the fusion stage bilinear-resizes (align_corners=False) skips that do not
    # match, and the depth comes out at 64x64. Also: a transposed-conv reassemble (factor 2), BatchNorm
    # in the residual units (so no conv bias), selected ViT layers listed out of order ([1, 0]),
    # make_div(10) rounding up to 16, fusion width 12 (not a multiple of 16).
    bit = BitConfig(num_channels=3, embedding_size=12, hidden_sizes=[16, 24, 40], depths=[1, 2, 1],
                    num_groups=4, layer_type="bottleneck", global_padding="SAME",
                    embedding_dynamic_padding=True, out_features=["stage1", "stage2", "stage3"])
    out["hybrid-odd"] = DPTConfig(
        hidden_size=24, num_hidden_layers=2, num_attention_heads=3, intermediate_size=40, image_size=48,
        patch_size=16, qkv_bias=True, is_hybrid=True, backbone_config=bit, backbone_featmap_shape=[1, 40, 3, 3],
        backbone_out_indices=[5, 5, 1, 0], neck_hidden_sizes=[16, 24, 20, 28], fusion_hidden_size=12,
        reassemble_factors=[1, 1, 2, 0.5], readout_type="project", neck_ignore_stages=[0, 1],
        layer_norm_eps=1e-12, head_in_index=-1, use_batch_norm_in_fusion_residual=True)
    # PyTorch-style padding (global_padding None): symmetric conv padding, the stem's extra
    # ConstantPad2d(1) *before* its GroupNorm, a max-pool without dynamic padding; no qkv bias;
    # head_in_index 2 (the head reads the third fusion output, so the depth is 16x16).
    bit = BitConfig(num_channels=3, embedding_size=8, hidden_sizes=[8, 16, 24], depths=[1, 1, 2],
                    num_groups=2, layer_type="bottleneck", global_padding=None,
                    embedding_dynamic_padding=False, out_features=["stage1", "stage2", "stage3"])
    out["hybrid-nopad"] = DPTConfig(
        hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=24, image_size=32,
        patch_size=16, qkv_bias=False, is_hybrid=True, backbone_config=bit, backbone_featmap_shape=[1, 24, 2, 2],
        backbone_out_indices=[0, 0, 0, 1], neck_hidden_sizes=[8, 16, 16, 16], fusion_hidden_size=8,
        reassemble_factors=[1, 1, 1, 0.5], readout_type="project", neck_ignore_stages=[0, 1],
        layer_norm_eps=1e-12, head_in_index=2, use_batch_norm_in_fusion_residual=False)
    return out


def real_config() -> DPTConfig:
    """The SD2-depth estimator (Intel/dpt-hybrid-midas): DPTConfig defaults + the converter's
    MiDaS-hybrid branch. hidden_sizes keeps BitConfig's 4-entry default although only 3 stages
    are built (BitEncoder zips depths with hidden_sizes)."""
    bit = BitConfig(num_channels=3, embedding_size=64, hidden_sizes=[256, 512, 1024, 2048], depths=[3, 4, 9],
                    num_groups=32, layer_type="bottleneck", global_padding="same",
                    embedding_dynamic_padding=True, out_features=["stage1", "stage2", "stage3"])
    return DPTConfig(
        hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072, image_size=384,
        patch_size=16, qkv_bias=True, is_hybrid=True, backbone_config=bit, backbone_featmap_shape=[1, 1024, 24, 24],
        backbone_out_indices=[2, 5, 8, 11], neck_hidden_sizes=[256, 512, 768, 768], fusion_hidden_size=256,
        reassemble_factors=[1, 1, 1, 0.5], readout_type="project", neck_ignore_stages=[0, 1],
        layer_norm_eps=1e-12, head_in_index=-1, use_batch_norm_in_fusion_residual=False, add_projection=False)


def build(cfg: DPTConfig, seed: int, probe: torch.Tensor) -> DPTForDepthEstimation:
    torch.manual_seed(seed)
    m = DPTForDepthEstimation(cfg).eval()
    reinit_(m)
    # With random weights the final ReLU zeroes most of the map; shift the last conv's bias so that
    # ~90% of the probe's depth is positive and the whole network shows in the output.
    last = m.head.head[4]
    pre = {}
    h = last.register_forward_hook(lambda mod, i, o: pre.setdefault("x", o.detach()))
    m(probe)
    h.remove()
    last.bias.sub_(torch.quantile(pre["x"].flatten(), 0.1))
    return m


def save_folder(m: DPTForDepthEstimation, d: Path, fp16: bool) -> DPTForDepthEstimation:
    """Saves, reloads in float32 and checks the reload equals the (rounded) original."""
    d.mkdir(parents=True, exist_ok=True)
    if fp16:
        m = m.half()
    m.save_pretrained(str(d), safe_serialization=True)
    back = DPTForDepthEstimation.from_pretrained(str(d), dtype=torch.float32).eval()
    ref = m.float().state_dict()
    for k, v in back.state_dict().items():
        assert torch.equal(v, ref[k].to(v.dtype)), k
    return back


def smooth_pixels(size: int, seed: int) -> torch.Tensor:
    """A structured random input in [-1, 1] (what the processor produces), [1, 3, size, size]."""
    g = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    base = torch.stack([torch.sin(6.3 * x + 1) * torch.cos(3.1 * y), x * y * 2 - 1, 1 - 2 * torch.hypot(x - 0.4, y - 0.6)])
    img = 0.7 * base + 0.3 * torch.randn(3, size, size, generator=g)
    return img.clamp(-1, 1)[None].float()


def forward_io(m: DPTForDepthEstimation, pixel_values: torch.Tensor) -> dict[str, torch.Tensor]:
    out = m(pixel_values, output_hidden_states=True)
    emb = m.dpt.embeddings(pixel_values)
    io = {"pixel_values": pixel_values, "predicted_depth": out.predicted_depth}
    for i, f in enumerate(m.dpt.embeddings.backbone(pixel_values).feature_maps):
        io[f"feature_maps.{i}"] = f
    io["embeddings"] = emb.last_hidden_states
    sel = [h for idx, h in enumerate(out.hidden_states[1:]) if idx in m.config.backbone_out_indices[2:]]
    for j, h in enumerate(sel):
        io[f"neck_inputs.{j + 2}"] = h
    return {k: v.detach().float().contiguous() for k, v in io.items()}


# ----------------------------------------------------------------------------------------
# pipeline cases (tiny-depth, no depth_map)
# ----------------------------------------------------------------------------------------

PIPE_CASES = [
    dict(name="d2i-estimated", prompt="a marble statue", negative_prompt="", seed=60, steps=5, guidance=4.0,
         strength=0.8, scheduler=None, init_image="inputs/init_40x24.png"),
    dict(name="d2i-estimated-ddim", prompt="a bronze statue", negative_prompt="blurry", seed=61, steps=6,
         guidance=4.0, strength=0.6, scheduler="ddim", init_image="inputs/init_32x32.png"),
]


def run_pipeline_cases(out: Path) -> list[dict]:
    pipe = StableDiffusionDepth2ImgPipeline.from_pretrained(
        str(PIPE_ROOT / "models" / "tiny-depth"), dtype=torch.float32, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    assert type(pipe.feature_extractor).__name__.startswith("DPTImageProcessor"), type(pipe.feature_extractor)
    default_sched = pipe.scheduler
    (out / "expected").mkdir(parents=True)
    (out / "debug").mkdir()
    rows = []
    for c in PIPE_CASES:
        pipe.scheduler = (DDIMScheduler.from_config(default_sched.config) if c["scheduler"] == "ddim"
                          else type(default_sched).from_config(default_sched.config))
        captured = {}
        orig = pipe.depth_estimator.forward

        def fwd(pixel_values, *a, **k):
            r = orig(pixel_values, *a, **k)
            captured["pixel_values"] = pixel_values.detach().float().clone()
            captured["predicted_depth"] = r.predicted_depth.detach().float().clone()
            return r

        pipe.depth_estimator.forward = fwd
        image_in = Image.open(PIPE_ROOT / c["init_image"])
        image_in.load()
        try:
            image = pipe(prompt=c["prompt"], negative_prompt=c["negative_prompt"], image=image_in,
                         num_inference_steps=c["steps"], guidance_scale=c["guidance"], strength=c["strength"],
                         generator=torch.Generator("cpu").manual_seed(c["seed"]), output_type="pil").images[0]
        finally:
            del pipe.depth_estimator.forward
        assert set(captured) == {"pixel_values", "predicted_depth"}, "the estimator did not run"
        d = captured["predicted_depth"]
        assert torch.isfinite(d).all() and float(d.max() - d.min()) > 0, "degenerate predicted depth"
        # the pipeline's estimate equals a direct processor + model call (no autocast effect in fp32)
        direct_pix = pipe.feature_extractor(images=[image_in], return_tensors="pt").pixel_values
        assert torch.equal(direct_pix, captured["pixel_values"])
        assert torch.equal(pipe.depth_estimator(direct_pix).predicted_depth, d)
        image.save(out / "expected" / f"{c['name']}.png")
        save_file({k: v.contiguous() for k, v in captured.items()}, str(out / "debug" / f"{c['name']}.safetensors"),
                  metadata={"format": "pt"})
        rows.append({**c, "model": "tiny-depth", "depth_map": None, "expected": f"expected/{c['name']}.png",
                     "debug": f"debug/{c['name']}.safetensors", "output_size": list(image.size),
                     "predicted_depth_shape": list(d.shape), "predicted_depth_range": [float(d.min()), float(d.max())]})
        print(f"pipeline {c['name']}: {image.size}, predicted depth {tuple(d.shape)} in "
              f"[{float(d.min()):.4f}, {float(d.max()):.4f}], zero fraction {float((d == 0).float().mean()):.3f}")
    return rows


# ----------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------


def dir_size(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(REPO / "Tests" / "Fixtures" / "depth"))
    ap.add_argument("--real", action="store_true", help="also write the real-shape model to .models/")
    ap.add_argument("--real-out", default=str(REPO / ".models" / "dpt-hybrid-random"))
    args = ap.parse_args()
    root = Path(args.out)
    t0 = time.time()
    torch.set_num_threads(1)  # results independent of the core count
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)

    summary = []
    for i, (name, cfg) in enumerate(small_configs().items()):
        d = root / name
        size = cfg.image_size
        pix = smooth_pixels(size, 17 + i)
        m = save_folder(build(cfg, 4100 + i, pix), d, fp16=True)
        processor(size).save_pretrained(str(d))
        io = forward_io(m, pix)
        if name == "hybrid-small":
            # the folder's image processor on a real PNG (40x24 -> 64x64, PIL bilinear upscale)
            img = Image.open(PIPE_ROOT / "inputs" / "init_40x24.png")
            img.load()
            proc = DPTImageProcessorPil.from_pretrained(str(d))
            p2 = proc(images=[img], return_tensors="pt").pixel_values
            io["image_pixel_values"] = p2.float().contiguous()
            io["image_predicted_depth"] = m(p2).predicted_depth.float().contiguous()
        save_file(io, str(d / "io.safetensors"), metadata={"format": "pt"})
        nparams = sum(p.numel() for p in m.parameters())
        dep = io["predicted_depth"]
        summary.append((name, nparams, tuple(dep.shape), float(dep.abs().max()), float((dep == 0).float().mean())))

    pipe_rows = run_pipeline_cases(root / "pipeline")
    (root / "pipeline" / "cases.json").write_text(json.dumps(pipe_rows, indent=2) + "\n", encoding="utf-8")

    meta = {
        "generator": "Tests/Reference/depth/make_depth_fixtures.py",
        "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__,
                     "transformers": transformers.__version__, "numpy": np.__version__, "pillow": PIL.__version__},
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_threads": 1,
        "weights_dtype": "float16 on disk; references computed with the weights upcast to float32",
        "image_processor": "DPTImageProcessorPil (transformers' fallback without torchvision, = what diffusers "
                           "loads for feature_extractor/ in the reference environment)",
    }
    (root / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")

    for name, n, shape, mx, zeros in summary:
        print(f"{name:14s} {n:>8,d} params, predicted_depth {shape}, max {mx:.3f}, zero fraction {zeros:.3f}, "
              f"folder {dir_size(root / name) / 1024:.0f} KiB")
    total = dir_size(root)
    print(f"total {total / 1024:.0f} KiB in {root}; {time.time() - t0:.1f}s")
    assert total < 1.5 * 1024 * 1024, "depth fixtures exceed 1.5 MB"

    if args.real:
        t1 = time.time()
        out = Path(args.real_out)
        if out.exists():
            shutil.rmtree(out)
        torch.set_num_threads(max(1, os.cpu_count() or 1))
        pix = smooth_pixels(384, 99)
        m = save_folder(build(real_config(), 4242, pix), out / "depth_estimator", fp16=False)
        processor(384).save_pretrained(str(out / "feature_extractor"))
        torch.set_num_threads(1)
        io = forward_io(m, pix)
        save_file(io, str(out / "io.safetensors"), metadata={"format": "pt"})
        n = sum(p.numel() for p in m.parameters())
        dep = io["predicted_depth"]
        print(f"real: {n:,d} params, predicted_depth {tuple(dep.shape)}, max {float(dep.abs().max()):.3f}, "
              f"zero fraction {float((dep == 0).float().mean()):.3f}, {dir_size(out) / 2**20:.0f} MiB in {out}; "
              f"{time.time() - t1:.1f}s")


if __name__ == "__main__":
    main()
