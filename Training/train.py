#!/usr/bin/env python3
"""Train the embedded demo models (Models/demo/base, Models/demo/x4) from scratch on CPU.

One command (deterministic: fixed seeds, one torch thread per process, two processes):

    .venv/bin/python Training/train.py all

`all` makes the data, then runs two lanes side by side, one core each, and exports:
    lane a   vae (1,200 steps), base (9,500 steps, torch.compile'd)
    lane b   vaex4 (3,500 steps), vaedec (300 steps), x4 (14,500 steps, paced by base through
             text encoder snapshots, see x4_text_encoder_path)
Measured for the committed models (AMD EPYC Zen 3, 2 vCPUs, one run of `all`): 1 h 45 min 36 s
from the start to the export: data 2.3 min, vae 5.5 min, base 95 min (0.54-0.60 s/step after about
2 min of compiling; 1.25 s/step while a Swift build ran beside it, even at idle priority), vaex4
15.6 min, vaedec 2.7 min, x4 0.18-0.20 s/step while not waiting, its last 763 steps 2.6 min after
base. Models/demo/README.md has more.

Stages (each resumable; checkpoints and logs under .train-logs/, git-ignored):

    data    procedural scenes (Training/scenes.py), held-out captions excluded
    vae     AutoencoderKL, 4x downsampling (64 px image <-> 16x16x4 latent), SD2 family
    vaex4   the upscaler's own AutoencoderKL, same architecture, trained longer (its latents
            are not tied to the base UNet, so it can reconstruct sharper edges)
    base    CLIPTextModel (real CLIP BPE vocabulary, SD2 layout, 4 layers) + UNet2DConditionModel
            trained jointly for the whole run, epsilon prediction, 10% caption dropout for
            classifier-free guidance, pyramid training noise (see pyramid_noise), shape-weighted
            and min-SNR-weighted loss; saves a text encoder snapshot every --te-snapshot steps
            (--te-freeze N freezes the encoder from step N, the older recipe)
    x4      UNet2DConditionModel for StableDiffusionUpscalePipeline: 7 input channels (latent +
            noisy low-res RGB), noise-level class embedding, v prediction, 16 -> 64 px
    vaedec  decoder-only fine-tune (encoder frozen, so the cached latents stay valid)
    export  fp16 safetensors in diffusers layout; x4 shares text_encoder and tokenizer with base
            through relative symlinks (one copy of the 49,408-row embedding in the repo) and gets
            its VAE rescaled to the 0.08333 scaling factor diffusers forces on x4 upscalers

`x4` runs beside `base` (it waits for each text encoder snapshot it needs, and trains its last
share against the final encoder), or after it.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import random
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
import warnings

warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scenes  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / ".train-logs"
OUT = REPO / "Models" / "demo"

# ---------------------------------------------------------------------------------------------
# model configurations (SD2 family, scaled down)
# ---------------------------------------------------------------------------------------------

VAE_CONFIG = dict(
    in_channels=3, out_channels=3, latent_channels=4,
    down_block_types=["DownEncoderBlock2D"] * 3, up_block_types=["UpDecoderBlock2D"] * 3,
    block_out_channels=[16, 32, 64], layers_per_block=1, act_fn="silu", norm_num_groups=8,
    sample_size=64, scaling_factor=1.0,
)

TE_CONFIG = dict(
    vocab_size=49408, hidden_size=32, intermediate_size=128, num_hidden_layers=4,
    num_attention_heads=2, max_position_embeddings=77, hidden_act="gelu", layer_norm_eps=1e-5,
    attention_dropout=0.0, dropout=0.0, projection_dim=32,
    # the values of the SD2 repositories (they only affect the unused pooled output)
    bos_token_id=0, eos_token_id=2, pad_token_id=1,
)

UNET_CONFIG = dict(
    sample_size=16, in_channels=4, out_channels=4, center_input_sample=False,
    flip_sin_to_cos=True, freq_shift=0,
    down_block_types=["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    mid_block_type="UNetMidBlock2DCrossAttn",
    up_block_types=["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    only_cross_attention=False, block_out_channels=[32, 64, 96], layers_per_block=1,
    downsample_padding=1, mid_block_scale_factor=1, act_fn="silu", norm_num_groups=8,
    norm_eps=1e-5, cross_attention_dim=32, attention_head_dim=[1, 2, 3],
    use_linear_projection=True, upcast_attention=False, resnet_time_scale_shift="default",
)

X4_CONFIG = dict(
    sample_size=16, in_channels=7, out_channels=4, center_input_sample=False,
    flip_sin_to_cos=True, freq_shift=0,
    down_block_types=["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    mid_block_type="UNetMidBlock2DCrossAttn",
    up_block_types=["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    only_cross_attention=[True, True, False], block_out_channels=[32, 48, 64],
    layers_per_block=1, downsample_padding=1, mid_block_scale_factor=1, act_fn="silu",
    norm_num_groups=8, norm_eps=1e-5, cross_attention_dim=32, attention_head_dim=[1, 2, 2],
    use_linear_projection=True, upcast_attention=False, num_class_embeds=1000,
    resnet_time_scale_shift="default",
)

BASE_SCHEDULER = {
    "_class_name": "DDIMScheduler", "_diffusers_version": "0.8.0", "beta_end": 0.012,
    "beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": False,
    "num_train_timesteps": 1000, "prediction_type": "epsilon", "set_alpha_to_one": False,
    "skip_prk_steps": True, "steps_offset": 1, "trained_betas": None,
}
X4_SCHEDULER = {
    "_class_name": "DDIMScheduler", "_diffusers_version": "0.10.0.dev0", "beta_end": 0.02,
    "beta_schedule": "scaled_linear", "beta_start": 0.0001, "clip_sample": False,
    "num_train_timesteps": 1000, "prediction_type": "v_prediction", "set_alpha_to_one": False,
    "skip_prk_steps": True, "steps_offset": 1, "trained_betas": None,
}
X4_LOW_RES_SCHEDULER = {
    "_class_name": "DDPMScheduler", "_diffusers_version": "0.10.0.dev0", "beta_end": 0.02,
    "beta_schedule": "scaled_linear", "beta_start": 0.0001, "clip_sample": True,
    "num_train_timesteps": 1000, "trained_betas": None, "variance_type": "fixed_small",
}
MAX_NOISE_LEVEL = 350


def log(stage: str, msg: str) -> None:
    line = f"{time.strftime('%H:%M:%S')} [{stage}] {msg}"
    print(line, flush=True)
    WORK.mkdir(parents=True, exist_ok=True)
    with open(WORK / f"{stage}.log", "a") as f:
        f.write(line + "\n")


def alphas_cumprod(beta_start: float, beta_end: float) -> torch.Tensor:
    betas = torch.linspace(beta_start ** 0.5, beta_end ** 0.5, 1000, dtype=torch.float64) ** 2
    return torch.cumprod(1 - betas, 0).float()


# ---------------------------------------------------------------------------------------------
# tokenizer: the real CLIP BPE vocabulary, rebuilt from the merges Atelier embeds
# ---------------------------------------------------------------------------------------------


def bytes_to_unicode() -> dict[int, str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def write_tokenizer(folder: Path) -> None:
    """vocab.json + merges.txt of the SD2 repositories, from BundledCLIPMerges.swift."""
    src = (REPO / "Sources/AtelierDiffusion/Resources/BundledCLIPMerges.swift").read_text()
    body = src.split('#"""\n', 1)[1].rsplit('\n"""#', 1)[0]
    merges = body.split("\n")
    assert len(merges) == 48894, len(merges)
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m.split(" ")) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {}
    for i, t in enumerate(tokens):
        vocab.setdefault(t, i)
    assert len(vocab) == 49408
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False, separators=(",", ":")))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    special = lambda c: {"content": c, "lstrip": False, "normalized": True, "rstrip": False, "single_word": False}
    (folder / "special_tokens_map.json").write_text(json.dumps({
        "bos_token": special("<|startoftext|>"), "eos_token": special("<|endoftext|>"),
        "pad_token": "!", "unk_token": special("<|endoftext|>")}, indent=2) + "\n")
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "add_prefix_space": False, "bos_token": special("<|startoftext|>"), "do_lower_case": True,
        "eos_token": special("<|endoftext|>"), "errors": "replace", "model_max_length": 77,
        "pad_token": "!", "tokenizer_class": "CLIPTokenizer", "unk_token": special("<|endoftext|>"),
    }, indent=2) + "\n")


def tokenizer():
    from transformers import CLIPTokenizer
    folder = WORK / "tokenizer"
    if not (folder / "merges.txt").exists():
        write_tokenizer(folder)
    return CLIPTokenizer.from_pretrained(str(folder))


def token_ids(tok, captions: list[str]) -> torch.Tensor:
    return tok(captions, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------


def stage_data(args) -> None:
    path = WORK / "data.npz"
    if path.exists():
        log("data", "exists")
        return
    held = set(scenes.held_out_captions())
    rng = random.Random(args.seed)
    imgs, caps = [], []
    for _ in range(args.n_train):
        sc = scenes.sample_scene(rng, exclude=held)
        imgs.append(scenes.render(sc, 64))
        caps.append(sc.caption)
    # x4 pairs: 64 px crops of 256 px scenes (tile-like) and whole 64 px scenes
    hr = []
    for i in range(args.n_x4):
        sc = scenes.sample_scene(rng, exclude=held)
        if i % 2 == 0:
            big = scenes.render(sc, 256, ss=2)
            x0, y0 = rng.randrange(0, 193, 4), rng.randrange(0, 193, 4)
            hr.append(big[y0:y0 + 64, x0:x0 + 64])
        else:
            hr.append(scenes.render(sc, 64))
        caps.append(sc.caption)
    np.savez(path, images=np.stack(imgs), hr=np.stack(hr), captions=np.array(caps[:args.n_train]),
             hr_captions=np.array(caps[args.n_train:]))
    log("data", f"{len(imgs)} scenes, {len(hr)} x4 pairs")


def load_data():
    d = np.load(WORK / "data.npz")
    return d["images"], [str(c) for c in d["captions"]], d["hr"], [str(c) for c in d["hr_captions"]]


def to_tensor(u8: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(u8).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def downsample4(x: torch.Tensor) -> torch.Tensor:
    """Box filter: what rendering the scene at a quarter of the size gives."""
    return F.avg_pool2d(x, 4)


def pyramid_noise(shape, g: torch.Generator, discount: float) -> torch.Tensor:
    """Gaussian noise plus coarser Gaussian noise at every halved resolution down to 1x1
    (weights discount^i, bilinear upsampling), rescaled to unit standard deviation.

    Why: the SD2 schedule does not reach zero SNR (sqrt(alpha_bar) is 0.068 at t = 999), and a
    two-tone background is a strong low-frequency signal: the difference between the mean latents
    of its two halves has norm 2.0 on average, against 0.125 per channel for the same statistic
    of white noise. So with white training noise the layout shows through x_t at every timestep,
    the UNet learns to read it there rather than from the caption, and at inference, where x_T is
    pure noise, it follows the noise. Pyramid noise with discount 0.8 raises that statistic to
    0.385 per channel, hiding the layout above t ~ 850, so there the caption is the only source.
    Measured on the earlier recipe (two-tone captions then fixed which colour was on top): it did
    not make the UNet learn that order within 10,500 steps, but cost nothing elsewhere, and it
    still keeps the high-noise steps about the caption. Inference is unchanged (DDIM, white noise).
    """
    b, c, h, w = shape
    n = torch.randn(shape, generator=g)
    s, i = h, 1
    while s > 1:
        s //= 2
        coarse = torch.randn(b, c, s, max(1, s * w // h), generator=g)
        n = n + discount ** i * F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
        i += 1
    return n / n.std()


# ---------------------------------------------------------------------------------------------
# checkpoints
# ---------------------------------------------------------------------------------------------


def save_ckpt(name: str, step: int, **state) -> None:
    tmp = WORK / f"{name}.pt.tmp"
    torch.save({"step": step, **{k: v.state_dict() for k, v in state.items()}}, tmp)
    os.replace(tmp, WORK / f"{name}.pt")


def load_ckpt(name: str, **state) -> int:
    p = WORK / f"{name}.pt"
    if not p.exists():
        return 0
    ck = torch.load(p, weights_only=True)
    for k, v in state.items():
        v.load_state_dict(ck[k])
    return int(ck["step"])


class EMA:
    def __init__(self, model, decay):
        self.decay = decay
        self.shadow = copy.deepcopy(model).eval()
        for p in self.shadow.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model, step):
        d = min(self.decay, (1 + step) / (10 + step))
        for s, p in zip(self.shadow.parameters(), model.parameters()):
            s.mul_(d).add_(p.detach(), alpha=1 - d)

    def state_dict(self):
        return self.shadow.state_dict()

    def load_state_dict(self, sd):
        self.shadow.load_state_dict(sd)


# ---------------------------------------------------------------------------------------------
# VAE
# ---------------------------------------------------------------------------------------------


def make_vae():
    from diffusers import AutoencoderKL
    return AutoencoderKL(**VAE_CONFIG)


def train_vae(args, name: str, seed: int, steps: int, full_from: int):
    """Train a whole VAE (encoder and decoder) on the scenes and the x4 targets: 32 px crops (a
    quarter of the cost; the VAE is convolutional), then whole 64 px pictures from step
    full_from, so the mid-block attention sees the size it runs at."""
    torch.manual_seed(seed)
    images, _, hr, _ = load_data()
    allimg = np.concatenate([images, hr])
    vae = make_vae().train()
    opt = torch.optim.AdamW(vae.parameters(), lr=args.vae_lr, weight_decay=0.0)
    step = load_ckpt(name, vae=vae, opt=opt)
    g = np.random.default_rng(seed + 1 + step)
    t0 = time.time()
    while step < steps:
        lr = args.vae_lr * 0.5 * (1 + math.cos(math.pi * step / steps))
        for pg in opt.param_groups:
            pg["lr"] = lr
        x = to_tensor(allimg[g.integers(0, len(allimg), args.vae_batch)])
        if step < full_from:
            ox, oy = (int(v) for v in g.integers(0, 9, 2) * 4)
            x = x[:, :, oy:oy + args.vae_crop, ox:ox + args.vae_crop]
        post = vae.encode(x).latent_dist
        z = post.sample()
        rec = vae.decode(z).sample
        l2 = F.mse_loss(rec, x)
        l1 = (rec - x).abs().mean()
        kl = post.kl().mean() / z[0].numel()
        loss = l2 + l1 + args.vae_kl * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 50 == 0 or step == steps:
            log(name, f"step {step} l2 {l2.item():.5f} l1 {l1.item():.4f} kl {kl.item():.3f} "
                      f"std {z.std().item():.3f} {(time.time() - t0) / 50:.2f}s/it")
            t0 = time.time()
        if step % 250 == 0 or step == steps:
            save_ckpt(name, step, vae=vae, opt=opt)
    return vae.eval()


def encode_all(vae, images: np.ndarray) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([vae.encode(to_tensor(images[i:i + 256])).latent_dist.mean
                          for i in range(0, len(images), 256)])


def stage_vae(args) -> None:
    vae = train_vae(args, "vae", args.seed + 1, args.vae_steps, full_from=args.vae_steps)
    # latent statistics -> scaling factor, and cached latents for the UNets
    images, _, hr, _ = load_data()
    lat, hrl = encode_all(vae, images), encode_all(vae, hr)
    with torch.no_grad():
        err = (vae.decode(lat[:256]).sample - to_tensor(images[:256])).abs().mul(127.5)
    sf = float(1.0 / lat.std())
    torch.save({"latents": lat, "hr_latents": hrl, "scaling_factor": sf}, WORK / "latents.pt")
    log("vae", f"scaling_factor {sf:.5f}; recon mean |err| {err.mean():.2f}/255, max {err.max():.1f}/255")


def stage_vaex4(args) -> None:
    """The upscaler's own VAE. Why not the base one: an x4 upscale can be no sharper than its
    VAE reconstructs, and the base VAE (short training, its latents frozen by the base UNet)
    reconstructs held-out scenes at 27.7 dB, about what bicubic interpolation gets from the
    16 px input. The x4 UNet is trained on this VAE's latents, so it can be trained longer."""
    vae = train_vae(args, "vaex4", args.seed + 5, args.vaex4_steps, full_from=int(args.vaex4_steps * 0.85))
    _, _, hr, _ = load_data()
    hrl = encode_all(vae, hr)
    with torch.no_grad():
        err = (vae.decode(hrl[:256]).sample - to_tensor(hr[:256])).pow(2).mean()
    sf = float(1.0 / hrl.std())
    torch.save({"hr_latents": hrl, "scaling_factor": sf}, WORK / "x4latents.pt")
    log("vaex4", f"scaling_factor {sf:.5f}; recon PSNR {10 * math.log10(4 / err.item()):.2f} dB")


def stage_vaedec(args) -> None:
    """Sharpen the decoder with the encoder frozen: the cached latents (and so the UNets trained
    on them) stay valid while edges get crisper."""
    torch.manual_seed(args.seed + 3)
    images, _, hr, _ = load_data()
    allimg = np.concatenate([images, hr])
    vae = make_vae()
    load_ckpt("vae", vae=vae)
    vae.train()
    vae.encoder.requires_grad_(False)
    vae.quant_conv.requires_grad_(False)
    params = list(vae.decoder.parameters()) + list(vae.post_quant_conv.parameters())
    opt = torch.optim.AdamW(params, lr=args.dec_lr, weight_decay=0.0)
    step = load_ckpt("vaedec", vae=vae, opt=opt)
    g = np.random.default_rng(args.seed + 4 + step)
    t0 = time.time()
    while step < args.dec_steps:
        lr = args.dec_lr * 0.5 * (1 + math.cos(math.pi * step / args.dec_steps))
        for pg in opt.param_groups:
            pg["lr"] = lr
        x = to_tensor(allimg[g.integers(0, len(allimg), args.vae_batch)])
        with torch.no_grad():
            z = vae.encode(x).latent_dist.mean
        rec = vae.decode(z).sample
        l2 = F.mse_loss(rec, x)
        l1 = (rec - x).abs().mean()
        loss = l2 + l1
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        if step % 50 == 0 or step == args.dec_steps:
            log("vaedec", f"step {step} l2 {l2.item():.5f} l1 {l1.item():.4f} {(time.time() - t0) / 50:.2f}s/it")
            t0 = time.time()
        if step % 100 == 0 or step == args.dec_steps:
            save_ckpt("vaedec", step, vae=vae, opt=opt)


# ---------------------------------------------------------------------------------------------
# base: text encoder + UNet
# ---------------------------------------------------------------------------------------------


def make_te():
    from transformers import CLIPTextConfig, CLIPTextModel
    return CLIPTextModel(CLIPTextConfig(**TE_CONFIG))


def make_unet(cfg):
    from diffusers import UNet2DConditionModel
    return UNet2DConditionModel(**cfg)


def shape_weights(images: np.ndarray, captions: list[str], fg_weight: float) -> torch.Tensor:
    """Per-latent-pixel loss weights, 1 + fg_weight x (share of the 4x4 pixel cell covered by the
    shape's colour), shape (N, 1, 16, 16).

    Why: a small shape covers ~3x3 of the 16x16 latent pixels, so in a plain mean squared error
    the background outweighs the one thing the caption's first colour word talks about, and the
    UNet learned the background colour long before the shape's (measured: the step-3250 model
    got the background right and the shape colour wrong on most held-out captions, and did no
    better on its own training captions, so the gap was fitting, not generalisation). The mask
    is the pixels whose nearest palette colour is the caption's shape colour (the generator never
    paints the background in the shape's colour)."""
    pal = torch.tensor([scenes.PALETTE[c] for c in scenes.COLOURS], dtype=torch.int32)
    out = torch.empty(len(images), 1, 16, 16)
    for i0 in range(0, len(images), 500):
        x = torch.from_numpy(images[i0:i0 + 500]).to(torch.int32)
        cls = ((x[:, :, :, None, :] - pal) ** 2).sum(-1).argmin(-1)
        fg = torch.tensor([scenes.COLOURS.index(scenes.parse_caption(c)[1]) for c in captions[i0:i0 + 500]])
        m = (cls == fg.view(-1, 1, 1)).float().unsqueeze(1)
        out[i0:i0 + 500] = 1 + fg_weight * F.avg_pool2d(m, 4)
    return out


def save_te(te, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(te.state_dict(), tmp)
    os.replace(tmp, path)


def x4_text_encoder_path(args, step: int) -> Path:
    """The text encoder the upscaler trains against at its step `step`.

    Why snapshots: the upscaler shares the base model's text encoder (one copy in the repository),
    and that encoder now trains for the whole base run, so an upscaler trained only after it would
    double the wall time. Instead x4 trains beside base on the other core against the encoder of
    the base step in proportion to its own (the latest --te-snapshot multiple), waiting when base
    is behind, and its last share against the final encoder. Tied to steps, not to time, so the
    run is deterministic however fast either process goes."""
    if 0 < args.te_freeze and not args.te_thaw:
        return WORK / "te_final.pt"  # frozen early: one encoder for the whole x4 run
    b = step * args.base_steps // args.x4_steps // args.te_snapshot * args.te_snapshot
    if b + args.te_snapshot > args.base_steps:
        return WORK / "te_final.pt"
    return WORK / "te-snapshots" / f"te-{b}.pt"


def stage_base(args) -> None:
    torch.manual_seed(args.seed + 10)
    images, captions, _, _ = load_data()
    wmap = shape_weights(images, captions, args.fg_weight) if args.fg_weight > 0 else None
    del images
    L = torch.load(WORK / "latents.pt", weights_only=True)
    lat = L["latents"] * L["scaling_factor"]
    tok = tokenizer()
    ids_all = token_ids(tok, captions)
    empty = token_ids(tok, [""])
    # Two-tone scenes drawn --two-tone-boost times as often: they are the hardest captions (two
    # background colour words and a shape colour to bind), and a third of the held-out captions.
    # Measured on the earlier recipe, whose two-tone captions fixed the order: it costs one-tone
    # captions nothing.
    pick = None
    if args.two_tone_boost != 1:
        pick = torch.tensor([args.two_tone_boost if " and " in c else 1.0 for c in captions])
    te, unet = make_te().train(), make_unet(UNET_CONFIG).train()
    opt = torch.optim.AdamW(list(te.parameters()) + list(unet.parameters()), lr=args.base_lr, weight_decay=0.01)
    ema = EMA(unet, args.ema)
    step = load_ckpt("base", te=te, unet=unet, opt=opt, ema=ema)
    ac = alphas_cumprod(0.00085, 0.012)
    g = torch.Generator().manual_seed(args.seed + 11 + step)
    # torch.compile (inductor, C++ kernels): measured 0.57 s/step against 0.99 eager on one Zen 3
    # core, after about 3.5 min of compiling; the checkpoints hold the plain modules' weights
    te_f, unet_f = (torch.compile(te), torch.compile(unet)) if args.compile else (te, unet)
    t0 = time.time()
    snaps = WORK / "te-snapshots"
    snaps.mkdir(exist_ok=True)
    while step < args.base_steps:
        frozen = 0 < args.te_freeze <= step < (args.te_thaw or args.base_steps)
        if frozen and not (WORK / "te_final.pt").exists():
            save_te(te, WORK / "te_final.pt")
            log("base", f"text encoder frozen at step {step}")
        if step % args.te_snapshot == 0 and not (snaps / f"te-{step}.pt").exists():
            save_te(te, snaps / f"te-{step}.pt")  # what the upscaler trains against meanwhile
        te.requires_grad_(not frozen)
        warm = min(1.0, (step + 1) / 200)
        lr = args.base_lr * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / args.base_steps)))
        for pg in opt.param_groups:
            pg["lr"] = lr
        if pick is None:
            idx = torch.randint(0, len(lat), (args.base_batch,), generator=g)
        else:
            idx = torch.multinomial(pick, args.base_batch, replacement=True, generator=g)
        x0 = lat[idx]
        ids = ids_all[idx].clone()
        drop = torch.rand(args.base_batch, generator=g) < args.cfg_drop
        ids[drop] = empty
        t = torch.randint(0, 1000, (args.base_batch,), generator=g)
        if args.pyramid_noise > 0:
            noise = pyramid_noise(x0.shape, g, args.pyramid_noise)
        else:
            noise = torch.randn(x0.shape, generator=g)
        noise = noise + args.offset_noise * torch.randn(x0.shape[0], x0.shape[1], 1, 1, generator=g)
        a = ac[t].view(-1, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        if frozen:
            with torch.no_grad():
                cond = te_f(ids)[0]
        else:
            cond = te_f(ids)[0]
        pred = unet_f(xt, t, encoder_hidden_states=cond).sample
        se = (pred - noise) ** 2
        if wmap is not None:
            se = se * wmap[idx]
        if args.min_snr > 0:
            # min-SNR-gamma weighting for epsilon prediction (Hang et al. 2023): the easy,
            # low-noise steps stop dominating, and the high-noise steps, where the layout and the
            # colours are decided, get the gradient
            snr = a / (1 - a)
            se = se * (snr.clamp(max=args.min_snr) / snr)
        loss = se.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(te.parameters()) + list(unet.parameters()), 1.0)
        opt.step()
        ema.update(unet, step)
        step += 1
        if step % 50 == 0:
            log("base", f"step {step} loss {loss.item():.4f} lr {lr:.2e} {(time.time() - t0) / 50:.2f}s/it")
            t0 = time.time()
        if step % 250 == 0 or step == args.base_steps:
            save_ckpt("base", step, te=te, unet=unet, opt=opt, ema=ema)
    if args.te_freeze == 0 or args.te_thaw or not (WORK / "te_final.pt").exists():
        # trained to the end: the encoder the exported UNet was trained against is the last one
        save_te(te, WORK / "te_final.pt")
        log("base", f"text encoder saved at step {step}")


# ---------------------------------------------------------------------------------------------
# x4 upscaler
# ---------------------------------------------------------------------------------------------


def stage_x4(args) -> None:
    torch.manual_seed(args.seed + 20)
    _, _, hr, hr_caps = load_data()
    L = torch.load(WORK / "x4latents.pt", weights_only=True)
    lat = L["hr_latents"] * L["scaling_factor"]
    lowres = downsample4(to_tensor(hr))
    tok = tokenizer()
    uniq = sorted(set(hr_caps))
    uniq_ids = token_ids(tok, uniq)
    row = {c: i for i, c in enumerate(uniq)}
    where = torch.tensor([row[c] for c in hr_caps])
    empty_ids = token_ids(tok, [""])
    te = make_te().eval()
    te.requires_grad_(False)
    te_path, cond_all, empty = None, None, None

    def condition(step: int):
        nonlocal te_path, cond_all, empty
        want = x4_text_encoder_path(args, step)
        if want == te_path:
            return
        while not want.exists():
            log("x4", f"step {step}: waiting for the text encoder {want.name}")
            time.sleep(30)
        te.load_state_dict(torch.load(want, weights_only=True))
        with torch.no_grad():
            e = torch.cat([te(uniq_ids[i:i + 256])[0] for i in range(0, len(uniq), 256)])
            cond_all, empty = e[where], te(empty_ids)[0][0]
        te_path = want
        log("x4", f"step {step}: conditioning on {want.name}")
    unet = make_unet(X4_CONFIG).train()
    opt = torch.optim.AdamW(unet.parameters(), lr=args.x4_lr, weight_decay=0.01)
    ema = EMA(unet, args.ema)
    step = load_ckpt("x4", unet=unet, opt=opt, ema=ema)
    ac = alphas_cumprod(0.0001, 0.02)
    g = torch.Generator().manual_seed(args.seed + 21 + step)
    t0 = time.time()
    while step < args.x4_steps:
        condition(step)
        warm = min(1.0, (step + 1) / 200)
        lr = args.x4_lr * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / args.x4_steps)))
        for pg in opt.param_groups:
            pg["lr"] = lr
        B = args.x4_batch
        idx = torch.randint(0, len(lat), (B,), generator=g)
        x0 = lat[idx]
        cond = cond_all[idx].clone()
        drop = torch.rand(B, generator=g) < args.x4_cfg_drop
        cond[drop] = empty
        # noise level: mostly small (the default is 20), sometimes up to the maximum
        nl = torch.where(torch.rand(B, generator=g) < 0.7,
                         torch.randint(0, 61, (B,), generator=g),
                         torch.randint(0, MAX_NOISE_LEVEL + 1, (B,), generator=g))
        lr_img = lowres[idx]
        an = ac[nl].view(-1, 1, 1, 1)
        lr_img = an.sqrt() * lr_img + (1 - an).sqrt() * torch.randn(lr_img.shape, generator=g)
        t = torch.randint(0, 1000, (B,), generator=g)
        noise = torch.randn(x0.shape, generator=g)
        a = ac[t].view(-1, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        v = a.sqrt() * noise - (1 - a).sqrt() * x0
        pred = unet(torch.cat([xt, lr_img], 1), t, encoder_hidden_states=cond, class_labels=nl).sample
        loss = F.mse_loss(pred, v)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        ema.update(unet, step)
        step += 1
        if step % 50 == 0:
            log("x4", f"step {step} loss {loss.item():.4f} lr {lr:.2e} {(time.time() - t0) / 50:.2f}s/it")
            t0 = time.time()
        if step % 250 == 0 or step == args.x4_steps:
            save_ckpt("x4", step, unet=unet, opt=opt, ema=ema)


# ---------------------------------------------------------------------------------------------
# export
# ---------------------------------------------------------------------------------------------


def write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def stage_export(args) -> None:
    out = Path(args.out)
    base, x4 = out / "base", out / "x4"
    for d in (base, x4):
        if d.exists():
            shutil.rmtree(d)
    L = torch.load(WORK / "latents.pt", weights_only=True)
    vae = make_vae()
    load_ckpt("vae", vae=vae)
    if (WORK / "vaedec.pt").exists():
        log("export", f"vae decoder fine-tuned for {load_ckpt('vaedec', vae=vae)} steps")
    vae.register_to_config(scaling_factor=round(L["scaling_factor"], 5))
    vae.half().save_pretrained(str(base / "vae"), safe_serialization=True)
    te = make_te()
    te.load_state_dict(torch.load(WORK / "te_final.pt", weights_only=True))
    te.half().save_pretrained(str(base / "text_encoder"), safe_serialization=True)
    write_tokenizer(base / "tokenizer")
    unet = make_unet(UNET_CONFIG)
    ema = EMA(unet, args.ema)
    step = load_ckpt("base", ema=ema)
    ema.shadow.half().save_pretrained(str(base / "unet"), safe_serialization=True)
    write_json(base / "scheduler" / "scheduler_config.json", BASE_SCHEDULER)
    write_json(base / "model_index.json", {
        "_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.42.1",
        "feature_extractor": [None, None], "image_encoder": [None, None],
        "requires_safety_checker": False, "safety_checker": [None, None],
        "scheduler": ["diffusers", "DDIMScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"]})
    log("export", f"base unet from EMA at step {step}")
    if (WORK / "x4.pt").exists():
        unet = make_unet(X4_CONFIG)
        ema = EMA(unet, args.ema)
        step = load_ckpt("x4", ema=ema)
        ema.shadow.half().save_pretrained(str(x4 / "unet"), safe_serialization=True)
        write_json(x4 / "scheduler" / "scheduler_config.json", X4_SCHEDULER)
        write_json(x4 / "low_res_scheduler" / "scheduler_config.json", X4_LOW_RES_SCHEDULER)
        write_json(x4 / "model_index.json", {
            "_class_name": "StableDiffusionUpscalePipeline", "_diffusers_version": "0.42.1",
            "feature_extractor": [None, None], "low_res_scheduler": ["diffusers", "DDPMScheduler"],
            "max_noise_level": MAX_NOISE_LEVEL, "safety_checker": [None, None],
            "scheduler": ["diffusers", "DDIMScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
            "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"],
            "vae": ["diffusers", "AutoencoderKL"], "watermarker": [None, None]})
        for part in ("text_encoder", "tokenizer"):
            os.symlink(f"../base/{part}", x4 / part)
        # diffusers' StableDiffusionUpscalePipeline forces the VAE scaling factor to 0.08333 (and
        # Atelier follows it), but the x4 UNet learned latents scaled by its VAE's own factor.
        # The same VAE with its latent space rescaled is exactly equivalent: post_quant_conv takes
        # k× its input and quant_conv gives means / k (log-variances - 2 log k), k = 0.08333 / factor.
        sf = round(torch.load(WORK / "x4latents.pt", weights_only=True)["scaling_factor"], 5)
        k = 0.08333 / sf
        vx = make_vae()
        load_ckpt("vaex4", vae=vx)
        with torch.no_grad():
            vx.post_quant_conv.weight.mul_(k)
            vx.quant_conv.weight[:4].div_(k)
            vx.quant_conv.bias[:4].div_(k)
            vx.quant_conv.bias[4:].sub_(2 * math.log(k))
        vx.register_to_config(scaling_factor=0.08333)
        vx.half().save_pretrained(str(x4 / "vae"), safe_serialization=True)
        log("export", f"x4 unet from EMA at step {step}")
    for f in out.rglob("*"):
        if f.is_file() and not f.is_symlink():
            f.chmod(0o644)
    (out / "heldout-captions.txt").write_text("\n".join(scenes.held_out_captions()) + "\n")
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file() and not f.is_symlink())
    log("export", f"total {total / 1e6:.2f} MB")


# ---------------------------------------------------------------------------------------------


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("stage", choices=["data", "vae", "vaex4", "base", "x4", "vaedec", "export", "all",
                                     "lane-a", "lane-b"])
    p.add_argument("--out", default=str(OUT))
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--n-train", type=int, default=12000)
    p.add_argument("--n-x4", type=int, default=4000)
    p.add_argument("--vae-steps", type=int, default=1200)
    p.add_argument("--vae-batch", type=int, default=16)
    p.add_argument("--vae-crop", type=int, default=32)
    p.add_argument("--vae-lr", type=float, default=2e-3)
    p.add_argument("--vae-kl", type=float, default=1e-4)
    p.add_argument("--vaex4-steps", type=int, default=3500)
    p.add_argument("--dec-steps", type=int, default=300)
    p.add_argument("--dec-lr", type=float, default=3e-4)
    p.add_argument("--base-steps", type=int, default=9500)
    p.add_argument("--base-batch", type=int, default=32)
    p.add_argument("--base-lr", type=float, default=1e-3)
    p.add_argument("--compile", type=int, default=1, help="torch.compile the base model (0: eager)")
    p.add_argument("--te-freeze", type=int, default=0,
                   help="freeze the text encoder from this step on (0: it trains for the whole run)")
    p.add_argument("--te-thaw", type=int, default=0,
                   help="train a frozen text encoder again from this step on (0: never)")
    p.add_argument("--te-snapshot", type=int, default=1000,
                   help="save the text encoder every this many base steps (x4 trains against them)")
    p.add_argument("--cfg-drop", type=float, default=0.1)
    p.add_argument("--offset-noise", type=float, default=0.0)
    p.add_argument("--pyramid-noise", type=float, default=0.8,
                   help="coarse-noise discount of the base model's training noise (0: white; see pyramid_noise)")
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--fg-weight", type=float, default=4.0,
                   help="extra loss weight on the shape's latent pixels (see shape_weights)")
    p.add_argument("--two-tone-boost", type=float, default=2.0,
                   help="draw two-tone scenes this many times as often as one-tone ones")
    p.add_argument("--min-snr", type=float, default=5.0, help="min-SNR-gamma loss weighting (0: off)")
    p.add_argument("--x4-steps", type=int, default=14500)
    p.add_argument("--x4-batch", type=int, default=16)
    p.add_argument("--x4-lr", type=float, default=5e-4)
    p.add_argument("--x4-cfg-drop", type=float, default=0.3)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    WORK.mkdir(parents=True, exist_ok=True)
    if args.stage == "all":
        run_all(args)
        return
    stages = LANES.get(args.stage, [args.stage])
    for s in stages:
        if s == "vaedec":
            while not (WORK / "latents.pt").exists():  # lane b: the base VAE comes from lane a
                time.sleep(10)
        t = time.time()
        globals()[f"stage_{s}"](args)
        log(s, f"done in {time.time() - t:.0f}s")


# The two processes of `all`, one core each: the base model's lane and the upscaler's. x4 keeps
# pace with base through the text encoder snapshots (x4_text_encoder_path).
LANES = {"lane-a": ["vae", "base"], "lane-b": ["vaex4", "vaedec", "x4"]}


def run_all(args) -> None:
    import subprocess
    t = time.time()
    stage_data(args)
    procs = [subprocess.Popen([sys.executable, __file__, lane, *sys.argv[2:]]) for lane in LANES]
    codes = [p.wait() for p in procs]
    if any(codes):
        sys.exit(f"train.py all: a lane failed (exit codes {codes}); rerun to resume from the checkpoints")
    stage_export(args)
    log("all", f"done in {time.time() - t:.0f}s")


if __name__ == "__main__":
    main()
