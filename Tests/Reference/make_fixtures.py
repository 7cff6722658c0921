#!/usr/bin/env python3
"""Regenerate the numerical reference fixtures under Tests/Fixtures/ from scratch.

Every model is a tiny, randomly initialised diffusers / transformers model built from a
config dict (no hub access).  After construction EVERY parameter is re-initialised
(see `reinit_`) so that no layer is zero/identity and outputs are O(1); the default
initialisers zero some layers (e.g. proj_out/conv_out in some versions) and make others
tiny, which would make the Swift comparisons weak.

Layout (see Tests/Reference/README.md):
  Tests/Fixtures/clip/<case>/{text_encoder/, io.safetensors}
  Tests/Fixtures/unet/<case>/{unet/, io.safetensors}
  Tests/Fixtures/vae/<case>/{vae/, io.safetensors}
  Tests/Fixtures/singlefile/{tiny-sd2/, tiny-sd2.safetensors, io.safetensors}

All io tensors are float32 in PyTorch layout (NCHW, [B,T,C]); integer-valued things
(token ids, timesteps, class labels) are stored as float32 too.

Usage:  .venv/bin/python Tests/Reference/make_fixtures.py [--out Tests/Fixtures]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")

import warnings

warnings.filterwarnings("ignore")

import torch  # noqa: E402
from torch import nn  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

import diffusers  # noqa: E402
import transformers  # noqa: E402
from diffusers import AutoencoderKL, UNet2DConditionModel  # noqa: E402
from diffusers.loaders.single_file_utils import (  # noqa: E402
    convert_ldm_unet_checkpoint,
    convert_ldm_vae_checkpoint,
    convert_open_clip_checkpoint,
)
from transformers import CLIPTextConfig, CLIPTextModel  # noqa: E402

diffusers.utils.logging.set_verbosity_error()
diffusers.utils.logging.disable_progress_bar()
transformers.utils.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()

torch.set_grad_enabled(False)

REPO = Path(__file__).resolve().parents[2]
SUMMARY: list[tuple[str, str, str, float]] = []


# ----------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------


@torch.no_grad()
def reinit_(model: nn.Module, emb_scale: float = 1.0) -> None:
    """Re-initialise EVERY parameter so that each layer matters and activations stay O(1).

    Linear/Conv weights ~ N(0, 1/fan_in); biases ~ 0.1 N(0,1); norm weights ~ 1 + 0.1 N(0,1),
    norm biases ~ 0.1 N(0,1); embeddings ~ emb_scale * N(0,1).  Asserts full coverage.
    """
    done: set[int] = set()
    for mod in model.modules():
        if isinstance(mod, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            w = mod.weight
            fan_in = w[0].numel()  # in_features (* kh * kw) / groups
            w.copy_(torch.randn_like(w) / math.sqrt(fan_in))
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
            mod.weight.copy_(emb_scale * torch.randn_like(mod.weight))
            done.add(id(mod.weight))
    missed = [n for n, p in model.named_parameters() if id(p) not in done]
    if missed:
        raise RuntimeError(f"reinit_ did not cover: {missed}")


def round_to_fp16_(model: nn.Module) -> None:
    """Round every parameter to float16 precision (kept in float32)."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())


def save_io(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    out = {k: v.detach().to(torch.float32).contiguous() for k, v in tensors.items()}
    save_file(out, str(path), metadata={"format": "pt"})


def fsize(p: Path) -> int:
    return p.stat().st_size


def dir_size(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def human(n: int) -> str:
    return f"{n / 1024:.0f}K" if n < 1024 * 1024 else f"{n / 1024 / 1024:.2f}M"


def record(case: str, weights: Path, io: Path, out: torch.Tensor) -> None:
    SUMMARY.append((case, human(dir_size(weights)), human(fsize(io)), float(out.abs().max())))


def check_close(a: torch.Tensor, b: torch.Tensor, what: str, tol: float = 0.0) -> None:
    d = float((a - b).abs().max())
    if d > tol:
        raise AssertionError(f"{what}: reload mismatch {d}")


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def token_ids(vocab: int, lengths: list[int], gen_seed: int) -> torch.Tensor:
    """[start, content..., end, 0, 0, ...] rows of length 77 (SD2 pads with id 0).

    The real BOS/EOS (49406/49407) don't fit a small vocab, so the last two ids of the
    vocab play their role (as they do in the real 49408 vocab)."""
    g = torch.Generator().manual_seed(gen_seed)
    rows = []
    for n in lengths:
        assert 0 <= n <= 75
        content = torch.randint(1, vocab - 2, (n,), generator=g)
        row = torch.cat([torch.tensor([vocab - 2]), content, torch.tensor([vocab - 1]),
                         torch.zeros(77 - 2 - n, dtype=torch.long)])
        rows.append(row)
    return torch.stack(rows)


# ----------------------------------------------------------------------------------------
# CLIP text encoder
# ----------------------------------------------------------------------------------------


def clip_config(vocab, hidden, heads, layers, inter) -> CLIPTextConfig:
    return CLIPTextConfig(
        vocab_size=vocab, hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
        num_attention_heads=heads, max_position_embeddings=77, hidden_act="gelu",
        layer_norm_eps=1e-5, attention_dropout=0.0, dropout=0.0, projection_dim=hidden,
        # legacy SD2 values; they only affect the (unused) pooled output
        bos_token_id=0, eos_token_id=2, pad_token_id=1,
    )


def to_transformers4_layout(te_dir: Path) -> None:
    """Rewrite a transformers-5 text_encoder folder into the transformers-4.x layout used by
    the official SD2 repos: `text_model.` key prefix, an int64 `position_ids` buffer, and a
    config with `torch_dtype` instead of `dtype`."""
    f = te_dir / "model.safetensors"
    sd = load_file(str(f))
    new = {"text_model." + k: v for k, v in sd.items()}
    new["text_model.embeddings.position_ids"] = torch.arange(77, dtype=torch.int64)[None]
    save_file(new, str(f), metadata={"format": "pt"})
    cfg = json.loads((te_dir / "config.json").read_text())
    cfg["torch_dtype"] = cfg.pop("dtype", "float32")
    cfg["transformers_version"] = "4.25.0.dev0"
    cfg["_name_or_path"] = f"fixtures/{te_dir.parent.name}/text_encoder"
    (te_dir / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")


def make_clip(root: Path, name: str, seed: int, *, vocab, hidden, heads, layers, inter,
              lengths, layout4: bool = False, half: bool = False) -> None:
    torch.manual_seed(seed)
    model = CLIPTextModel(clip_config(vocab, hidden, heads, layers, inter)).eval()
    reinit_(model)
    if half:  # stored as float16 to keep fixtures small; the reference runs those values in fp32
        round_to_fp16_(model)
    ids = token_ids(vocab, lengths, seed + 1)
    out = model(ids)[0]

    case = root / "clip" / name
    te = case / "text_encoder"
    (model.half() if half else model).save_pretrained(str(te), safe_serialization=True)
    if layout4:
        to_transformers4_layout(te)
    # the saved files must reproduce the output
    re = CLIPTextModel.from_pretrained(str(te), dtype=torch.float32).eval()
    check_close(re(ids)[0], out, f"clip/{name}")
    save_io(case / "io.safetensors", {"input_ids": ids, "last_hidden_state": out})
    record(f"clip/{name}", te, case / "io.safetensors", out)


# ----------------------------------------------------------------------------------------
# UNet
# ----------------------------------------------------------------------------------------


def unet_config(block_out, heads, *, in_ch=4, lpb=1, cross=32, groups=8, down=None, up=None,
                linear=True, upcast=False, only_cross=False, num_class_embeds=None,
                sample_size=32) -> dict:
    n = len(block_out)
    down = down or ["CrossAttnDownBlock2D"] * (n - 1) + ["DownBlock2D"]
    up = up or ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * (n - 1)
    return dict(
        sample_size=sample_size, in_channels=in_ch, out_channels=4, center_input_sample=False,
        flip_sin_to_cos=True, freq_shift=0, down_block_types=down,
        mid_block_type="UNetMidBlock2DCrossAttn", up_block_types=up,
        only_cross_attention=only_cross, block_out_channels=list(block_out),
        layers_per_block=lpb, downsample_padding=1, mid_block_scale_factor=1, act_fn="silu",
        norm_num_groups=groups, norm_eps=1e-5, cross_attention_dim=cross,
        attention_head_dim=heads, dual_cross_attention=False, use_linear_projection=linear,
        class_embed_type=None, num_class_embeds=num_class_embeds, upcast_attention=upcast,
        resnet_time_scale_shift="default",
    )


def run_unet(model, io: dict) -> torch.Tensor:
    return model(io["sample"], io["timestep"], encoder_hidden_states=io["encoder_hidden_states"],
                 class_labels=io.get("class_labels")).sample


def make_unet(root: Path, name: str, seed: int, cfg: dict, *, batch, hw, seq, timestep,
              class_labels=None, fp16_case: str | None = None, half: bool = False) -> None:
    torch.manual_seed(seed)
    model = UNet2DConditionModel(**cfg).eval()
    reinit_(model)
    if half:  # stored as float16 to keep fixtures small; the reference runs those values in fp32
        round_to_fp16_(model)
    h, w = hw
    io = {
        "sample": torch.randn(batch, cfg["in_channels"], h, w),
        # int64 for integer timesteps (what DDIM/PNDM/DPM feed), float32 for fractional ones
        "timestep": timestep,
        "encoder_hidden_states": torch.randn(batch, seq, cfg["cross_attention_dim"]),
    }
    if class_labels is not None:
        io["class_labels"] = class_labels
    out = run_unet(model, io)

    case = root / "unet" / name
    (model.half() if half else model).save_pretrained(str(case / "unet"), safe_serialization=True)
    re = UNet2DConditionModel.from_pretrained(str(case / "unet"), torch_dtype=torch.float32).eval()
    check_close(run_unet(re, io), out, f"unet/{name}")
    save_io(case / "io.safetensors", {**io, "output": out})
    record(f"unet/{name}", case / "unet", case / "io.safetensors", out)

    if fp16_case:
        # Same model saved as the fp16 *variant* only; the reference output is what the fp16
        # weights give when loaded into a float32 model.
        c16 = root / "unet" / fp16_case
        model.half().save_pretrained(str(c16 / "unet"), safe_serialization=True, variant="fp16")
        files = sorted(p.name for p in (c16 / "unet").iterdir())
        assert files == ["config.json", "diffusion_pytorch_model.fp16.safetensors"], files
        m16 = UNet2DConditionModel.from_pretrained(str(c16 / "unet"), variant="fp16",
                                                   torch_dtype=torch.float32).eval()
        assert all(p.dtype == torch.float32 for p in m16.parameters())
        out16 = run_unet(m16, io)
        save_io(c16 / "io.safetensors", {**io, "output": out16})
        record(f"unet/{fp16_case}", c16 / "unet", c16 / "io.safetensors", out16)
        SUMMARY.append((f"  (fp16 vs fp32 max diff {float((out16 - out).abs().max()):.2e})", "", "", float("nan")))


# ----------------------------------------------------------------------------------------
# VAE
# ----------------------------------------------------------------------------------------


def vae_config(block_out, *, lpb=1, groups=8, scaling=0.18215, sample_size=64) -> dict:
    n = len(block_out)
    return dict(
        in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * n,
        up_block_types=["UpDecoderBlock2D"] * n, block_out_channels=list(block_out),
        layers_per_block=lpb, act_fn="silu", latent_channels=4, norm_num_groups=groups,
        sample_size=sample_size, scaling_factor=scaling, force_upcast=True,
    )


def vae_io(vae: AutoencoderKL, image: torch.Tensor, latents: torch.Tensor) -> dict:
    moments = vae.quant_conv(vae.encoder(image))
    mean = vae.encode(image).latent_dist.mean
    assert torch.equal(mean, moments[:, :4])
    decoded = vae.decode(latents).sample
    return {"image": image, "moments": moments, "latents": latents, "decoded": decoded}


LEGACY_ATTN = {"to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"}


def to_legacy_attn_names(vae_dir: Path) -> None:
    f = vae_dir / "diffusion_pytorch_model.safetensors"
    sd = load_file(str(f))
    new = {}
    for k, v in sd.items():
        for part in ("encoder", "decoder"):
            pre = f"{part}.mid_block.attentions.0."
            for a, b in LEGACY_ATTN.items():
                if k.startswith(pre + a + "."):
                    k = pre + b + k[len(pre + a):]
        new[k] = v
    assert sum("proj_attn" in k for k in new) == 4 and not any(".to_q." in k for k in new)
    save_file(new, str(f), metadata={"format": "pt"})


def make_vae(root: Path, name: str, seed: int, cfg: dict, *, batch, hw, legacy=False, half=False) -> None:
    torch.manual_seed(seed)
    vae = AutoencoderKL(**cfg).eval()
    reinit_(vae)
    if half:  # stored as float16 to keep fixtures small; the reference runs those values in fp32
        round_to_fp16_(vae)
    H, W = hw
    f = 2 ** (len(cfg["block_out_channels"]) - 1)
    image = torch.rand(batch, 3, H, W) * 2 - 1
    latents = torch.randn(batch, 4, H // f, W // f)
    io = vae_io(vae, image, latents)

    case = root / "vae" / name
    (vae.half() if half else vae).save_pretrained(str(case / "vae"), safe_serialization=True)
    if legacy:
        to_legacy_attn_names(case / "vae")
    re = AutoencoderKL.from_pretrained(str(case / "vae"), torch_dtype=torch.float32).eval()
    io2 = vae_io(re, image, latents)
    for k in ("moments", "decoded"):
        check_close(io2[k], io[k], f"vae/{name}.{k}")
    save_io(case / "io.safetensors", io)
    record(f"vae/{name}", case / "vae", case / "io.safetensors", io["decoded"])


# ----------------------------------------------------------------------------------------
# single file (ldm layout)
# ----------------------------------------------------------------------------------------

UNET_RES = [("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("time_emb_proj", "emb_layers.1"),
            ("norm2", "out_layers.0"), ("conv2", "out_layers.3"), ("conv_shortcut", "skip_connection")]


def unet_to_ldm(sd: dict, cfg: dict) -> dict:
    """diffusers UNet2DConditionModel state dict -> ldm `model.diffusion_model.*` (SD2-SPEC §6.1)."""
    lpb = cfg["layers_per_block"]
    n = len(cfg["block_out_channels"])
    out = {}

    def res(rest: str) -> str:
        for a, b in UNET_RES:
            if rest.startswith(a + "."):
                return b + rest[len(a):]
        raise KeyError(rest)

    for k, v in sd.items():
        p = k.split(".")
        if p[0] == "time_embedding":
            nk = {"linear_1": "time_embed.0", "linear_2": "time_embed.2"}[p[1]] + "." + p[2]
        elif p[0] == "conv_in":
            nk = "input_blocks.0.0." + p[1]
        elif p[0] == "conv_norm_out":
            nk = "out.0." + p[1]
        elif p[0] == "conv_out":
            nk = "out.2." + p[1]
        elif p[0] == "class_embedding":
            nk = "label_emb." + ".".join(p[1:])  # (x4 only; not in this tiny SD2)
        elif p[0] == "down_blocks":
            b, kind, l, rest = int(p[1]), p[2], int(p[3]), ".".join(p[4:])
            if kind == "resnets":
                nk = f"input_blocks.{1 + b * (lpb + 1) + l}.0." + res(rest)
            elif kind == "attentions":
                nk = f"input_blocks.{1 + b * (lpb + 1) + l}.1." + rest
            elif kind == "downsamplers":  # downsamplers.0.conv.{weight,bias}
                nk = f"input_blocks.{(b + 1) * (lpb + 1)}.0.op." + p[-1]
            else:
                raise KeyError(k)
        elif p[0] == "mid_block":
            kind, l, rest = p[1], int(p[2]), ".".join(p[3:])
            if kind == "resnets":
                nk = f"middle_block.{2 * l}." + res(rest)
            else:
                nk = "middle_block.1." + rest
        elif p[0] == "up_blocks":
            b, kind, l, rest = int(p[1]), p[2], int(p[3]), ".".join(p[4:])
            if kind == "resnets":
                nk = f"output_blocks.{b * (lpb + 1) + l}.0." + res(rest)
            elif kind == "attentions":
                nk = f"output_blocks.{b * (lpb + 1) + l}.1." + rest
            elif kind == "upsamplers":
                has_attn = cfg["up_block_types"][b].startswith("CrossAttn")
                nk = f"output_blocks.{b * (lpb + 1) + lpb}.{2 if has_attn else 1}.conv." + p[-1]
            else:
                raise KeyError(k)
        else:
            raise KeyError(k)
        assert nk not in out, nk
        out[nk] = v
    assert len(out) == len(sd)
    return out


VAE_ATTN = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def vae_to_ldm(sd: dict, cfg: dict) -> dict:
    """diffusers AutoencoderKL state dict -> ldm `first_stage_model.*` (SD2-SPEC §6.2)."""
    n = len(cfg["block_out_channels"])
    out = {}
    for k, v in sd.items():
        p = k.split(".")
        if p[0] in ("quant_conv", "post_quant_conv"):
            nk = k
        elif p[1] in ("conv_in", "conv_out"):
            nk = k
        elif p[1] == "conv_norm_out":
            nk = f"{p[0]}.norm_out.{p[2]}"
        elif p[1] == "mid_block":
            if p[2] == "resnets":
                nk = f"{p[0]}.mid.block_{int(p[3]) + 1}." + ".".join(p[4:]).replace("conv_shortcut", "nin_shortcut")
            else:  # attentions.0.<name>.<weight|bias>
                name = ".".join(p[4:-1])
                nk = f"{p[0]}.mid.attn_1.{VAE_ATTN[name]}.{p[-1]}"
                if name != "group_norm" and p[-1] == "weight":
                    v = v[:, :, None, None]  # ldm stores them as 1x1 convs
        elif p[1] == "down_blocks":
            i = int(p[2])
            if p[3] == "resnets":
                nk = f"encoder.down.{i}.block.{p[4]}." + ".".join(p[5:]).replace("conv_shortcut", "nin_shortcut")
            else:  # downsamplers.0.conv.*
                nk = f"encoder.down.{i}.downsample.conv.{p[-1]}"
        elif p[1] == "up_blocks":
            i = n - 1 - int(p[2])  # ldm stores the decoder levels in reverse order
            if p[3] == "resnets":
                nk = f"decoder.up.{i}.block.{p[4]}." + ".".join(p[5:]).replace("conv_shortcut", "nin_shortcut")
            else:
                nk = f"decoder.up.{i}.upsample.conv.{p[-1]}"
        else:
            raise KeyError(k)
        assert nk not in out, nk
        out[nk] = v.contiguous()
    assert len(out) == len(sd)
    return out


CLIP_LAYER = {"layer_norm1": "ln_1", "layer_norm2": "ln_2", "self_attn.out_proj": "attn.out_proj",
              "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj"}


def clip_to_openclip(sd: dict, layers: int) -> dict:
    """transformers-5 CLIPTextModel state dict -> OpenCLIP text tower keys (SD2-SPEC §6.3)."""
    sd = {k.removeprefix("text_model."): v for k, v in sd.items() if not k.endswith("position_ids")}
    out = {
        "token_embedding.weight": sd.pop("embeddings.token_embedding.weight"),
        "positional_embedding": sd.pop("embeddings.position_embedding.weight"),
        "ln_final.weight": sd.pop("final_layer_norm.weight"),
        "ln_final.bias": sd.pop("final_layer_norm.bias"),
    }
    for i in range(layers):
        pre = f"encoder.layers.{i}."
        for t in ("weight", "bias"):
            out[f"transformer.resblocks.{i}.attn.in_proj_{t}"] = torch.cat(
                [sd.pop(pre + f"self_attn.{q}_proj.{t}") for q in "qkv"], 0)
            for a, b in CLIP_LAYER.items():
                out[f"transformer.resblocks.{i}.{b}.{t}"] = sd.pop(pre + f"{a}.{t}")
    assert not sd, list(sd)
    return out


def extra_openclip_block(width: int, index: int, dtype) -> dict:
    """The final OpenCLIP resblock that SD2 does not use (diffusers drops it)."""
    blk = nn.ModuleDict({"ln_1": nn.LayerNorm(width), "ln_2": nn.LayerNorm(width),
                         "out_proj": nn.Linear(width, width), "c_fc": nn.Linear(width, 4 * width),
                         "c_proj": nn.Linear(4 * width, width)})
    reinit_(blk)
    r = f"transformer.resblocks.{index}."
    out = {r + "attn.in_proj_weight": torch.randn(3 * width, width) / math.sqrt(width),
           r + "attn.in_proj_bias": 0.1 * torch.randn(3 * width)}
    for name, key in (("ln_1", "ln_1"), ("ln_2", "ln_2"), ("out_proj", "attn.out_proj"),
                      ("c_fc", "mlp.c_fc"), ("c_proj", "mlp.c_proj")):
        for t in ("weight", "bias"):
            out[r + f"{key}.{t}"] = getattr(blk[name], t).detach().clone()
    return {k: v.to(dtype) for k, v in out.items()}


def ldm_schedule_buffers() -> dict:
    """A few of the non-model buffers real ldm checkpoints carry (float32, as ldm registers
    them), so loaders are exercised on keys they must ignore and on mixed dtypes."""
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    ac = torch.cumprod(1.0 - betas, 0)
    return {"betas": betas.float(), "alphas_cumprod": ac.float(),
            "alphas_cumprod_prev": torch.cat([torch.ones(1, dtype=torch.float64), ac[:-1]]).float()}


def assert_same(a: dict, b: dict, what: str) -> None:
    if set(a) != set(b):
        raise AssertionError(f"{what}: key mismatch: only converted {sorted(set(a) - set(b))[:8]}, "
                             f"only diffusers {sorted(set(b) - set(a))[:8]}")
    for k in a:
        if a[k].shape != b[k].shape or a[k].dtype != b[k].dtype or not torch.equal(a[k], b[k]):
            raise AssertionError(f"{what}: tensor {k} differs ({a[k].shape} {a[k].dtype} vs {b[k].shape} {b[k].dtype})")


def make_singlefile(root: Path, seed: int) -> None:
    torch.manual_seed(seed)
    sfdir = root / "singlefile"
    folder = sfdir / "tiny-sd2"

    # SD2 conventions so that a config can be inferred from shapes: norm groups 32, text heads of
    # 64 channels, linear projections. UNet heads are 16 channels (not SD2's 64, to keep the file
    # small); a sidecar `tiny-sd2.yaml` says so with the ldm key `num_head_channels`, as the
    # original configs (v2-inference*.yaml) do.
    W, L, VOCAB, HEAD_CH = 64, 2, 256, 16
    te_cfg = clip_config(VOCAB, W, W // 64, L, 4 * W)
    te = CLIPTextModel(te_cfg).eval()
    reinit_(te)
    unet_cfg = unet_config([32, 32], [32 // HEAD_CH, 32 // HEAD_CH], in_ch=4, lpb=1, cross=W, groups=32,
                           sample_size=16)
    unet = UNet2DConditionModel(**unet_cfg).eval()
    reinit_(unet)
    vae_cfg = vae_config([32, 64], lpb=1, groups=32, sample_size=32)
    vae = AutoencoderKL(**vae_cfg).eval()
    reinit_(vae)
    for m in (te, unet, vae):
        round_to_fp16_(m)
    extra = extra_openclip_block(W, L, torch.float16)
    text_projection = (torch.randn(W, W) / math.sqrt(W)).half()

    # --- diffusers folder (float16) ---
    te.half().save_pretrained(str(folder / "text_encoder"), safe_serialization=True)
    unet.half().save_pretrained(str(folder / "unet"), safe_serialization=True)
    vae.half().save_pretrained(str(folder / "vae"), safe_serialization=True)
    sched = {
        "_class_name": "DDIMScheduler", "_diffusers_version": diffusers.__version__,
        "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
        "clip_sample": False, "num_train_timesteps": 1000, "prediction_type": "epsilon",
        "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1, "trained_betas": None,
    }
    (folder / "scheduler").mkdir(parents=True)
    (folder / "scheduler" / "scheduler_config.json").write_text(json.dumps(sched, indent=2) + "\n")
    model_index = {
        "_class_name": "StableDiffusionPipeline", "_diffusers_version": diffusers.__version__,
        "feature_extractor": [None, None], "requires_safety_checker": False,
        "safety_checker": [None, None], "scheduler": ["diffusers", "DDIMScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": [None, None],
        "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
    }
    (folder / "model_index.json").write_text(json.dumps(model_index, indent=2) + "\n")

    te_sd = load_file(str(folder / "text_encoder" / "model.safetensors"))
    unet_sd = load_file(str(folder / "unet" / "diffusion_pytorch_model.safetensors"))
    vae_sd = load_file(str(folder / "vae" / "diffusion_pytorch_model.safetensors"))
    assert all(v.dtype == torch.float16 for d in (te_sd, unet_sd, vae_sd) for v in d.values())

    # --- ldm single file ---
    ldm = {}
    ldm.update({"model.diffusion_model." + k: v for k, v in unet_to_ldm(unet_sd, unet_cfg).items()})
    ldm.update({"first_stage_model." + k: v for k, v in vae_to_ldm(vae_sd, vae_cfg).items()})
    clip = clip_to_openclip(te_sd, L)
    clip.update(extra)
    clip["text_projection"] = text_projection
    clip["logit_scale"] = torch.tensor(math.log(1 / 0.07)).half()  # 0-d, as in OpenCLIP
    ldm.update({"cond_stage_model.model." + k: v for k, v in clip.items()})
    ldm.update(ldm_schedule_buffers())
    ldm = {k: v.contiguous() for k, v in sorted(ldm.items())}
    sf_path = sfdir / "tiny-sd2.safetensors"
    save_file(ldm, str(sf_path), metadata={"format": "pt"})
    (sfdir / "tiny-sd2.yaml").write_text(
        "# Sidecar config in the layout of Stability-AI's v2-inference.yaml (only the keys a loader needs).\n"
        "model:\n  params:\n    parameterization: \"eps\"\n    unet_config:\n      params:\n"
        f"        num_head_channels: {HEAD_CH}\n        use_linear_in_transformer: true\n")

    # --- verify with diffusers' own converters: ldm -> diffusers must give the folder exactly ---
    ck = load_file(str(sf_path))
    assert_same(convert_ldm_unet_checkpoint(ck, dict(unet.config)), unet_sd, "unet ldm->diffusers")
    assert_same(convert_ldm_vae_checkpoint(ck, dict(vae.config)), vae_sd, "vae ldm->diffusers")
    te32 = CLIPTextModel(te_cfg)
    conv = convert_open_clip_checkpoint(te32, ck, prefix="cond_stage_model.model.")
    # diffusers' SD2 ignore-list hard-codes the 24-layer model's extra block (`resblocks.23`);
    # for this tiny model the extra block is resblocks.{L}, so drop it here the same way.
    conv = {k.removeprefix("text_model."): v for k, v in conv.items()
            if not k.startswith(f"text_model.encoder.layers.{L}.")}
    assert_same(conv, te_sd, "openclip ldm->diffusers")

    # --- reference io, computed from the fp16 folder loaded as float32 ---
    te_r = CLIPTextModel.from_pretrained(str(folder / "text_encoder"), dtype=torch.float32).eval()
    unet_r = UNet2DConditionModel.from_pretrained(str(folder / "unet"), torch_dtype=torch.float32).eval()
    vae_r = AutoencoderKL.from_pretrained(str(folder / "vae"), torch_dtype=torch.float32).eval()
    assert all(p.dtype == torch.float32 for m in (te_r, unet_r, vae_r) for p in m.parameters())

    ids = token_ids(VOCAB, [7, 75], seed + 1)
    hidden = te_r(ids)[0]
    sample = torch.randn(2, 4, 6, 10)
    t = torch.tensor([801, 1], dtype=torch.int64)
    unet_out = unet_r(sample, t, encoder_hidden_states=hidden).sample
    image = torch.rand(1, 3, 16, 24) * 2 - 1
    vlat = torch.randn(1, 4, 8, 12)
    vio = vae_io(vae_r, image, vlat)
    # --- and end to end: diffusers' own from_single_file (with the folder as config) must
    #     reproduce the folder's outputs bit for bit ---
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_single_file(
        str(sf_path), config=str(folder), local_files_only=True, torch_dtype=torch.float32,
        safety_checker=None, tokenizer=None)
    pipe.set_progress_bar_config(disable=True)
    check_close(pipe.text_encoder(ids)[0], hidden, "from_single_file text_encoder")
    check_close(pipe.unet(sample, t, encoder_hidden_states=hidden).sample, unet_out, "from_single_file unet")
    check_close(pipe.vae.decode(vlat).sample, vio["decoded"], "from_single_file vae")
    del pipe

    io_path = sfdir / "io.safetensors"
    save_io(io_path, {
        "input_ids": ids, "last_hidden_state": hidden,
        "unet_sample": sample, "unet_timestep": t, "unet_output": unet_out,
        "vae_latents": vlat, "vae_decoded": vio["decoded"],
        "vae_image": image, "vae_moments": vio["moments"],
    })
    SUMMARY.append(("singlefile/tiny-sd2 (folder)", human(dir_size(folder)), human(fsize(io_path)),
                    float(unet_out.abs().max())))
    SUMMARY.append(("singlefile/tiny-sd2.safetensors", human(fsize(sf_path)), "", float("nan")))
    SUMMARY.append((f"  params: unet {count(unet_r)}, vae {count(vae_r)}, text {count(te_r)} "
                    f"(+{sum(v.numel() for v in extra.values())} extra block); "
                    f"max|hidden| {float(hidden.abs().max()):.2f} max|decoded| {float(vio['decoded'].abs().max()):.2f}",
                    "", "", float("nan")))


# ----------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=REPO / "Tests" / "Fixtures")
    args = ap.parse_args()
    root: Path = args.out
    t0 = time.time()
    print(f"torch {torch.__version__}, diffusers {diffusers.__version__}, "
          f"transformers {transformers.__version__}  ->  {root}")
    for sub in ("clip", "unet", "vae", "singlefile"):
        shutil.rmtree(root / sub, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)

    # Sizes are chosen for bytes: all of Tests/Fixtures is committed.  Channel counts per level
    # differ (8/16/24 with 8 groups => 1/2/3 channels per group, heads of 8 channels) so that
    # shortcut convs, group indexing and multi-head splits are all exercised.

    # ---- CLIP text encoders ----
    make_clip(root, "h64-l3-b2", 100, vocab=512, hidden=64, heads=4, layers=3, inter=128,
              lengths=[5, 75], half=True)
    make_clip(root, "h48-l2-b1", 110, vocab=256, hidden=48, heads=3, layers=2, inter=96,
              lengths=[12])
    make_clip(root, "h32-l2-b2-v4layout", 120, vocab=256, hidden=32, heads=2, layers=2, inter=64,
              lengths=[0, 30], layout4=True, half=True)

    # ---- UNets (SD2 structure scaled down; attention_head_dim = head COUNT per level) ----
    make_unet(root, "base-eps", 200, unet_config([16, 24], [2, 3], lpb=2, cross=32),
              batch=2, hw=(8, 8), seq=77, timestep=torch.tensor([999, 261], dtype=torch.int64),
              fp16_case="fp16", half=True)
    make_unet(root, "v768-upcast", 210,
              unet_config([8, 16, 24], [1, 2, 3], lpb=1, cross=40, upcast=True),
              batch=1, hw=(10, 14), seq=77, timestep=torch.tensor([978.612], dtype=torch.float32), half=True)
    make_unet(root, "inpaint", 220, unet_config([8, 16], [1, 2], in_ch=9, cross=32),
              batch=2, hw=(8, 8), seq=77, timestep=torch.tensor([500, 500], dtype=torch.int64), half=True)
    make_unet(root, "depth", 230, unet_config([8, 16], [1, 2], in_ch=5, cross=32),
              batch=1, hw=(6, 10), seq=77, timestep=torch.tensor([21], dtype=torch.int64), half=True)
    make_unet(root, "x4", 240,
              unet_config([8, 16, 24], 2, in_ch=7, cross=32,
                          down=["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
                          up=["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
                          only_cross=[True, True, False], num_class_embeds=1000),
              batch=2, hw=(8, 12), seq=77, timestep=torch.tensor([900, 37], dtype=torch.int64),
              class_labels=torch.tensor([20, 350], dtype=torch.int64), half=True)
    make_unet(root, "conv-proj", 250, unet_config([8, 16], [1, 2], cross=32, linear=False),
              batch=1, hw=(8, 8), seq=16, timestep=torch.tensor([640], dtype=torch.int64), half=True)

    # ---- VAEs ----
    make_vae(root, "sd2", 300, vae_config([16, 16, 24, 24], lpb=2, groups=8), batch=2, hw=(40, 56), half=True)
    make_vae(root, "x4", 310, vae_config([8, 16, 24], lpb=1, groups=8, scaling=0.08333),
             batch=1, hw=(24, 32), half=True)
    make_vae(root, "legacy-attn", 320, vae_config([8, 16, 16, 16], lpb=1, groups=8),
             batch=1, hw=(32, 24), legacy=True, half=True)

    # ---- single file (ldm) + equivalent diffusers folder, float16 ----
    make_singlefile(root, 400)

    print(f"\n{'case':34s} {'weights':>9s} {'io':>7s} {'max|out|':>9s}")
    for case, w, io, m in SUMMARY:
        if math.isnan(m):
            print(f"{case:34s} {w:>9s}")
        else:
            print(f"{case:34s} {w:>9s} {io:>7s} {m:9.3f}")
    print(f"\ntotal {human(dir_size(root))} in {root}  ({time.time() - t0:.1f}s)")


if __name__ == "__main__":
    main()
