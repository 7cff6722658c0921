#!/usr/bin/env python3
"""Image-level parity fixtures: whole diffusers pipelines on tiny random-weight SD2-shaped models.

Writes, under Tests/Fixtures/pipelines/ (deleted and rebuilt on every run):

  models/tiny-base/     StableDiffusionPipeline, epsilon, PNDM (SD2-base scheduler config)
  models/tiny-v/        StableDiffusionPipeline, v_prediction, DDIM (SD2 768-v scheduler config)
  models/tiny-inpaint/  StableDiffusionInpaintPipeline, 9-channel UNet, PNDM
  models/tiny-depth/    StableDiffusionDepth2ImgPipeline, 5-channel UNet, PNDM, tiny DPT-hybrid estimator
  models/tiny-x4/       StableDiffusionUpscalePipeline, 7-channel UNet with class embedding, 3-level VAE,
                        DDIM v_prediction + DDPM low_res_scheduler
  inputs/*.png          init images, mask, depth maps (8- and 16-bit), low-res images
  expected/<case>.png   diffusers' PIL output for each case
  debug/<case>.safetensors  intermediate tensors for a few cases (float32)
  cases.json            the case list (see README.md next to this script)
  meta.json             versions, tokenizer ids, conventions

Every folder is written with `pipeline.save_pretrained(dir, safe_serialization=True)`; afterwards
the tokenizer folder is replaced by the four legacy files of the SD2 repositories (vocab.json,
merges.txt, special_tokens_map.json with pad "!", tokenizer_config.json) and the scheduler configs
by the minimal dicts of the official repositories (no `timestep_spacing` key).  The expected
images are computed from the folders *reloaded from disk* in float32 (weights are stored fp16).

Usage:  /work/refvenv/bin/python Tests/Reference/pipelines/make_pipeline_fixtures.py [--out DIR]
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import inspect
import logging
import functools
import json
import math
import os
import re
import shutil
import sys
import time
import warnings
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
from safetensors.torch import load_file, save_file  # noqa: E402

import diffusers  # noqa: E402
import transformers  # noqa: E402
from diffusers import (  # noqa: E402
    AutoencoderKL,
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    PNDMScheduler,
    StableDiffusionDepth2ImgPipeline,
    StableDiffusionImg2ImgPipeline,
    StableDiffusionInpaintPipeline,
    StableDiffusionPipeline,
    StableDiffusionUpscalePipeline,
    UNet2DConditionModel,
)
from transformers import (  # noqa: E402
    BitConfig,
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTokenizer,
    DPTConfig,
    DPTForDepthEstimation,
)

diffusers.utils.logging.set_verbosity_error()
diffusers.utils.logging.disable_progress_bar()
transformers.utils.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()
diffusers.utils.logging.disable_default_handler()
transformers.utils.logging.disable_default_handler()
torch.set_grad_enabled(False)

REPO = Path(__file__).resolve().parents[3]
N_MERGES = 400          # first N merges of the real CLIP BPE list
TEXT_WIDTH = 32

SCHEDULERS = {
    "ddim": (DDIMScheduler, {}),
    "pndm": (PNDMScheduler, {}),
    "euler": (EulerDiscreteScheduler, {}),
    "euler-a": (EulerAncestralDiscreteScheduler, {}),
    "dpm++2m": (DPMSolverMultistepScheduler, {}),
    "dpm++2m-karras": (DPMSolverMultistepScheduler, {"use_karras_sigmas": True}),
}


# ----------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------


@torch.no_grad()
def reinit_(model: nn.Module, other_scale: float | None = None) -> None:
    """Re-initialise EVERY parameter (same recipe as Tests/Reference/make_fixtures.py):
    Linear/Conv weights ~ N(0, 1/fan_in), biases ~ 0.1 N(0,1), norm weights ~ 1 + 0.1 N(0,1),
    norm biases ~ 0.1 N(0,1), embeddings ~ N(0,1).  Bare nn.Parameters (DPT cls token /
    position embeddings) get other_scale * N(0,1) if other_scale is given, else it's an error."""
    done: set[int] = set()
    for mod in model.modules():
        if isinstance(mod, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            w = mod.weight
            w.copy_(torch.randn_like(w) / math.sqrt(w[0].numel()))
            done.add(id(w))
            if mod.bias is not None:
                mod.bias.copy_(0.1 * torch.randn_like(mod.bias))
                done.add(id(mod.bias))
        elif isinstance(mod, (nn.GroupNorm, nn.LayerNorm)):
            if mod.weight is not None:
                mod.weight.copy_(1.0 + 0.1 * torch.randn_like(mod.weight))
                done.add(id(mod.weight))
            if mod.bias is not None:
                mod.bias.copy_(0.1 * torch.randn_like(mod.bias))
                done.add(id(mod.bias))
        elif isinstance(mod, nn.Embedding):
            mod.weight.copy_(torch.randn_like(mod.weight))
            done.add(id(mod.weight))
    missed = [(n, p) for n, p in model.named_parameters() if id(p) not in done]
    if missed and other_scale is None:
        raise RuntimeError(f"reinit_ did not cover: {[n for n, _ in missed]}")
    for _, p in missed:
        p.copy_(other_scale * torch.randn_like(p))


def round_to_fp16_(model: nn.Module) -> None:
    for p in model.parameters():
        p.copy_(p.half().float())


def dir_size(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def human(n: int) -> str:
    return f"{n / 1024:.0f}K" if n < 1024 * 1024 else f"{n / 1024 / 1024:.2f}M"


def write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# ----------------------------------------------------------------------------------------
# tokenizer: a small but real byte-level CLIP BPE vocabulary
# ----------------------------------------------------------------------------------------


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2 / CLIP byte -> printable unicode map (same order as open_clip / transformers)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def clip_merges(n: int) -> list[tuple[str, str]]:
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("open_clip not installed: /work/refvenv/bin/pip install --no-deps open-clip-torch==3.3.0")
    path = Path(list(spec.submodule_search_locations)[0]) / "bpe_simple_vocab_16e6.txt.gz"
    lines = gzip.open(path).read().decode("utf-8").split("\n")
    return [tuple(l.split(" ")) for l in lines[1:1 + n]]  # line 0 is the version header


def write_tokenizer(d: Path) -> list[str]:
    """The layout of the SD2 repositories' tokenizer/ folder, with a 2·256 + N + 2 vocabulary
    built exactly as CLIP builds its 49408 one (bytes, bytes+</w>, one entry per merge, specials)."""
    merges = clip_merges(N_MERGES)
    byte_syms = list(bytes_to_unicode().values())
    vocab = byte_syms + [s + "</w>" for s in byte_syms] + ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    assert len(set(vocab)) == len(vocab), "duplicate vocab entries"
    known = set(vocab)
    for a, b in merges:
        assert a in known and b in known, (a, b)
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    write_json(d / "vocab.json", {tok: i for i, tok in enumerate(vocab)})
    (d / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n",
                                  encoding="utf-8")

    def added(content):
        return {"content": content, "lstrip": False, "normalized": True, "rstrip": False,
                "single_word": False}

    # Same (contradictory) pair as the SD2 repos: special_tokens_map says pad "!", the
    # tokenizer_config says pad "<|endoftext|>"; transformers lets the former win (pad id 0).
    write_json(d / "special_tokens_map.json", {
        "bos_token": added("<|startoftext|>"), "eos_token": added("<|endoftext|>"),
        "pad_token": "!", "unk_token": added("<|endoftext|>")})
    write_json(d / "tokenizer_config.json", {
        "add_prefix_space": False,
        "bos_token": {"__type": "AddedToken", **added("<|startoftext|>")},
        "do_lower_case": True,
        "eos_token": {"__type": "AddedToken", **added("<|endoftext|>")},
        "errors": "replace", "model_max_length": 77, "name_or_path": "tiny-sd2/tokenizer",
        "pad_token": "<|endoftext|>", "special_tokens_map_file": "./special_tokens_map.json",
        "tokenizer_class": "CLIPTokenizer",
        "unk_token": {"__type": "AddedToken", **added("<|endoftext|>")},
    })
    return vocab


def check_tokenizer(tok: CLIPTokenizer, vocab_size: int) -> dict:
    assert len(tok) == vocab_size, (len(tok), vocab_size)
    assert tok.bos_token_id == vocab_size - 2 and tok.eos_token_id == vocab_size - 1
    assert tok.pad_token == "!" and tok.pad_token_id == 0, (tok.pad_token, tok.pad_token_id)
    assert tok.model_max_length == 77
    ids = tok("a photo!").input_ids
    assert ids[0] == vocab_size - 2 and ids[-1] == vocab_size - 1 and 0 in ids, ids
    return {"vocab_size": vocab_size, "bos_token_id": tok.bos_token_id,
            "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id,
            "a photo!": ids}


# ----------------------------------------------------------------------------------------
# model configs
# ----------------------------------------------------------------------------------------


def text_encoder(vocab_size: int, seed: int) -> CLIPTextModel:
    torch.manual_seed(seed)
    cfg = CLIPTextConfig(
        vocab_size=vocab_size, hidden_size=TEXT_WIDTH, intermediate_size=2 * TEXT_WIDTH,
        num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=77, hidden_act="gelu",
        layer_norm_eps=1e-5, attention_dropout=0.0, dropout=0.0, projection_dim=TEXT_WIDTH,
        bos_token_id=0, eos_token_id=2, pad_token_id=1)  # legacy SD2 values (unused)
    m = CLIPTextModel(cfg).eval()
    reinit_(m)
    return m


def unet(seed: int, *, in_ch: int, x4: bool = False) -> UNet2DConditionModel:
    torch.manual_seed(seed)
    if x4:
        # like stable-diffusion-x4-upscaler: DownBlock first, only_cross_attention on the middle
        # levels, self-attention on the innermost level, class embedding for the noise level.
        block_out, heads, groups = [8, 16, 24], [1, 1, 2], 4
        down = ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"]
        up = ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"]
        only_cross, ncls, sample = [True, True, False], 1000, 16
    else:
        block_out, heads, groups = [16, 24], [1, 2], 8
        down = ["CrossAttnDownBlock2D", "DownBlock2D"]
        up = ["UpBlock2D", "CrossAttnUpBlock2D"]
        only_cross, ncls, sample = False, None, 16
    m = UNet2DConditionModel(
        sample_size=sample, in_channels=in_ch, out_channels=4, center_input_sample=False,
        flip_sin_to_cos=True, freq_shift=0, down_block_types=down,
        mid_block_type="UNetMidBlock2DCrossAttn", up_block_types=up,
        only_cross_attention=only_cross, block_out_channels=block_out, layers_per_block=1,
        downsample_padding=1, mid_block_scale_factor=1, act_fn="silu", norm_num_groups=groups,
        norm_eps=1e-5, cross_attention_dim=TEXT_WIDTH, attention_head_dim=heads,
        dual_cross_attention=False, use_linear_projection=True, class_embed_type=None,
        num_class_embeds=ncls, upcast_attention=False, resnet_time_scale_shift="default",
    ).eval()
    reinit_(m)
    return m


def vae(seed: int, *, x4: bool = False) -> AutoencoderKL:
    torch.manual_seed(seed)
    block_out = [8, 16, 16] if x4 else [8, 16]
    n = len(block_out)
    m = AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * n,
        up_block_types=["UpDecoderBlock2D"] * n, block_out_channels=block_out, layers_per_block=1,
        act_fn="silu", latent_channels=4, norm_num_groups=4, sample_size=64 if x4 else 32,
        scaling_factor=0.08333 if x4 else 0.18215, force_upcast=True,
    ).eval()
    reinit_(m)
    # keep decoded pixels mostly inside [-1, 1] so that few output pixels clip
    m.decoder.conv_out.weight.mul_(0.5)
    m.decoder.conv_out.bias.zero_()
    return m


def depth_estimator(seed: int):
    """A tiny DPT-hybrid (BiT backbone) with the structure of Intel/dpt-hybrid-midas."""
    from transformers import DPTImageProcessor

    torch.manual_seed(seed)
    bit = BitConfig(num_channels=3, embedding_size=8, hidden_sizes=[8, 16, 32], depths=[1, 1, 1],
                    num_groups=4, layer_type="bottleneck", global_padding="same",
                    embedding_dynamic_padding=True, out_features=["stage1", "stage2", "stage3"])
    cfg = DPTConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                    image_size=32, patch_size=16, qkv_bias=True, is_hybrid=True, backbone_config=bit,
                    backbone_featmap_shape=[1, 32, 2, 2], backbone_out_indices=[0, 0, 0, 1],
                    neck_hidden_sizes=[8, 16, 16, 16], fusion_hidden_size=8,
                    reassemble_factors=[1, 1, 1, 0.5], readout_type="project",
                    neck_ignore_stages=[0, 1], layer_norm_eps=1e-12, head_in_index=-1,
                    use_batch_norm_in_fusion_residual=False)
    m = DPTForDepthEstimation(cfg).eval()
    reinit_(m, other_scale=0.1)
    fe = DPTImageProcessor(do_resize=True, size={"height": 32, "width": 32}, resample=2,
                           keep_aspect_ratio=False, ensure_multiple_of=1, do_rescale=True,
                           rescale_factor=1 / 255, do_normalize=True, image_mean=[0.5, 0.5, 0.5],
                           image_std=[0.5, 0.5, 0.5], do_pad=False)
    return m, fe


# scheduler configs exactly as in the official SD2 repositories (diffusers 0.8-0.10 era: no
# timestep_spacing key, so Euler/DPM fall back to "linspace" and DDIM/PNDM to "leading").
SD2_BASE_PNDM = {
    "_class_name": "PNDMScheduler", "_diffusers_version": "0.8.0", "beta_end": 0.012,
    "beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": False,
    "num_train_timesteps": 1000, "prediction_type": "epsilon", "set_alpha_to_one": False,
    "skip_prk_steps": True, "steps_offset": 1, "trained_betas": None,
}
SD2_V_DDIM = {
    "_class_name": "DDIMScheduler", "_diffusers_version": "0.8.0", "beta_end": 0.012,
    "beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": False,
    "num_train_timesteps": 1000, "prediction_type": "v_prediction", "set_alpha_to_one": False,
    "skip_prk_steps": True, "steps_offset": 1, "trained_betas": None,
}
SD2_INPAINT_PNDM = {
    "_class_name": "PNDMScheduler", "_diffusers_version": "0.10.0.dev0", "beta_end": 0.012,
    "beta_schedule": "scaled_linear", "beta_start": 0.00085, "num_train_timesteps": 1000,
    "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1, "trained_betas": None,
}
SD2_DEPTH_PNDM = {
    "_class_name": "PNDMScheduler", "_diffusers_version": "0.10.0.dev0", "beta_end": 0.012,
    "beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": False,
    "num_train_timesteps": 1000, "prediction_type": "epsilon", "set_alpha_to_one": False,
    "skip_prk_steps": True, "steps_offset": 1, "trained_betas": None,
}
X4_DDIM = {
    "_class_name": "DDIMScheduler", "_diffusers_version": "0.10.0.dev0", "beta_end": 0.02,
    "beta_schedule": "scaled_linear", "beta_start": 0.0001, "clip_sample": False,
    "num_train_timesteps": 1000, "prediction_type": "v_prediction", "set_alpha_to_one": False,
    "skip_prk_steps": True, "steps_offset": 1, "trained_betas": None,
}
X4_LOWRES_DDPM = {
    "_class_name": "DDPMScheduler", "_diffusers_version": "0.10.0.dev0", "beta_end": 0.02,
    "beta_schedule": "scaled_linear", "beta_start": 0.0001, "clip_sample": True,
    "num_train_timesteps": 1000, "trained_betas": None, "variance_type": "fixed_small",
}


def sched_from(cfg: dict):
    cls = getattr(diffusers, cfg["_class_name"])
    return cls.from_config({k: v for k, v in cfg.items()})


# ----------------------------------------------------------------------------------------
# pipeline folders
# ----------------------------------------------------------------------------------------

PIPELINE_CLASSES = {
    "tiny-base": StableDiffusionPipeline,
    "tiny-v": StableDiffusionPipeline,
    "tiny-inpaint": StableDiffusionInpaintPipeline,
    "tiny-depth": StableDiffusionDepth2ImgPipeline,
    "tiny-x4": StableDiffusionUpscalePipeline,
}
# the class a user loads the folder with for each mode (img2img reuses the txt2img folders)
MODE_CLASSES = {
    "txt2img": StableDiffusionPipeline,
    "img2img": StableDiffusionImg2ImgPipeline,
    "inpaint": StableDiffusionInpaintPipeline,
    "depth2img": StableDiffusionDepth2ImgPipeline,
    "upscale": StableDiffusionUpscalePipeline,
}


def build_models(models_dir: Path, tok_src: Path, vocab_size: int) -> None:
    tokenizer = CLIPTokenizer.from_pretrained(str(tok_src))
    te = text_encoder(vocab_size, 1000)           # one text encoder for all (as in SD2)
    sd_vae = vae(1100)                            # one VAE for the four SD2-style pipelines
    x4_vae = vae(1200, x4=True)
    common = dict(text_encoder=te, tokenizer=tokenizer)

    specs = {
        "tiny-base": (StableDiffusionPipeline, dict(
            vae=sd_vae, unet=unet(2000, in_ch=4), scheduler=sched_from(SD2_BASE_PNDM),
            safety_checker=None, feature_extractor=None, requires_safety_checker=False),
            {"scheduler": SD2_BASE_PNDM}),
        "tiny-v": (StableDiffusionPipeline, dict(
            vae=sd_vae, unet=unet(2100, in_ch=4), scheduler=sched_from(SD2_V_DDIM),
            safety_checker=None, feature_extractor=None, requires_safety_checker=False),
            {"scheduler": SD2_V_DDIM}),
        "tiny-inpaint": (StableDiffusionInpaintPipeline, dict(
            vae=sd_vae, unet=unet(2200, in_ch=9), scheduler=sched_from(SD2_INPAINT_PNDM),
            safety_checker=None, feature_extractor=None, requires_safety_checker=False),
            {"scheduler": SD2_INPAINT_PNDM}),
        "tiny-depth": None,
        "tiny-x4": (StableDiffusionUpscalePipeline, dict(
            vae=x4_vae, unet=unet(2400, in_ch=7, x4=True), scheduler=sched_from(X4_DDIM),
            low_res_scheduler=sched_from(X4_LOWRES_DDPM), safety_checker=None,
            feature_extractor=None, watermarker=None, max_noise_level=350),
            {"scheduler": X4_DDIM, "low_res_scheduler": X4_LOWRES_DDPM}),
    }
    dpt, fe = depth_estimator(2350)
    specs["tiny-depth"] = (StableDiffusionDepth2ImgPipeline, dict(
        vae=sd_vae, unet=unet(2300, in_ch=5), scheduler=sched_from(SD2_DEPTH_PNDM),
        depth_estimator=dpt, feature_extractor=fe), {"scheduler": SD2_DEPTH_PNDM})

    # weights are stored as float16 (size budget); round first so that the fp32 models used
    # for the smoke checks below hold exactly the stored values
    for mod in [te, sd_vae, x4_vae, dpt] + [s[1]["unet"] for s in specs.values()]:
        round_to_fp16_(mod)

    for name, (cls, kwargs, sched_cfgs) in specs.items():
        pipe = cls(**common, **kwargs)
        pipe.to(torch.float16)
        out = models_dir / name
        pipe.save_pretrained(str(out), safe_serialization=True)
        pipe.to(torch.float32)
        # legacy tokenizer files, as in the official SD2 repositories
        shutil.rmtree(out / "tokenizer")
        shutil.copytree(tok_src, out / "tokenizer")
        for sub, cfg in sched_cfgs.items():
            write_json(out / sub / "scheduler_config.json", cfg)
        mi = json.loads((out / "model_index.json").read_text())
        if mi.get("feature_extractor", [None])[0] == "transformers":
            # without torchvision transformers 5 saves the PIL fallback class name
            # ("DPTImageProcessorPil"); write the public class name instead
            mi["feature_extractor"] = ["transformers", "DPTImageProcessor"]
            write_json(out / "model_index.json", mi)


def load_pipeline(models_dir: Path, name: str, cls=None):
    pipe = (cls or PIPELINE_CLASSES[name]).from_pretrained(
        str(models_dir / name), dtype=torch.float32, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    for comp in pipe.components.values():
        if isinstance(comp, nn.Module):
            assert all(p.dtype == torch.float32 for p in comp.parameters())
    return pipe


# ----------------------------------------------------------------------------------------
# inputs
# ----------------------------------------------------------------------------------------


def smooth_rgb(w: int, h: int, seed: int, noise: float = 10.0) -> np.ndarray:
    rs = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    u, v = x / max(w - 1, 1), y / max(h - 1, 1)
    r = 128 + 100 * np.sin(2.1 * np.pi * u + 0.7) * np.cos(1.3 * np.pi * v)
    g = 40 + 180 * u * v + 20 * np.sin(5 * np.pi * v)
    b = 220 - 160 * np.hypot(u - 0.4, v - 0.6)
    img = np.stack([r, g, b], -1) + noise * rs.randn(h, w, 3)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def make_inputs(d: Path) -> dict[str, str]:
    d.mkdir(parents=True, exist_ok=True)
    files = {}

    def save(name, img):
        img.save(d / name)
        files[name] = f"inputs/{name}"

    save("init_32x32.png", Image.fromarray(smooth_rgb(32, 32, 1), "RGB"))
    save("init_40x24.png", Image.fromarray(smooth_rgb(40, 24, 2), "RGB"))
    # mask: white = repaint.  A disc plus a bar, with a few mid-gray pixels on the edge so that
    # binarization (>= 0.5 after resizing) matters.
    y, x = np.mgrid[0:32, 0:32].astype(np.float64)
    disc = np.hypot(x - 19.5, y - 12.5)
    m = np.where(disc < 7.0, 255, 0).astype(np.float64)
    m[np.abs(disc - 7.0) < 0.5] = 150
    m[np.abs(disc - 7.5) < 0.4] = 100
    m[24:28, 3:20] = 255
    save("mask_32x32.png", Image.fromarray(m.astype(np.uint8), "L"))
    # depth maps: larger = nearer (MiDaS convention); sizes differ from the latent grids so that
    # the bicubic resize in prepare_depth_map does real work
    y, x = np.mgrid[0:24, 0:24].astype(np.float64)
    d8 = 40 + 150 * (y / 23) + 50 * np.exp(-((x - 14) ** 2 + (y - 9) ** 2) / 18)
    save("depth8_24x24.png", Image.fromarray(np.clip(np.round(d8), 0, 255).astype(np.uint8), "L"))
    y, x = np.mgrid[0:10, 0:16].astype(np.float64)
    d16 = 9000 + 30000 * (x / 15) ** 1.5 + 12000 * np.cos(np.pi * y / 9) + \
        np.random.RandomState(3).randint(0, 800, size=(10, 16))
    d16 = np.clip(np.round(d16), 0, 65535).astype(np.uint16)
    im16 = Image.fromarray(d16)
    assert im16.mode == "I;16", im16.mode
    save("depth16_16x10.png", im16)
    save("lowres_16x16.png", Image.fromarray(smooth_rgb(16, 16, 4, noise=6.0), "RGB"))
    save("lowres_12x20.png", Image.fromarray(smooth_rgb(12, 20, 5, noise=6.0), "RGB"))
    # round-trip check (16-bit must stay 16-bit)
    back = np.array(Image.open(d / "depth16_16x10.png"))
    assert back.dtype == np.uint16 and np.array_equal(back, d16), back.dtype
    return files


def load_depth_map(path: Path) -> torch.Tensor:
    """The tensor passed as `depth_map=`: [1, H, W] float32, PNG value / (2^bits - 1)."""
    arr = np.array(Image.open(path))
    div = 65535.0 if arr.dtype == np.uint16 else 255.0
    return torch.from_numpy(arr.astype(np.float32) / np.float32(div))[None]


# ----------------------------------------------------------------------------------------
# cases
# ----------------------------------------------------------------------------------------

LONG_PROMPT = ("an extremely detailed oil painting of a quiet harbour town at dawn, fishing boats, "
               "seagulls, wet cobblestones, warm lantern light, soft fog over the water, mountains "
               "in the distance, 35mm film grain, award winning composition, trending on artstation, "
               "highly intricate, sharp focus, volumetric lighting, golden hour, 8k uhd")


def C(name, model, mode, *, prompt, negative_prompt="", seed, steps, guidance, scheduler=None,
      width=None, height=None, strength=None, noise_level=None, guidance_rescale=None,
      init_image=None, mask=None, depth_map=None, debug=False):
    return dict(name=name, model=model, mode=mode, prompt=prompt, negative_prompt=negative_prompt,
                seed=seed, steps=steps, guidance=guidance, scheduler=scheduler, width=width,
                height=height, strength=strength, noise_level=noise_level,
                guidance_rescale=guidance_rescale, init_image=init_image, mask=mask,
                depth_map=depth_map, expected=f"expected/{name}.png",
                debug=f"debug/{name}.safetensors" if debug else None)


I32, I40 = "inputs/init_32x32.png", "inputs/init_40x24.png"
MASK = "inputs/mask_32x32.png"
D8, D16 = "inputs/depth8_24x24.png", "inputs/depth16_16x10.png"
L16, L12 = "inputs/lowres_16x16.png", "inputs/lowres_12x20.png"


def case_list() -> list[dict]:
    cs = []
    # ---- txt2img, epsilon (tiny-base, default PNDM) ----
    B = "tiny-base"
    cs += [
        C("t2i-base-default", B, "txt2img", prompt="a photo of a cat", seed=0, steps=5, guidance=5.0),
        C("t2i-base-pndm", B, "txt2img", prompt="a red car, 4k photo!", seed=1, steps=4, guidance=4.0,
          scheduler="pndm", width=48, height=32, debug=True),
        C("t2i-base-ddim", B, "txt2img", prompt="portrait of 3 dogs; oil on canvas", seed=2, steps=4,
          guidance=4.0, scheduler="ddim"),
        C("t2i-base-euler", B, "txt2img", prompt="a castle on a hill (at night)", seed=3, steps=4,
          guidance=3.5, scheduler="euler"),
        C("t2i-base-euler-a", B, "txt2img", prompt="1girl, masterpiece, best-quality!!", seed=4, steps=4,
          guidance=3.5, scheduler="euler-a", width=32, height=48),
        C("t2i-base-dpmpp2m", B, "txt2img", prompt="a bowl of fruit, 50% off: apples & pears", seed=5,
          steps=5, guidance=4.0, scheduler="dpm++2m"),
        C("t2i-base-dpmpp2m-karras", B, "txt2img", prompt="sunset over the sea, 1990s photo", seed=6,
          steps=5, guidance=4.0, scheduler="dpm++2m-karras", width=64, height=32),
        C("t2i-base-cfg-off", B, "txt2img", prompt="a photo of a cat", seed=7, steps=4, guidance=1.0,
          scheduler="ddim"),
        C("t2i-base-negative", B, "txt2img", prompt="a house by a lake", negative_prompt="blurry, lowres, 2 heads!",
          seed=8, steps=4, guidance=4.0, scheduler="euler"),
        C("t2i-base-rescale", B, "txt2img", prompt="a neon city street", seed=9, steps=4, guidance=5.0,
          guidance_rescale=0.7, scheduler="dpm++2m"),
        C("t2i-base-long-prompt", B, "txt2img", prompt=LONG_PROMPT, negative_prompt=LONG_PROMPT[::-1],
          seed=10, steps=3, guidance=3.0, scheduler="ddim"),
        C("t2i-base-empty-prompt", B, "txt2img", prompt="", seed=11, steps=3, guidance=4.0),
    ]
    # ---- txt2img, v-prediction (tiny-v, default DDIM) ----
    V = "tiny-v"
    cs += [
        C("t2i-v-default", V, "txt2img", prompt="a photo of an astronaut riding a horse", seed=20, steps=5,
          guidance=5.0),
        C("t2i-v-pndm", V, "txt2img", prompt="a red car, 4k photo!", seed=21, steps=4, guidance=4.0,
          scheduler="pndm"),
        C("t2i-v-euler", V, "txt2img", prompt="mountain lake: reflections, 2 swans", seed=22, steps=4,
          guidance=4.0, scheduler="euler", width=64, height=32),
        C("t2i-v-euler-a", V, "txt2img", prompt="hello! world!!", seed=23, steps=4, guidance=3.5,
          scheduler="euler-a"),
        C("t2i-v-dpmpp2m", V, "txt2img", prompt="a watercolor of a fox", seed=24, steps=5, guidance=4.0,
          scheduler="dpm++2m", width=32, height=48),
        C("t2i-v-dpmpp2m-karras", V, "txt2img", prompt="a watercolor of a fox &amp; a “hare”, café", seed=24, steps=5,
          guidance=4.0, scheduler="dpm++2m-karras"),
        C("t2i-v-rescale", V, "txt2img", prompt="studio photo of a teapot", negative_prompt="cartoon",
          seed=25, steps=4, guidance=6.0, guidance_rescale=0.7),
        C("t2i-v-cfg-off", V, "txt2img", prompt="studio photo of a teapot", seed=26, steps=4, guidance=1.0,
          scheduler="euler"),
    ]
    # ---- img2img ----
    cs += [
        C("i2i-base-default", B, "img2img", prompt="a painting in the style of van gogh", seed=30, steps=5,
          guidance=4.0, strength=0.8, init_image=I32),
        C("i2i-base-pndm", B, "img2img", prompt="a pencil sketch", seed=31, steps=6, guidance=4.0,
          strength=0.5, scheduler="pndm", init_image=I40),
        C("i2i-base-ddim", B, "img2img", prompt="a pencil sketch", seed=32, steps=6, guidance=4.0,
          strength=0.5, scheduler="ddim", init_image=I32),
        C("i2i-base-euler", B, "img2img", prompt="winter scene, snow!", seed=33, steps=5, guidance=4.0,
          strength=0.8, scheduler="euler", init_image=I40),
        C("i2i-base-euler-a", B, "img2img", prompt="cyberpunk, 2077", seed=34, steps=5, guidance=4.0,
          strength=0.8, scheduler="euler-a", init_image=I32, debug=True),
        C("i2i-base-dpmpp2m", B, "img2img", prompt="a pencil sketch", seed=35, steps=6, guidance=4.0,
          strength=0.5, scheduler="dpm++2m", init_image=I32),
        C("i2i-base-dpmpp2m-karras", B, "img2img", prompt="a mosaic, 3 colors", seed=36, steps=6,
          guidance=4.0, strength=0.8, scheduler="dpm++2m-karras", init_image=I40),
        C("i2i-base-cfg-off", B, "img2img", prompt="a mosaic", seed=37, steps=5, guidance=1.0,
          strength=0.8, scheduler="ddim", init_image=I32),
        C("i2i-v-default", V, "img2img", prompt="a photo of a garden", seed=38, steps=5, guidance=4.0,
          strength=0.8, init_image=I32),
        C("i2i-v-euler-a", V, "img2img", prompt="a photo of a garden", negative_prompt="people",
          seed=39, steps=6, guidance=4.0, strength=0.5, scheduler="euler-a", init_image=I40),
    ]
    # ---- inpaint (9-channel) ----
    P = "tiny-inpaint"
    cs += [
        C("inp-default", P, "inpaint", prompt="a yellow flower", seed=40, steps=4, guidance=4.0,
          strength=1.0, init_image=I32, mask=MASK),
        C("inp-pndm", P, "inpaint", prompt="a yellow flower", seed=41, steps=6, guidance=4.0,
          strength=0.75, scheduler="pndm", init_image=I32, mask=MASK),
        C("inp-ddim", P, "inpaint", prompt="a stone wall!", seed=42, steps=4, guidance=4.0,
          strength=1.0, scheduler="ddim", init_image=I32, mask=MASK),
        C("inp-euler", P, "inpaint", prompt="a wooden door", seed=43, steps=4, guidance=4.0,
          strength=1.0, scheduler="euler", init_image=I40, mask=MASK),
        C("inp-euler-a", P, "inpaint", prompt="a wooden door", seed=44, steps=4, guidance=4.0,
          strength=0.75, scheduler="euler-a", init_image=I32, mask=MASK),
        C("inp-dpmpp2m", P, "inpaint", prompt="grass, 2 rabbits", seed=45, steps=5, guidance=4.0,
          strength=1.0, scheduler="dpm++2m", width=48, height=32, init_image=I40, mask=MASK),
        C("inp-dpmpp2m-karras", P, "inpaint", prompt="grass", seed=46, steps=6, guidance=4.0,
          strength=0.75, scheduler="dpm++2m-karras", init_image=I32, mask=MASK),
        C("inp-cfg-off", P, "inpaint", prompt="grass", seed=47, steps=4, guidance=1.0,
          strength=1.0, scheduler="ddim", width=32, height=48, init_image=I32, mask=MASK),
    ]
    # ---- depth2img (5-channel), depth_map always given ----
    Dm = "tiny-depth"
    cs += [
        C("d2i-default", Dm, "depth2img", prompt="a marble statue", seed=50, steps=5, guidance=4.0,
          strength=0.8, init_image=I32, depth_map=D8),
        C("d2i-pndm", Dm, "depth2img", prompt="a marble statue", seed=51, steps=6, guidance=4.0,
          strength=0.5, scheduler="pndm", init_image=I40, depth_map=D16),
        C("d2i-ddim", Dm, "depth2img", prompt="a bronze statue!", seed=52, steps=5, guidance=4.0,
          strength=0.8, scheduler="ddim", init_image=I32, depth_map=D16),
        C("d2i-euler", Dm, "depth2img", prompt="a clay model, 2 figures", seed=53, steps=5, guidance=4.0,
          strength=0.8, scheduler="euler", init_image=I40, depth_map=D8),
        C("d2i-euler-a", Dm, "depth2img", prompt="a clay model", seed=54, steps=6, guidance=4.0,
          strength=0.5, scheduler="euler-a", init_image=I32, depth_map=D8),
        C("d2i-dpmpp2m", Dm, "depth2img", prompt="ice sculpture", seed=55, steps=5, guidance=4.0,
          strength=0.8, scheduler="dpm++2m", init_image=I32, depth_map=D8),
        C("d2i-dpmpp2m-karras", Dm, "depth2img", prompt="ice sculpture", negative_prompt="water",
          seed=56, steps=6, guidance=4.0, strength=0.5, scheduler="dpm++2m-karras", init_image=I40,
          depth_map=D16),
    ]
    # ---- x4 upscale ----
    X = "tiny-x4"
    cs += [
        C("up-default", X, "upscale", prompt="a white cat", seed=60, steps=5, guidance=9.0,
          noise_level=20, init_image=L16),
        C("up-ddim", X, "upscale", prompt="a white cat", seed=61, steps=4, guidance=5.0,
          noise_level=100, scheduler="ddim", init_image=L12, debug=True),
        C("up-pndm", X, "upscale", prompt="a brick wall", seed=62, steps=4, guidance=5.0,
          noise_level=20, scheduler="pndm", init_image=L16),
        C("up-euler", X, "upscale", prompt="a brick wall", seed=63, steps=4, guidance=5.0,
          noise_level=20, scheduler="euler", init_image=L12),
        C("up-euler-a", X, "upscale", prompt="tree bark, 4k!", seed=64, steps=4, guidance=5.0,
          noise_level=100, scheduler="euler-a", init_image=L16),
        C("up-dpmpp2m", X, "upscale", prompt="tree bark", seed=65, steps=5, guidance=5.0,
          noise_level=20, scheduler="dpm++2m", init_image=L16),
        C("up-dpmpp2m-karras", X, "upscale", prompt="tree bark", negative_prompt="blurry", seed=66,
          steps=5, guidance=5.0, noise_level=100, scheduler="dpm++2m-karras", init_image=L12),
        C("up-cfg-off", X, "upscale", prompt="a white cat", seed=67, steps=4, guidance=1.0,
          noise_level=350, init_image=L16),
    ]
    names = [c["name"] for c in cs]
    assert len(set(names)) == len(names)
    return cs


# ----------------------------------------------------------------------------------------
# running a case
# ----------------------------------------------------------------------------------------


class Recorder:
    """Captures intermediate tensors without touching the RNG stream."""

    def __init__(self, pipe):
        self.pipe = pipe
        self.t: dict[str, list[torch.Tensor]] = {}
        self._orig = {}

    def _add(self, k, v):
        self.t.setdefault(k, []).append(v.detach().to(torch.float32).clone())

    def install(self):
        pipe = self.pipe
        orig_prep = pipe.prepare_latents

        def prepare_latents(*a, **k):
            out = orig_prep(*a, **k)
            self._add("initial_latents", out[0] if isinstance(out, tuple) else out)
            return out

        orig_enc = pipe.encode_prompt

        def encode_prompt(*a, **k):
            pe, ne = orig_enc(*a, **k)
            self._add("prompt_embeds", pe)
            if ne is not None:
                self._add("negative_prompt_embeds", ne)
            return pe, ne

        sched = pipe.scheduler
        orig_step = sched.step

        # functools.wraps keeps step's signature visible: the pipelines pass `generator` to the
        # scheduler only if inspect.signature(scheduler.step) lists it, and without it Euler-a
        # would silently draw from torch's global RNG.
        @functools.wraps(orig_step)
        def step(model_output, timestep, sample, *a, **k):
            out = orig_step(model_output, timestep, sample, *a, **k)
            prev = out[0] if isinstance(out, tuple) else out.prev_sample
            self._add("step_timesteps", torch.as_tensor(timestep, dtype=torch.float32).reshape(1))
            self._add("step_model_output", model_output)   # after CFG (and rescale)
            self._add("step_latents", prev)
            return out

        orig_add_noise = sched.add_noise

        def add_noise(original, noise, timesteps):
            out = orig_add_noise(original, noise, timesteps)
            self._add("image_latents", original)   # scaled VAE posterior sample (img2img)
            self._add("image_noise", noise)
            return out

        pipe.prepare_latents = prepare_latents
        pipe.encode_prompt = encode_prompt
        sched.step = step
        sched.add_noise = add_noise
        if hasattr(pipe, "low_res_scheduler"):
            orig_an = pipe.low_res_scheduler.add_noise

            def add_noise(x, n, t):
                out = orig_an(x, n, t)
                self._add("low_res_image", x)
                self._add("low_res_noise", n)
                self._add("noisy_low_res_image", out)
                return out

            pipe.low_res_scheduler.add_noise = add_noise

    def uninstall(self):
        for k in ("prepare_latents", "encode_prompt"):
            self.pipe.__dict__.pop(k, None)
        if hasattr(self.pipe, "low_res_scheduler"):
            self.pipe.low_res_scheduler.__dict__.pop("add_noise", None)

    def tensors(self) -> dict[str, torch.Tensor]:
        out = {}
        for k, vs in self.t.items():
            if k == "step_timesteps":
                out[k] = torch.cat(vs)
            elif k.startswith("step_"):
                out[k] = torch.stack(vs)
            else:
                assert len(vs) == 1, (k, len(vs))
                out[k] = vs[0]
        out["final_latents"] = out["step_latents"][-1].clone()
        return {k: v.contiguous() for k, v in out.items()}


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.msgs: list[str] = []

    def emit(self, record):
        self.msgs.append(record.getMessage())


def run_case(pipes: dict, base_sched: dict, root: Path, case: dict):
    key = (case["model"], case["mode"])
    pipe = pipes[key]
    default = base_sched[key]
    if case["scheduler"] is None:
        pipe.scheduler = type(default).from_config(default.config)
    else:
        cls, extra = SCHEDULERS[case["scheduler"]]
        pipe.scheduler = cls.from_config(default.config, **extra)
    kw = dict(prompt=case["prompt"], negative_prompt=case["negative_prompt"],
              num_inference_steps=case["steps"], guidance_scale=case["guidance"],
              generator=torch.Generator("cpu").manual_seed(case["seed"]), output_type="pil",
              num_images_per_prompt=1)
    for k in ("width", "height", "strength", "noise_level", "guidance_rescale"):
        if case[k] is not None:
            kw[k] = case[k]
    if case["init_image"]:
        kw["image"] = Image.open(root / case["init_image"])
        kw["image"].load()
    if case["mask"]:
        kw["mask_image"] = Image.open(root / case["mask"])
        kw["mask_image"].load()
    if case["depth_map"]:
        kw["depth_map"] = load_depth_map(root / case["depth_map"])
    params = inspect.signature(type(pipe).__call__).parameters
    unknown = [k for k in kw if k not in params]
    assert not unknown, f"{type(pipe).__name__} would silently ignore {unknown}"
    rec = None
    if case["debug"]:
        rec = Recorder(pipe)
        rec.install()
    # the timesteps the UNet actually sees (one entry per UNet call)
    unet_ts: list[float] = []
    orig_unet = pipe.unet.forward

    def unet_forward(sample, timestep, *a, **k):
        unet_ts.append(float(torch.as_tensor(timestep).reshape(-1)[0]))
        return orig_unet(sample, timestep, *a, **k)

    pipe.unet.forward = unet_forward
    # collect python warnings and diffusers/transformers logger warnings of the call itself
    handler = _Collect()
    loggers = [logging.getLogger("diffusers"), logging.getLogger("transformers")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
        lg.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as wlist:
            warnings.simplefilter("always")
            image = pipe(**kw).images[0]
    finally:
        if rec:
            rec.uninstall()
        del pipe.unet.forward
        for lg, lv in zip(loggers, levels):
            lg.removeHandler(handler)
            lg.setLevel(lv)
    msgs = sorted({f"{w.category.__name__} ({Path(w.filename).name}:{w.lineno}): "
                   + str(w.message).splitlines()[0][:200] for w in wlist}
                  | {"log: " + m.splitlines()[0][:200] for m in handler.msgs})
    dbg = None
    if rec:
        dbg = rec.tensors()
        dbg["unet_timesteps"] = torch.tensor(unet_ts, dtype=torch.float32)
    return image, dbg, pipe.scheduler, unet_ts, msgs


def compact_json(obj) -> str:
    s = json.dumps(obj, indent=2, ensure_ascii=False)
    # put lists of numbers on one line
    return re.sub(r"\[\s+([-0-9.,\s]+?)\s+\]", lambda m: "[" + re.sub(r"\s+", " ", m.group(1)) + "]", s)


# ----------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(REPO / "Tests" / "Fixtures" / "pipelines"))
    args = ap.parse_args()
    root = Path(args.out)
    t0 = time.time()
    torch.set_num_threads(1)  # fixed, so that results do not depend on the machine's core count
    if root.exists():
        shutil.rmtree(root)
    (root / "expected").mkdir(parents=True)
    (root / "debug").mkdir()
    models_dir = root / "models"

    # tokenizer (built once, copied into every folder)
    tok_src = root / "_tokenizer_tmp"
    vocab = write_tokenizer(tok_src)
    tok_info = check_tokenizer(CLIPTokenizer.from_pretrained(str(tok_src)), len(vocab))

    build_models(models_dir, tok_src, len(vocab))
    shutil.rmtree(tok_src)
    inputs = make_inputs(root / "inputs")

    cases = case_list()
    pipes, base_sched = {}, {}
    for key in sorted({(c["model"], c["mode"]) for c in cases}):
        p = load_pipeline(models_dir, key[0], MODE_CLASSES[key[1]])
        check_tokenizer(p.tokenizer, len(vocab))
        assert p.text_encoder.config.vocab_size == len(vocab)
        pipes[key], base_sched[key] = p, p.scheduler
        sc = json.loads((models_dir / key[0] / "scheduler" / "scheduler_config.json").read_text())
        assert "timestep_spacing" not in sc
    assert isinstance(base_sched[("tiny-base", "txt2img")], PNDMScheduler)
    assert isinstance(base_sched[("tiny-v", "img2img")], DDIMScheduler)
    assert base_sched[("tiny-v", "txt2img")].config.prediction_type == "v_prediction"
    assert isinstance(pipes[("tiny-x4", "upscale")].low_res_scheduler, DDPMScheduler)
    assert pipes[("tiny-x4", "upscale")].vae_scale_factor == 4
    assert pipes[("tiny-base", "txt2img")].vae_scale_factor == 2

    # smoke check: the depth folder is a working pipeline with its estimator (not a fixture)
    dp = pipes[("tiny-depth", "depth2img")]
    img = Image.open(root / I32).convert("RGB")
    pix = dp.feature_extractor(images=[img], return_tensors="pt").pixel_values
    est = dp.depth_estimator(pix).predicted_depth
    assert est.shape == (1, 32, 32) and torch.isfinite(est).all() and float(est.std()) > 0, est.shape

    notes: dict[str, list[str]] = {}
    stats = []
    for case in cases:
        image, dbg, sched, unet_ts, msgs = run_case(pipes, base_sched, root, case)
        image.save(root / case["expected"])
        if dbg is not None:
            save_file(dbg, str(root / case["debug"]), metadata={"format": "pt"})
        for m in msgs:
            notes.setdefault(m, []).append(case["name"])
        case["scheduler_class"] = type(sched).__name__
        case["unet_timesteps"] = unet_ts
        case["init_noise_sigma"] = float(sched.init_noise_sigma)
        case["output_size"] = list(image.size)  # (width, height)
        tok = pipes[(case["model"], case["mode"])].tokenizer

        def enc(s):  # ids up to and including EOS; the rest of the 77 are pad = 0
            ids = tok(s, padding="max_length", max_length=77, truncation=True).input_ids
            assert len(ids) == 77 and all(i == 0 for i in ids[ids.index(tok.eos_token_id) + 1:])
            return ids[: ids.index(tok.eos_token_id) + 1]

        case["prompt_ids"] = enc(case["prompt"])
        case["negative_prompt_ids"] = enc(case["negative_prompt"])
        case["prompt_truncated"] = len(tok(case["prompt"]).input_ids) > 77
        a = np.asarray(image)
        stats.append((case["name"], image.size, float((a == 0).mean() + (a == 255).mean()), float(a.std())))

    assert any(c["prompt_truncated"] for c in cases)
    # expected images must be reproducible (same process, fresh generators)
    for case in [c for c in cases if c["name"] in ("t2i-base-euler-a", "up-euler-a", "inp-pndm")]:
        image, *_ = run_case(pipes, base_sched, root, case)
        assert np.array_equal(np.asarray(image), np.asarray(Image.open(root / case["expected"]))), case["name"]

    ordered = []
    keys = ["name", "model", "mode", "prompt", "negative_prompt", "seed", "steps", "guidance",
            "scheduler", "width", "height", "strength", "noise_level", "guidance_rescale",
            "init_image", "mask", "depth_map", "expected", "debug", "scheduler_class", "unet_timesteps", "init_noise_sigma",
            "output_size", "prompt_truncated", "prompt_ids", "negative_prompt_ids"]
    for c in cases:
        assert set(c) == set(keys), set(c) ^ set(keys)
        ordered.append({k: c[k] for k in keys})
    (root / "cases.json").write_text(compact_json(ordered) + "\n", encoding="utf-8")

    meta = {
        "generator": "Tests/Reference/pipelines/make_pipeline_fixtures.py",
        "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__,
                     "transformers": transformers.__version__, "numpy": np.__version__,
                     "pillow": PIL.__version__},
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "weights_dtype": "float16 on disk; references computed with the weights upcast to float32",
        "tokenizer": {**tok_info, "merges": N_MERGES},
        "depth_map_tensor": "depth_map = torch.from_numpy(png / (2**bits - 1)).float()[None]  # [1, H, W]",
        "torch_threads": 1,
        "generator_rng": "torch.Generator('cpu').manual_seed(seed), one image per call",
        "scheduler_switch": "Cls.from_config(pipe.scheduler.config[, use_karras_sigmas=True])",
        "inputs": sorted(inputs.values()),
        "diffusers_warnings": {k: v for k, v in sorted(notes.items())},
    }
    (root / "meta.json").write_text(compact_json(meta) + "\n", encoding="utf-8")

    # ---- summary ----
    print(f"tokenizer: vocab {tok_info['vocab_size']}, bos {tok_info['bos_token_id']}, "
          f"eos {tok_info['eos_token_id']}, pad {tok_info['pad_token_id']}, 'a photo!' -> {tok_info['a photo!']}")
    for name in PIPELINE_CLASSES:
        print(f"models/{name}: {human(dir_size(models_dir / name))}")
    print(f"{'case':28s} {'size':9s} clipped  std")
    for n, sz, clip, sd in stats:
        print(f"{n:28s} {sz[0]:>3d}x{sz[1]:<4d} {clip:6.3f}  {sd:5.1f}")
    for m, names in notes.items():
        print(f"warning ({len(names)} cases): {m}")
    total = dir_size(root)
    print(f"{len(cases)} cases; total {human(total)} in {root}; {time.time() - t0:.1f}s")
    assert total < 4 * 1024 * 1024, "fixtures exceed 4 MB"


if __name__ == "__main__":
    main()
