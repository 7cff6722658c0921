#!/usr/bin/env python3
"""The benchmark of record: Atelier against diffusers/PyTorch on the same work, same machine, same run.

What it does, in one run (issue 8, item 5):

1. Builds, once, into .models/bench/ (git-ignored), random-weight FULL-SIZE models with the real
   configs (cached: a folder that is complete is never rebuilt):
     sd2-base/     a whole StableDiffusionPipeline folder as stabilityai/stable-diffusion-2-base:
                   OpenCLIP ViT-H text encoder (23 layers, 1024 wide, vocab 49408), the real CLIP
                   tokenizer files (rebuilt from the merges bundled in Atelier), UNet (ε, 512),
                   AutoencoderKL, PNDM scheduler config
     sd2-768-unet/ the 768-v UNet (make_full_unet.py's config)
     x4-upscaler/  a whole StableDiffusionUpscalePipeline folder: UNet block_out_channels
                   256/512/512/1024, 3-level VAE, the same text encoder (hard link) and tokenizer
     input-512.png a smooth pseudo-random 512×512 picture for the upscale row
   Every parameter is re-initialised with make_fixtures.reinit_, so activations stay O(1).
2. Times both sides, one measurement at a time (never concurrently), each measurement in a fresh
   child process (so peak RSS is that side's alone: wait4's ru_maxrss of the child), with the same
   thread count (default 2: ATELIER_THREADS / torch.set_num_threads + OMP/MKL_NUM_THREADS):
     unet512   one UNet pass, batch 2 (one CFG step), 64² latent, SD2-base UNet
     unet768   one UNet pass, batch 2, 96² latent, 768-v UNet
     vae512    one VAE decode of a 64² latent (batch 1)
     e2e512    a 20-step 512×512 txt2img image, DDIM, guidance 7.5, same prompt and seed:
               `atelier render` vs StableDiffusionPipeline, whole process wall time
               (start-up, model load, text encoder, 20 CFG steps, VAE decode, PNG write)
     up2048    a 512→2048 ×4 upscale in tiles of 128 low-res px with 32 px overlap (25 tiles),
               2 DDIM steps per tile by default, guidance 9, noise level 20: `atelier upscale
               --tile 128 --overlap 32` vs StableDiffusionUpscalePipeline run on the same 25 tile
               crops one after another, whole process wall time. diffusers cannot tile, and
               running it on the whole 512 input would be a different computation (a 128²-latent
               UNet with 16384-token attention, ~17 GB of scores); the same tile grid is the same
               UNet and VAE work. Atelier also blends the tiles (cheap); diffusers' tiles are
               simply discarded.
   unet/vae rows: one untimed warm-up pass, then the MEDIAN of --reps timed passes (default 3),
   inside the child (load time excluded). e2e/upscale rows: one run each, whole child process.
   Precisions: PyTorch fp32 and bf16 (weights cast to bfloat16, `--torch-bf16 autocast` keeps
   fp32 weights under torch.autocast instead); Atelier fp32, and bf16 when the Atelier command
   used for that row lists `--precision` in its --help (otherwise the cell says n/a).
3. Prints a table (Atelier s, PyTorch s, Atelier/PyTorch, peak RSS of each side) headed by the CPU
   model and flags, and with --json writes every figure (and Atelier's own bench reports).

Usage (the wrapper scripts/bench-record.sh builds the release binary first):
    .venv/bin/python Tests/Reference/bench_of_record.py --atelier .build/release/atelier
    ... --quick                      smoke run: tiny latents/steps, 1 warm-up + 2 reps, minutes
    ... --only unet512,e2e512        a subset of rows
    ... --rounds 3                   each cell three times, the sides taking turns; ratio = median
                                     of the rounds' own ratios (for a machine whose speed drifts)
    ... --json bench.json            machine-readable results
    ... --build-only                 just build the models
Internal: `bench_of_record.py _torch '<json task>'` and `_build '<json task>'` are the children.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
ROWS = ["unet512", "unet768", "vae512", "e2e512", "up2048"]
PROMPT = "a lighthouse on a cliff at dusk, oil painting"
SEED = 1


# ------------------------------------------------------------------------------------------------
# settings: full and --quick
# ------------------------------------------------------------------------------------------------


def settings(quick: bool, args) -> dict:
    """The work of each row. --quick keeps every row and both sides but shrinks the work."""
    if quick:
        s = {"unet512_latent": 16, "unet768_latent": 24, "vae_latent": 16, "e2e_size": 128, "e2e_steps": 2,
             "up_input": 48, "up_tile": 32, "up_overlap": 8, "up_steps": 1, "warmup": 1, "reps": 2}
    else:
        s = {"unet512_latent": 64, "unet768_latent": 96, "vae_latent": 64, "e2e_size": 512, "e2e_steps": 20,
             "up_input": 512, "up_tile": 128, "up_overlap": 32, "up_steps": 2, "warmup": 1, "reps": 3}
    if args.reps is not None:
        s["reps"] = args.reps
    if args.upscale_steps is not None:
        s["up_steps"] = args.upscale_steps
    s["batch"] = 2
    s["threads"] = args.threads
    s["torch_bf16"] = args.torch_bf16
    return s


# ------------------------------------------------------------------------------------------------
# the tile grid (a port of Sources/AtelierDiffusion/Tiling/TileGrid.swift `spans`)
# ------------------------------------------------------------------------------------------------


def tile_spans(length: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """(origin, length) of each span along one axis, exactly as Atelier's TileGrid lays them out."""
    origins = [0]
    if length > tile:
        stride = tile - overlap
        last = 0
        while last + tile < length:
            nxt = last + stride
            if nxt + tile >= length:
                aligned = (length - tile) // 4 * 4
                if aligned > last:
                    origins.append(aligned)
                break
            origins.append(nxt)
            last = nxt
    spans = []
    for i, o in enumerate(origins):
        end = o + tile if i + 1 < len(origins) else length
        spans.append((o, end - o))
    return spans


def tile_grid(width: int, height: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """(x, y, w, h) of every tile, row-major."""
    return [(x, y, w, h) for (y, h) in tile_spans(height, tile, overlap) for (x, w) in tile_spans(width, tile, overlap)]


# ------------------------------------------------------------------------------------------------
# child processes: one measurement each, timed and measured from the parent
# ------------------------------------------------------------------------------------------------


def child_env(threads: int) -> dict:
    env = dict(os.environ)
    for k in ["OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "ATELIER_THREADS"]:
        env[k] = str(threads)
    env.pop("ATELIER_MODEL", None)
    env.pop("ATELIER_UPSCALER_MODEL", None)
    env.setdefault("HF_HUB_OFFLINE", "1")
    return env


def run_child(cmd: list[str], env: dict, log: Path, timeout: float | None = None) -> dict:
    """Runs cmd to completion (or kills it after `timeout` seconds: timed_out); returns wall
    seconds, the child's own peak RSS (ru_maxrss of that child alone, via wait4), exit code,
    stdout and the tail of stderr."""
    with tempfile.TemporaryFile() as out, open(log, "ab") as err:
        err.write(("\n$ " + " ".join(cmd) + "\n").encode())
        err.flush()
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=REPO)
        timer = threading.Timer(timeout, p.kill) if timeout else None
        if timer:
            timer.start()
        _, status, usage = os.wait4(p.pid, 0)
        timed_out = bool(timer) and not timer.is_alive() and time.perf_counter() - t0 >= timeout
        if timer:
            timer.cancel()
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        stdout = out.read().decode("utf-8", "replace")
    tail = ""
    try:
        tail = log.read_text(errors="replace").strip().splitlines()[-1]
    except (OSError, IndexError):
        pass
    return {"wall_seconds": wall, "peak_rss_bytes": usage.ru_maxrss * 1024, "exit_code": p.returncode,
            "stdout": stdout, "stderr_tail": tail, "timed_out": timed_out}


def last_json_line(text: str) -> dict | None:
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                return None
    return None


# ------------------------------------------------------------------------------------------------
# model building (runs in a child: the parent never imports torch)
# ------------------------------------------------------------------------------------------------

SD2_TEXT_ENCODER = dict(
    vocab_size=49408, hidden_size=1024, intermediate_size=4096, num_hidden_layers=23, num_attention_heads=16,
    max_position_embeddings=77, hidden_act="gelu", layer_norm_eps=1e-5, attention_dropout=0.0, dropout=0.0,
    projection_dim=512, bos_token_id=0, eos_token_id=2, pad_token_id=1)

SD2_VAE = dict(
    in_channels=3, out_channels=3, latent_channels=4, block_out_channels=[128, 256, 512, 512],
    down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4, layers_per_block=2,
    norm_num_groups=32, act_fn="silu", scaling_factor=0.18215, sample_size=512, force_upcast=True)

X4_VAE = dict(
    in_channels=3, out_channels=3, latent_channels=4, block_out_channels=[128, 256, 512],
    down_block_types=["DownEncoderBlock2D"] * 3, up_block_types=["UpDecoderBlock2D"] * 3, layers_per_block=2,
    norm_num_groups=32, act_fn="silu", scaling_factor=0.08333, sample_size=256)

# stabilityai/stable-diffusion-x4-upscaler unet/config.json (SD2-SPEC §2.1)
X4_UNET = dict(
    act_fn="silu", attention_head_dim=8, block_out_channels=[256, 512, 512, 1024], center_input_sample=False,
    cross_attention_dim=1024, down_block_types=["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                                                "CrossAttnDownBlock2D"],
    downsample_padding=1, dual_cross_attention=False, flip_sin_to_cos=True, freq_shift=0, in_channels=7,
    layers_per_block=2, mid_block_scale_factor=1, norm_eps=1e-5, norm_num_groups=32, num_class_embeds=1000,
    only_cross_attention=[True, True, True, False], out_channels=4, sample_size=128,
    up_block_types=["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    upcast_attention=False, use_linear_projection=True)


def model_paths(root: Path) -> dict:
    return {"base": root / "sd2-base", "v768": root / "sd2-768-unet", "x4": root / "x4-upscaler",
            "image": root / "input-512.png"}


def complete(folder: Path, parts: list[str]) -> bool:
    return (folder / ".complete").exists() and all((folder / p).exists() for p in parts)


BASE_PARTS = ["model_index.json", "text_encoder/model.safetensors", "tokenizer/vocab.json",
              "unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors",
              "scheduler/scheduler_config.json"]
X4_PARTS = BASE_PARTS + ["low_res_scheduler/scheduler_config.json"]


def ensure_models(root: Path, log: Path) -> None:
    p = model_paths(root)
    todo = []
    if not complete(p["base"], BASE_PARTS):
        todo.append("base")
    if not complete(p["v768"], ["unet/diffusion_pytorch_model.safetensors"]):
        todo.append("v768")
    if not complete(p["x4"], X4_PARTS):
        todo.append("x4")
    if not p["image"].exists():
        todo.append("image")
    if not todo:
        print(f"models: cached in {root}")
        return
    root.mkdir(parents=True, exist_ok=True)
    for what in todo:
        print(f"models: building {what} in {root} (once; see {log})", flush=True)
        r = run_child([sys.executable, __file__, "_build", json.dumps({"what": what, "root": str(root)})],
                      child_env(os.cpu_count() or 2), log)
        if r["exit_code"] != 0:
            sys.exit(f"building {what} failed (exit {r['exit_code']}): {r['stderr_tail']} — see {log}")
        print(r["stdout"].strip(), flush=True)


def bundled_clip_merges() -> list[tuple[str, str]]:
    """The 48,894 CLIP merges Atelier bundles (Sources/AtelierDiffusion/Resources/BundledCLIPMerges.swift)."""
    text = (REPO / "Sources/AtelierDiffusion/Resources/BundledCLIPMerges.swift").read_text(encoding="utf-8")
    start = text.index('#"""\n') + len('#"""\n')
    end = text.index('\n"""#', start)
    merges = [tuple(line.split(" ")) for line in text[start:end].split("\n")]
    assert len(merges) == 48894 and all(len(m) == 2 for m in merges), len(merges)
    return merges


def write_tokenizer(d: Path) -> None:
    """The SD2 repositories' tokenizer/ folder with the real 49408-entry CLIP vocabulary."""
    sys.path.insert(0, str(HERE / "pipelines"))
    from make_pipeline_fixtures import bytes_to_unicode, write_json  # noqa: E402

    merges = bundled_clip_merges()
    byte_syms = list(bytes_to_unicode().values())
    vocab = byte_syms + [s + "</w>" for s in byte_syms] + ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    assert len(vocab) == 49408 and len(set(vocab)) == len(vocab)
    d.mkdir(parents=True, exist_ok=True)
    write_json(d / "vocab.json", {tok: i for i, tok in enumerate(vocab)})
    (d / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n",
                                  encoding="utf-8")

    def added(content):
        return {"content": content, "lstrip": False, "normalized": True, "rstrip": False, "single_word": False}

    write_json(d / "special_tokens_map.json", {
        "bos_token": added("<|startoftext|>"), "eos_token": added("<|endoftext|>"),
        "pad_token": "!", "unk_token": added("<|endoftext|>")})
    write_json(d / "tokenizer_config.json", {
        "add_prefix_space": False, "bos_token": {"__type": "AddedToken", **added("<|startoftext|>")},
        "do_lower_case": True, "eos_token": {"__type": "AddedToken", **added("<|endoftext|>")},
        "errors": "replace", "model_max_length": 77, "name_or_path": "bench/tokenizer",
        "pad_token": "<|endoftext|>", "special_tokens_map_file": "./special_tokens_map.json",
        "tokenizer_class": "CLIPTokenizer", "unk_token": {"__type": "AddedToken", **added("<|endoftext|>")}})


def build(task: dict) -> None:
    """Child: builds one model folder (written to a temporary name, renamed when complete)."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    import warnings

    warnings.filterwarnings("ignore")
    import numpy as np
    import torch
    from PIL import Image

    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(HERE / "pipelines"))
    import diffusers
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from make_fixtures import reinit_
    from make_full_unet import SD21_UNET_CONFIG
    from make_pipeline_fixtures import SD2_BASE_PNDM, X4_DDIM, X4_LOWRES_DDPM, write_json
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    diffusers.utils.logging.set_verbosity_error()
    torch.set_grad_enabled(False)
    root = Path(task["root"])
    paths = model_paths(root)
    what = task["what"]
    t0 = time.time()

    def unet(config: dict, seed: int):
        with torch.device("meta"):
            m = UNet2DConditionModel(**config)
        m = m.to_empty(device="cpu").eval()
        assert not list(m.buffers())
        torch.manual_seed(seed)
        reinit_(m)
        return m

    def vae(config: dict, seed: int):
        torch.manual_seed(seed)
        m = AutoencoderKL(**config).eval()
        reinit_(m)
        m.decoder.conv_out.weight.mul_(0.5)  # as the fixtures: decoded pixels mostly inside [-1, 1]
        m.decoder.conv_out.bias.zero_()
        return m

    def save(m, folder: Path):
        m.save_pretrained(str(folder), safe_serialization=True, max_shard_size="100GB")
        del m

    def text_encoder(folder: Path, seed: int):
        torch.manual_seed(seed)
        m = CLIPTextModel(CLIPTextConfig(**SD2_TEXT_ENCODER)).eval()
        reinit_(m)
        save(m, folder)

    def finish(tmp: Path, final: Path):
        (tmp / ".complete").write_text("built by Tests/Reference/bench_of_record.py\n")
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        size = sum(f.stat().st_size for f in final.rglob("*") if f.is_file())
        print(f"  {final.name}: {size / 2**30:.2f} GiB in {time.time() - t0:.0f} s")

    def pipeline_common(tmp: Path, te_from: Path | None):
        if te_from is not None and (te_from / "model.safetensors").exists():
            (tmp / "text_encoder").mkdir(parents=True)
            for f in te_from.iterdir():
                os.link(f, tmp / "text_encoder" / f.name)  # the same ViT-H text encoder, once on disk
        else:
            text_encoder(tmp / "text_encoder", 3000)
        write_tokenizer(tmp / "tokenizer")
        tok = CLIPTokenizer.from_pretrained(str(tmp / "tokenizer"))
        assert len(tok) == 49408 and tok.pad_token_id == 0 and tok.bos_token_id == 49406, (len(tok), tok.pad_token_id)

    if what == "base":
        final = paths["base"]
        tmp = final.with_name(final.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        pipeline_common(tmp, None)
        save(unet({**SD21_UNET_CONFIG, "sample_size": 64, "upcast_attention": False}, 3100), tmp / "unet")
        save(vae(SD2_VAE, 3200), tmp / "vae")
        write_json(tmp / "scheduler" / "scheduler_config.json", SD2_BASE_PNDM)
        write_json(tmp / "model_index.json", {
            "_class_name": "StableDiffusionPipeline", "_diffusers_version": diffusers.__version__,
            "feature_extractor": [None, None], "image_encoder": [None, None], "requires_safety_checker": False,
            "safety_checker": [None, None], "scheduler": ["diffusers", "PNDMScheduler"],
            "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
            "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]})
        finish(tmp, final)
    elif what == "v768":
        final = paths["v768"]
        tmp = final.with_name(final.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        save(unet(SD21_UNET_CONFIG, 3300), tmp / "unet")
        finish(tmp, final)
    elif what == "x4":
        final = paths["x4"]
        tmp = final.with_name(final.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        pipeline_common(tmp, paths["base"] / "text_encoder")
        save(unet(X4_UNET, 3400), tmp / "unet")
        save(vae(X4_VAE, 3500), tmp / "vae")
        write_json(tmp / "scheduler" / "scheduler_config.json", X4_DDIM)
        write_json(tmp / "low_res_scheduler" / "scheduler_config.json", X4_LOWRES_DDPM)
        write_json(tmp / "model_index.json", {
            "_class_name": "StableDiffusionUpscalePipeline", "_diffusers_version": diffusers.__version__,
            "feature_extractor": [None, None], "low_res_scheduler": ["diffusers", "DDPMScheduler"],
            "max_noise_level": 350, "safety_checker": [None, None], "scheduler": ["diffusers", "DDIMScheduler"],
            "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
            "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
            "watermarker": [None, None]})
        finish(tmp, final)
    elif what == "image":
        g = np.random.default_rng(7)
        low = g.uniform(0, 255, (9, 9, 3)).astype(np.uint8)
        img = Image.fromarray(low).resize((512, 512), Image.BICUBIC)
        arr = np.asarray(img).astype(np.float32) + g.normal(0, 6, (512, 512, 3))
        Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(paths["image"])
        print(f"  {paths['image'].name}: 512×512")
    else:
        sys.exit(f"unknown build {what}")


# ------------------------------------------------------------------------------------------------
# the PyTorch side (runs in a child)
# ------------------------------------------------------------------------------------------------


def torch_child(task: dict) -> None:
    """Child: one PyTorch/diffusers measurement; prints one JSON line."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    import warnings

    warnings.filterwarnings("ignore")
    t_start = time.perf_counter()
    import contextlib

    import torch
    import diffusers

    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
    torch.set_num_threads(task["threads"])
    torch.set_grad_enabled(False)
    bf16 = task["precision"] == "bf16"
    autocast = bf16 and task["torch_bf16"] == "autocast"
    dtype = torch.bfloat16 if bf16 and not autocast else torch.float32
    ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if autocast else contextlib.nullcontext
    kind = task["kind"]
    result: dict = {"torch": torch.__version__, "diffusers": diffusers.__version__,
                    "threads": torch.get_num_threads(), "dtype": str(dtype).replace("torch.", ""),
                    "autocast": autocast, "cpu_capability": torch.backends.cpu.get_cpu_capability()}

    def timed(fn) -> list[float]:
        for _ in range(task["warmup"]):
            with ctx():
                fn()
        times = []
        for _ in range(task["reps"]):
            t = time.perf_counter()
            with ctx():
                fn()
            times.append(time.perf_counter() - t)
        return times

    if kind in ("unet", "vae-decode"):
        t = time.perf_counter()
        g = torch.Generator().manual_seed(1)
        if kind == "unet":
            from diffusers import UNet2DConditionModel

            m = UNet2DConditionModel.from_pretrained(task["model"], subfolder="unet", torch_dtype=dtype).eval()
            b, lat = task["batch"], task["latent"]
            x = torch.randn(b, m.config.in_channels, lat, lat, generator=g).to(dtype)
            ehs = torch.randn(b, 77, m.config.cross_attention_dim, generator=g).to(dtype)
            ts = torch.tensor([500] * b)
            fn = lambda: m(x, ts, encoder_hidden_states=ehs).sample  # noqa: E731
        else:
            from diffusers import AutoencoderKL

            m = AutoencoderKL.from_pretrained(task["model"], subfolder="vae", torch_dtype=dtype).eval()
            lat = task["latent"]
            z = torch.randn(1, m.config.latent_channels, lat, lat, generator=g).to(dtype)
            fn = lambda: m.decode(z).sample  # noqa: E731
        result["load_seconds"] = time.perf_counter() - t
        result["seconds"] = timed(fn)
    elif kind == "e2e":
        from diffusers import DDIMScheduler, StableDiffusionPipeline

        t = time.perf_counter()
        pipe = StableDiffusionPipeline.from_pretrained(task["model"], torch_dtype=dtype, local_files_only=True)
        pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
        pipe.set_progress_bar_config(disable=True)
        result["load_seconds"] = time.perf_counter() - t
        t = time.perf_counter()
        with ctx():
            img = pipe(task["prompt"], height=task["size"], width=task["size"], num_inference_steps=task["steps"],
                       guidance_scale=7.5, generator=torch.Generator().manual_seed(task["seed"])).images[0]
        img.save(task["output"])
        result["generate_seconds"] = time.perf_counter() - t
    elif kind == "upscale":
        from diffusers import StableDiffusionUpscalePipeline
        from PIL import Image

        t = time.perf_counter()
        pipe = StableDiffusionUpscalePipeline.from_pretrained(task["model"], torch_dtype=dtype, local_files_only=True)
        pipe.set_progress_bar_config(disable=True)
        result["load_seconds"] = time.perf_counter() - t
        image = Image.open(task["image"]).convert("RGB")
        if image.size != (task["input"], task["input"]):
            image = image.resize((task["input"], task["input"]), Image.BICUBIC)
        tiles = tile_grid(image.width, image.height, task["tile"], task["overlap"])
        tile_seconds = []
        t = time.perf_counter()
        for i, (x, y, w, h) in enumerate(tiles):
            ts = time.perf_counter()
            with ctx():
                pipe(task["prompt"], image=image.crop((x, y, x + w, y + h)), num_inference_steps=task["steps"],
                     guidance_scale=9.0, noise_level=20, generator=torch.Generator().manual_seed(task["seed"] + i))
            tile_seconds.append(time.perf_counter() - ts)
        result["generate_seconds"] = time.perf_counter() - t
        result["tiles"] = len(tiles)
        result["tile_seconds"] = tile_seconds
    else:
        sys.exit(f"unknown torch task {kind}")
    result["process_seconds_in_child"] = time.perf_counter() - t_start
    print(json.dumps(result), flush=True)


# ------------------------------------------------------------------------------------------------
# the Atelier side
# ------------------------------------------------------------------------------------------------


def atelier_version(atelier: str) -> str:
    try:
        out = subprocess.run([atelier, "--version"], capture_output=True, text=True, timeout=60)
        return out.stdout.strip() or "?"
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def atelier_supports_precision(atelier: str, command: str) -> bool:
    try:
        out = subprocess.run([atelier, command, "--help"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "--precision" in out.stdout + out.stderr


# ------------------------------------------------------------------------------------------------
# the rows
# ------------------------------------------------------------------------------------------------


def median(xs: list[float]) -> float:
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def combine_rounds(turns: list[dict]) -> tuple[dict, dict, float | None, list[float] | None]:
    """One cell from its rounds: each side's median seconds and largest peak RSS, and the ratio as the
    median of the rounds' own Atelier/PyTorch ratios (with their min and max). A round that failed or
    was capped makes the whole cell so (its first such side is returned as it is)."""
    sides = {}
    for name in ("atelier", "pytorch"):
        runs = [t[name] for t in turns]
        bad = next((r for r in runs if "seconds" not in r), None)
        if bad is not None:
            sides[name] = bad
            continue
        merged = dict(runs[-1])
        merged["seconds"] = median([r["seconds"] for r in runs])
        merged["round_seconds"] = [r["seconds"] for r in runs]
        # Per-pass figures over every round, not the last round's alone.
        if all("all_seconds" in r for r in runs):
            merged["all_seconds"] = [x for r in runs for x in r["all_seconds"]]
            merged["best_seconds"] = min(merged["all_seconds"])
        peaks = [r["peak_rss_bytes"] for r in runs if r.get("peak_rss_bytes")]
        merged["round_peak_rss_bytes"] = [r.get("peak_rss_bytes") for r in runs]
        merged["peak_rss_bytes"] = max(peaks) if peaks else None
        sides[name] = merged
    a, p = sides["atelier"], sides["pytorch"]
    if "seconds" not in a or "seconds" not in p:
        return a, p, None, None
    ratios = [t["atelier"]["seconds"] / t["pytorch"]["seconds"] for t in turns if t["pytorch"]["seconds"] > 0]
    if not ratios:
        return a, p, None, None
    return a, p, median(ratios), [min(ratios), max(ratios)]


def row_specs(s: dict, paths: dict) -> dict:
    b = s["batch"]
    return {
        "unet512": {"kind": "unet", "model": paths["base"], "latent": s["unet512_latent"], "batch": b,
                    "work": f"UNet pass, SD2-base, batch {b}, {s['unet512_latent']}² latent"},
        "unet768": {"kind": "unet", "model": paths["v768"], "latent": s["unet768_latent"], "batch": b,
                    "work": f"UNet pass, 768-v, batch {b}, {s['unet768_latent']}² latent"},
        "vae512": {"kind": "vae-decode", "model": paths["base"], "latent": s["vae_latent"], "batch": 1,
                   "work": f"VAE decode, {s['vae_latent']}² latent → {8 * s['vae_latent']}² px"},
        "e2e512": {"kind": "e2e", "model": paths["base"], "size": s["e2e_size"], "steps": s["e2e_steps"],
                   "work": f"txt2img {s['e2e_size']}², {s['e2e_steps']} DDIM steps, CFG 7.5, whole process"},
        "up2048": {"kind": "upscale", "model": paths["x4"], "input": s["up_input"], "tile": s["up_tile"],
                   "overlap": s["up_overlap"], "steps": s["up_steps"],
                   "work": (f"x4 upscale {s['up_input']}→{4 * s['up_input']}, "
                            f"{len(tile_grid(s['up_input'], s['up_input'], s['up_tile'], s['up_overlap']))} tiles of "
                            f"{s['up_tile']} (overlap {s['up_overlap']}), {s['up_steps']} steps, whole process")},
    }


def measure_atelier(spec: dict, precision: str, s: dict, atelier: str, scratch: Path, paths: dict,
                    log: Path) -> dict:
    kind = spec["kind"]
    command = {"unet": "bench", "vae-decode": "bench", "e2e": "render", "upscale": "upscale"}[kind]
    extra: list[str] = []
    if precision != "fp32":
        if not atelier_supports_precision(atelier, command):
            return {"skipped": f"`atelier {command} --help` lists no --precision"}
        extra = ["--precision", precision]
    if kind in ("unet", "vae-decode"):
        cmd = [atelier, "bench", "--model", str(spec["model"]), "--component", kind, "--latent", str(spec["latent"]),
               "--batch", str(spec["batch"]), "--warmup", str(s["warmup"]), "--reps", str(s["reps"]), "--json"]
    elif kind == "e2e":
        cmd = [atelier, "render", "--model", str(spec["model"]), "--prompt", PROMPT, "--seed", str(SEED),
               "--steps", str(spec["steps"]), "--scheduler", "ddim", "--guidance", "7.5",
               "--width", str(spec["size"]), "--height", str(spec["size"]), "--quiet",
               "--output", str(scratch / f"atelier-e2e-{precision}.png")]
    else:
        image = paths["image"]
        if spec["input"] != 512:
            image = scratch / f"input-{spec['input']}.png"
            if not image.exists():
                from_png_resized(paths["image"], image, spec["input"])
        cmd = [atelier, "upscale", "--model", str(spec["model"]), "--image", str(image), "--prompt", PROMPT,
               "--seed", str(SEED), "--steps", str(spec["steps"]), "--guidance", "9", "--noise-level", "20",
               "--tile", str(spec["tile"]), "--overlap", str(spec["overlap"]), "--quiet",
               "--output", str(scratch / f"atelier-up-{precision}.png")]
    r = run_child(cmd + extra, child_env(s["threads"]), log)
    if r["exit_code"] != 0:
        return {"error": f"exit {r['exit_code']}: {r['stderr_tail']}", "command": cmd + extra}
    out = {"command": cmd + extra, "peak_rss_bytes": r["peak_rss_bytes"], "wall_seconds": r["wall_seconds"]}
    if kind in ("unet", "vae-decode"):
        report = last_json_line(r["stdout"])
        if report is None:
            return {"error": "no JSON report on stdout", "command": cmd + extra}
        out.update(seconds=median(report["seconds"]), best_seconds=min(report["seconds"]),
                   all_seconds=report["seconds"], report=report)
    else:
        out["seconds"] = r["wall_seconds"]
    return out


def image_deviation(scratch: Path, kind: str, precision: str) -> dict | None:
    """Pixel deviation between the two sides' e2e images (the same prompt, seed and scheduler)."""
    if kind != "e2e":
        return None
    a, t = scratch / f"atelier-e2e-{precision}.png", scratch / f"torch-e2e-{precision}.png"
    if not (a.exists() and t.exists()):
        return None
    import numpy as np
    from PIL import Image

    x = np.asarray(Image.open(a).convert("RGB"), dtype=np.int16)
    y = np.asarray(Image.open(t).convert("RGB"), dtype=np.int16)
    if x.shape != y.shape:
        return None
    d = np.abs(x - y)
    return {"max": int(d.max()), "mean": float(d.mean()), "over2": float((d > 2).mean())}


def from_png_resized(src: Path, dst: Path, side: int) -> None:
    """A smaller input for --quick (resized with PIL in a child-free way: PIL only, no torch)."""
    from PIL import Image

    Image.open(src).convert("RGB").resize((side, side), Image.BICUBIC).save(dst)


def measure_torch(spec: dict, precision: str, s: dict, scratch: Path, paths: dict, log: Path) -> dict:
    task = {k: (str(v) if isinstance(v, Path) else v) for k, v in spec.items() if k != "work"}
    task.update(precision=precision, threads=s["threads"], warmup=s["warmup"], reps=s["reps"],
                torch_bf16=s["torch_bf16"], prompt=PROMPT, seed=SEED, image=str(paths["image"]),
                output=str(scratch / f"torch-{spec['kind']}-{precision}.png"))
    cmd = [sys.executable, __file__, "_torch", json.dumps(task)]
    # Without AVX512_BF16/AMX PyTorch has no bf16 kernels for this CPU (mkldnn refuses bf16; its
    # fallback GEMM ran at 0.24 GFLOP/s on the Zen 3 development machine), so one UNet pass would
    # take hours: the run is capped, and a capped run gives a lower bound on PyTorch's time (and an
    # upper bound on the ratio), never a made-up figure.
    cap = s["torch_cap"] if precision == "bf16" and not s["native_bf16"] else None
    if cap:
        task.update(warmup=0, reps=1)
    r = run_child(cmd, child_env(s["threads"]), log, timeout=cap)
    if r.get("timed_out"):
        return {"lower_bound_seconds": r["wall_seconds"], "peak_rss_bytes": r["peak_rss_bytes"],
                "note": f"PyTorch bf16 has no native kernels on this CPU; one run did not finish in {cap:.0f} s (killed)"}
    if r["exit_code"] != 0:
        return {"error": f"exit {r['exit_code']}: {r['stderr_tail']}"}
    rep = last_json_line(r["stdout"])
    if rep is None:
        return {"error": "no JSON result on stdout"}
    out = {"peak_rss_bytes": r["peak_rss_bytes"], "wall_seconds": r["wall_seconds"], "report": rep}
    if "seconds" in rep:
        out.update(seconds=median(rep["seconds"]), best_seconds=min(rep["seconds"]), all_seconds=rep["seconds"])
    else:
        out["seconds"] = r["wall_seconds"]
    return out


def prewarm(folder: Path) -> None:
    """Reads every file once so the first whole-process run does not pay for the disk."""
    for f in sorted(folder.rglob("*")):
        if f.is_file():
            with open(f, "rb") as h:
                while h.read(1 << 24):
                    pass


# ------------------------------------------------------------------------------------------------
# report
# ------------------------------------------------------------------------------------------------


def cpu_info() -> dict:
    model, flags = platform.processor() or "unknown", ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model in ("unknown", "", "x86_64"):
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = line.split(":", 1)[1].strip()
    except OSError:
        pass
    have = set(flags.split())
    key = [f for f in ["avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
                       "avx512_fp16", "amx_tile", "amx_bf16"] if f in have]
    return {"model": model, "cores": os.cpu_count(), "flags": flags, "key_flags": key}


def load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def gib(n: int | None) -> str:
    return f"{n / 2**30:.2f}" if n else "-"


def cell(side: dict | None) -> tuple[str, str]:
    if side is None:
        return "-", "-"
    if "skipped" in side:
        return "n/a", "-"
    if "error" in side:
        return "FAILED", "-"
    if "lower_bound_seconds" in side:
        return f">{side['lower_bound_seconds']:.0f}", gib(side.get("peak_rss_bytes"))
    return f"{side['seconds']:.2f}", gib(side.get("peak_rss_bytes"))


def print_table(results: list[dict], info: dict, s: dict, versions: dict) -> None:
    print()
    print(f"CPU    {info['model']} ({info['cores']} logical CPUs); key flags: {' '.join(info['key_flags'])}")
    print(f"flags  {info['flags']}")
    print(f"torch {versions.get('torch', '?')} (capability {versions.get('cpu_capability', '?')}), "
          f"diffusers {versions.get('diffusers', '?')}, atelier {versions.get('atelier', '?')} "
          f"(kernels {versions.get('kernels', 'not reported: no bench row')}, OpenBLAS reference core {versions.get('blas_core', '-')}); {s['threads']} threads on both sides")
    print(f"unet/vae rows: median of {s['reps']} passes after {s['warmup']} warm-up, load excluded; "
          f"e2e/upscale rows: one whole-process run; peak RSS = the child process's own (wait4 ru_maxrss)")
    if s.get("rounds", 1) > 1:
        print(f"{s['rounds']} rounds per cell, the sides taking turns (A P, P A, …): seconds = each side's median "
              f"over the rounds, A/PT = the median of the rounds' own ratios [min–max], peak RSS = the largest")
    loads = [r["load_average"] for r in results if r.get("load_average") is not None]
    if loads:
        print(f"load average (1 min) after each row: {min(loads):.1f}…{max(loads):.1f} on {info['cores']} CPUs")
    spreads = any(r.get("ratio_spread") and r.get("rounds", 1) > 1 for r in results)
    head = (f"{'row':<8} {'prec':<5} {'Atelier s':>10} {'PyTorch s':>10} {'A/PT':>6} "
            + (f"{'[min–max]':>12} " if spreads else "") + f"{'A RSS GiB':>10} {'PT RSS GiB':>10}  work")
    print(head)
    print("-" * len(head))
    for r in results:
        a_t, a_m = cell(r.get("atelier"))
        p_t, p_m = cell(r.get("pytorch"))
        ratio = f"{r['ratio']:.2f}" if r.get("ratio") else (f"<{r['ratio_upper_bound']:.3f}" if r.get("ratio_upper_bound") else "-")
        sp = r.get("ratio_spread")
        spread = (f"{f'[{sp[0]:.2f}–{sp[1]:.2f}]' if sp and r.get('rounds', 1) > 1 else '-':>12} " if spreads else "")
        print(f"{r['row']:<8} {r['precision']:<5} {a_t:>10} {p_t:>10} {ratio:>6} {spread}{a_m:>10} {p_m:>10}  {r['work']}")
    for r in results:
        if r.get("deviation"):
            d = r["deviation"]
            print(f"image: {r['row']} {r['precision']} Atelier vs diffusers, same prompt and seed: max |Δ| "
                  f"{d['max']} levels, mean {d['mean']:.3f}, {d['over2']:.2%} of values more than 2 levels apart")
    for r in results:
        for side in ("atelier", "pytorch"):
            v = r.get(side) or {}
            if "error" in v or "skipped" in v or "note" in v:
                print(f"note: {r['row']} {r['precision']} {side}: {v.get('error') or v.get('skipped') or v.get('note')}")


# ------------------------------------------------------------------------------------------------
# main
# ------------------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--atelier", default=str(REPO / ".build/release/atelier"), help="the atelier binary (release build)")
    ap.add_argument("--models", type=Path, default=REPO / ".models/bench", help="where the random models live")
    ap.add_argument("--quick", action="store_true", help="smoke run: small latents and steps, 2 reps (minutes)")
    ap.add_argument("--only", default=",".join(ROWS), help=f"comma-separated rows: {','.join(ROWS)}")
    ap.add_argument("--precisions", default=None,
                    help="comma-separated: fp32,bf16 (default both; --quick on a CPU without native bf16: fp32)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=None, help="timed passes per unet/vae row (default 3; quick 2)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="measure each cell this many times, the two sides taking turns (A P, P A, …); the ratio is "
                         "the median of the rounds' own ratios, so a machine whose speed drifts over minutes "
                         "moves both sides of each round together (default 1)")
    ap.add_argument("--upscale-steps", type=int, default=None, help="denoising steps per tile (default 2; quick 1)")
    ap.add_argument("--torch-bf16", choices=["cast", "autocast"], default="cast",
                    help="PyTorch bf16: weights cast to bfloat16 (default) or fp32 weights under autocast")
    ap.add_argument("--torch-cap", type=float, default=900,
                    help="seconds after which a PyTorch bf16 run on a CPU without native bf16 is killed "
                         "(its time is then reported as a lower bound; default 900)")
    ap.add_argument("--json", type=Path, default=None, help="write every figure to this file")
    ap.add_argument("--build-only", action="store_true", help="build the models and stop")
    ap.add_argument("--log", type=Path, default=None, help="children's stderr (default MODELS/bench.log)")
    args = ap.parse_args()

    rows = [r.strip() for r in args.only.split(",") if r.strip()]
    bad = [r for r in rows if r not in ROWS]
    if bad:
        ap.error(f"unknown row(s) {','.join(bad)}; choose from {','.join(ROWS)}")
    info = cpu_info()
    native_bf16 = any(f in info["key_flags"] for f in ("avx512_bf16", "amx_bf16"))
    chosen = args.precisions
    if chosen is None:
        chosen = "fp32" if args.quick and not native_bf16 else "fp32,bf16"
        if args.quick and not native_bf16:
            print("note: this CPU has no AVX512_BF16/AMX-BF16, PyTorch would emulate bf16 (over 10x slower); "
                  "the quick run keeps to fp32 (ask for --precisions fp32,bf16 to force it)")
    elif "bf16" in chosen and not native_bf16:
        print("warning: this CPU has no AVX512_BF16/AMX-BF16; PyTorch bf16 runs emulated and very slowly")
    precisions = [p.strip() for p in chosen.split(",") if p.strip()]
    if any(p not in ("fp32", "bf16") for p in precisions):
        ap.error("--precisions takes fp32 and/or bf16")
    if args.threads < 1:
        ap.error("--threads must be at least 1")
    if args.rounds < 1 or args.rounds > 20:
        ap.error("--rounds takes 1 to 20")

    root = args.models.resolve()
    root.mkdir(parents=True, exist_ok=True)
    log = (args.log or root / "bench.log").resolve()
    ensure_models(root, log)
    if args.build_only:
        return
    if not os.access(args.atelier, os.X_OK):
        sys.exit(f"no atelier binary at {args.atelier}: run `swift build -c release --product atelier` "
                 f"(scripts/bench-record.sh does) or pass --atelier")

    s = settings(args.quick, args)
    s["torch_cap"] = args.torch_cap
    s["rounds"] = args.rounds
    s["native_bf16"] = native_bf16
    paths = model_paths(root)
    specs = row_specs(s, paths)
    scratch = Path(tempfile.mkdtemp(prefix="bench-record-"))
    print(f"benchmark of record{' (QUICK smoke run)' if args.quick else ''}: rows {','.join(rows)}; "
          f"precisions {','.join(precisions)}; log {log}", flush=True)
    load = load_average()
    if load is not None and load > 0.5 * (os.cpu_count() or 1):
        print(f"warning: the machine is busy (load average {load:.1f} on {os.cpu_count()} CPUs): "
              "other processes share the cores, so times and ratios will be noisy")
    results: list[dict] = []
    versions: dict = {"atelier": atelier_version(args.atelier)}
    warmed: set[Path] = set()
    t_all = time.perf_counter()
    for row in rows:
        spec = specs[row]
        if spec["model"] not in warmed:
            prewarm(spec["model"])
            warmed.add(spec["model"])
        for precision in precisions:
            turns: list[dict] = []
            for rnd in range(s["rounds"]):
                # The side that goes first alternates, so neither always meets a machine that the
                # other has just warmed (or heated).
                order = ("atelier", "pytorch") if rnd % 2 == 0 else ("pytorch", "atelier")
                got: dict = {}
                label = f" (round {rnd + 1}/{s['rounds']})" if s["rounds"] > 1 else ""
                print(f"  {row} {precision}{label}:", end="", flush=True)
                for side in order:
                    print(f" {side} …", end="", flush=True)
                    if side == "atelier":
                        got[side] = measure_atelier(spec, precision, s, args.atelier, scratch, paths, log)
                    else:
                        got[side] = measure_torch(spec, precision, s, scratch, paths, log)
                    print(f" {cell(got[side])[0]};", end="", flush=True)
                print(flush=True)
                turns.append(got)
            a, p, ratio, spread = combine_rounds(turns)
            bound = a["seconds"] / p["lower_bound_seconds"] if "seconds" in a and "lower_bound_seconds" in p else None
            deviation = image_deviation(scratch, spec["kind"], precision)
            results.append({"row": row, "precision": precision, "work": spec["work"], "ratio": ratio,
                            "ratio_spread": spread, "rounds": len(turns),
                            "ratio_upper_bound": bound, "deviation": deviation,
                            "load_average": load_average(), "atelier": a, "pytorch": p})
            if "report" in p:
                versions.update({k: p["report"][k] for k in ("torch", "diffusers", "cpu_capability")})
            if "report" in a:
                versions.update(atelier=a["report"].get("atelier_version"), blas_core=a["report"].get("blas_core"), kernels=a["report"].get("kernels"))
    shutil.rmtree(scratch, ignore_errors=True)
    print_table(results, info, s, versions)
    print(f"total {time.perf_counter() - t_all:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"schema": "atelier.bench-of-record.v1", "quick": args.quick,
                                         "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                         "cpu": info, "settings": s, "versions": versions,
                                         "rows": results}, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "_torch":
        torch_child(json.loads(sys.argv[2]))
    elif len(sys.argv) == 3 and sys.argv[1] == "_build":
        build(json.loads(sys.argv[2]))
    else:
        main()
