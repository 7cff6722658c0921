#!/usr/bin/env python3
"""Parity fixtures for AtelierDiffusion's schedulers, recorded from diffusers.

Run with the reference virtualenv (diffusers 0.42.1, torch 2.13.0+cpu were used):

    /work/refvenv/bin/python Tests/Reference/schedulers/make_scheduler_fixtures.py

Writes Tests/Reference/schedulers/fixtures/schedulers.json (float32 tensors as little-endian base64).

Each case builds a scheduler the way Atelier's `makeScheduler(name:config:)` promises to —
`SchedulerClass.from_config(config)`, with the DPM names pinning algorithm/order/Karras — then:

* records `timesteps`, `sigmas` (Euler/DPM), `init_noise_sigma`;
* runs a denoising loop on a [1,4,3,3] latent (36 values: ≥ 16, not a multiple of 16, so the
  stochastic schedulers' per-step `torch.randn` exercises the vectorised path *and* its tail
  redraw) with a deterministic fake model, in torch float32:
      model_out = x_in * 0.5 + pattern * (t.float() * 0.0001)
  recording `scale_model_input` output (when not the identity) and `step(...).prev_sample`;
* calls `add_noise` the way img2img does (strength 0.8: `set_begin_index(t_start*order)` and
  `timesteps[t_start*order]`).

"img2img" cases run the loop from the strength-0.6 begin index on the add_noise output instead.
Separate entries record the β/ᾱ tables and the x4 low-res `DDPMScheduler.add_noise` at
noise_level 20 and 350.
"""
import base64
import copy
import inspect
import json
import os

import diffusers
import numpy as np
import torch
from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    PNDMScheduler,
)

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures", "schedulers.json")

SHAPE = (1, 4, 3, 3)
LOOP_SEED = 42
PATTERN_SEED = 1234
ORIGINAL_SEED = 99
NOISE_SEED = 100

# Official configs (stabilityai/* scheduler_config.json, diffusers 0.8–0.10; SD2-SPEC §5.1).
SD2_BASE = {  # stable-diffusion-2-1-base
    "_class_name": "PNDMScheduler", "_diffusers_version": "0.8.0", "beta_end": 0.012,
    "beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": False,
    "num_train_timesteps": 1000, "prediction_type": "epsilon", "set_alpha_to_one": False,
    "skip_prk_steps": True, "steps_offset": 1, "trained_betas": None,
}
SD2_768 = {  # stable-diffusion-2-1
    "_class_name": "DDIMScheduler", "_diffusers_version": "0.8.0", "beta_end": 0.012,
    "beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": False,
    "num_train_timesteps": 1000, "prediction_type": "v_prediction", "set_alpha_to_one": False,
    "skip_prk_steps": True, "steps_offset": 1, "trained_betas": None,
}
X4 = {  # stable-diffusion-x4-upscaler/scheduler
    "_class_name": "DDIMScheduler", "_diffusers_version": "0.10.0.dev0", "beta_end": 0.02,
    "beta_schedule": "scaled_linear", "beta_start": 0.0001, "clip_sample": False,
    "num_train_timesteps": 1000, "prediction_type": "v_prediction", "set_alpha_to_one": False,
    "skip_prk_steps": True, "steps_offset": 1, "trained_betas": None,
}
X4_LOW_RES = {  # stable-diffusion-x4-upscaler/low_res_scheduler
    "_class_name": "DDPMScheduler", "_diffusers_version": "0.10.0.dev0", "beta_end": 0.02,
    "beta_schedule": "scaled_linear", "beta_start": 0.0001, "clip_sample": True,
    "num_train_timesteps": 1000, "trained_betas": None, "variance_type": "fixed_small",
}

CLASSES = {
    "DDIMScheduler": DDIMScheduler, "PNDMScheduler": PNDMScheduler,
    "EulerDiscreteScheduler": EulerDiscreteScheduler,
    "EulerAncestralDiscreteScheduler": EulerAncestralDiscreteScheduler,
    "DPMSolverMultistepScheduler": DPMSolverMultistepScheduler, "DDPMScheduler": DDPMScheduler,
}
NAMES = ["ddim", "pndm", "euler", "euler-a", "dpm++2m", "dpm++2m-karras", "ddpm"]


def b64(t) -> str:
    a = t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode("ascii")


def build(name, config):
    """What Atelier's makeScheduler(name, config) must reproduce."""
    cfg = {k: v for k, v in config.items() if k != "eta"}
    if name is None:
        return CLASSES[cfg["_class_name"]].from_config(cfg)
    if name == "ddim":
        return DDIMScheduler.from_config(cfg)
    if name == "pndm":
        return PNDMScheduler.from_config(cfg)
    if name == "euler":
        return EulerDiscreteScheduler.from_config(cfg)
    if name == "euler-a":
        return EulerAncestralDiscreteScheduler.from_config(cfg)
    if name in ("dpm++2m", "dpm++2m-karras"):
        return DPMSolverMultistepScheduler.from_config(
            cfg, algorithm_type="dpmsolver++", solver_order=2, use_karras_sigmas=(name == "dpm++2m-karras"))
    if name == "ddpm":
        return DDPMScheduler.from_config(cfg)
    raise ValueError(name)


def fixed(seed):
    return torch.randn(SHAPE, generator=torch.Generator("cpu").manual_seed(seed), dtype=torch.float32)


PATTERN = fixed(PATTERN_SEED)
ORIGINAL = fixed(ORIGINAL_SEED)
NOISE = fixed(NOISE_SEED)


def fake_model(x_in, t):
    c = t.to(torch.float32) * 0.0001
    return x_in * 0.5 + PATTERN * c


def begin_index(sched, steps, strength):
    init_timestep = min(int(steps * strength), steps)
    t_start = max(steps - init_timestep, 0)
    return t_start * sched.order


def step_kwargs(sched, config, generator):
    params = inspect.signature(sched.step).parameters
    kwargs = {}
    if "generator" in params:
        kwargs["generator"] = generator
    if "eta" in params:
        kwargs["eta"] = float(config.get("eta", 0.0))
    return kwargs


def run_case(label, name, config, steps, img2img_strength=None):
    sched = build(name, config)
    sched.set_timesteps(steps)
    scaled = not isinstance(sched, (DDIMScheduler, PNDMScheduler, DPMSolverMultistepScheduler, DDPMScheduler))
    case = {
        "label": label,
        "name": name,
        "config": config,
        "steps": steps,
        "class": type(sched).__name__,
        "order": sched.order,
        "timesteps": [float(t) for t in sched.timesteps.to(torch.float32)],
        "init_noise_sigma": float(torch.as_tensor(sched.init_noise_sigma, dtype=torch.float32)),
    }
    if hasattr(sched, "sigmas"):
        case["sigmas"] = b64(sched.sigmas.to(torch.float32))

    # img2img-style add_noise at strength 0.8 on a fresh instance.
    noiser = build(name, config)
    noiser.set_timesteps(steps)
    start = begin_index(noiser, steps, 0.8)
    if hasattr(noiser, "set_begin_index"):
        noiser.set_begin_index(start)
    case["add_noise"] = {
        "strength": 0.8, "begin_index": start,
        "output": b64(noiser.add_noise(ORIGINAL, NOISE, noiser.timesteps[start:start + 1])),
    }

    g = torch.Generator("cpu").manual_seed(LOOP_SEED)
    if img2img_strength is None:
        first = 0
        latents = torch.randn(SHAPE, generator=g, dtype=torch.float32) * sched.init_noise_sigma
    else:
        first = begin_index(sched, steps, img2img_strength)
        if hasattr(sched, "set_begin_index"):
            sched.set_begin_index(first)
        latents = sched.add_noise(ORIGINAL, NOISE, sched.timesteps[first:first + 1])
        case["img2img"] = {"strength": img2img_strength, "begin_index": first}
    case["initial_latents"] = b64(latents)
    kwargs = step_kwargs(sched, config, g)
    records = []
    for i in range(first, len(sched.timesteps)):
        t = sched.timesteps[i]
        x_in = sched.scale_model_input(latents, t)
        out = fake_model(x_in, t)
        latents = sched.step(out, t, latents, **kwargs).prev_sample
        rec = {"index": i, "prev_sample": b64(latents)}
        if scaled:
            rec["model_input"] = b64(x_in)
        records.append(rec)
    case["loop"] = records
    return case


def with_(config, **changes):
    c = copy.deepcopy(config)
    c.update(changes)
    return c


def main():
    cases = []
    for config_label, config in [("sd2-base", SD2_BASE), ("sd2-768", SD2_768)]:
        for name in NAMES:
            for steps in (5, 20):
                cases.append(run_case(f"{name} {config_label} {steps}", name, config, steps))
    for spacing in ("leading", "trailing", "linspace"):
        for name in NAMES:
            cases.append(run_case(f"{name} sd2-base spacing={spacing} 7", name,
                                  with_(SD2_BASE, timestep_spacing=spacing), 7))
    for name in NAMES:
        cases.append(run_case(f"{name} x4 20", name, X4, 20))
    for name in NAMES:
        cases.append(run_case(f"{name} sd2-base img2img 10", name, SD2_BASE, 10, img2img_strength=0.6))
    # The config's own class (name = nil).
    cases.append(run_case("class sd2-base 10", None, SD2_BASE, 10))
    cases.append(run_case("class sd2-768 10", None, SD2_768, 10))
    cases.append(run_case("class x4-low-res 10", None, X4_LOW_RES, 10))
    # Class defaults (empty config): linear 0.0001–0.02, DDIM clip_sample/set_alpha_to_one true.
    for name in ("ddim", "euler", "dpm++2m", "pndm"):
        cases.append(run_case(f"{name} defaults 10", name, {}, 10))
    # PNDM with the Runge–Kutta warm-up.
    cases.append(run_case("pndm prk 10", "pndm", with_(SD2_BASE, skip_prk_steps=False), 10))
    # Stochastic DDIM.
    cases.append(run_case("ddim eta=1 10", "ddim", with_(SD2_768, eta=1.0), 10))
    # Cosine schedule.
    cos = with_(SD2_BASE, beta_schedule="squaredcos_cap_v2")
    # (Not "dpm++2m-karras": with this schedule diffusers truncates the Karras timesteps, the first
    # two collide, its timestep lookup starts at index 1 and the run ends in an IndexError.)
    for name in ("ddim", "euler", "dpm++2m"):
        cases.append(run_case(f"{name} cosine 10", name, cos, 10))
    # Zero terminal SNR (v-prediction, trailing), as the paper recommends.
    zsnr = with_(SD2_768, rescale_betas_zero_snr=True, timestep_spacing="trailing")
    for name in ("ddim", "euler", "euler-a", "dpm++2m", "ddpm"):
        cases.append(run_case(f"{name} zero-snr 10", name, zsnr, 10))
    # DPM variants through the class name.
    dpm = with_(SD2_BASE, _class_name="DPMSolverMultistepScheduler")
    cases.append(run_case("dpm order3 12", None, with_(dpm, solver_order=3), 12))
    cases.append(run_case("dpm order3 20", None, with_(dpm, solver_order=3), 20))
    cases.append(run_case("dpm heun 10", None, with_(dpm, solver_type="heun"), 10))
    cases.append(run_case("dpm dpmsolver sigma_min 10", None,
                          with_(dpm, algorithm_type="dpmsolver", final_sigmas_type="sigma_min"), 10))
    cases.append(run_case("dpm v sigma_min 16", None,
                          with_(dpm, prediction_type="v_prediction", final_sigmas_type="sigma_min"), 16))
    cases.append(run_case("dpm lambda_min_clipped 10", None, with_(dpm, lambda_min_clipped=-2.5), 10))
    cases.append(run_case("dpm leading karras 25", None, with_(dpm, use_karras_sigmas=True, timestep_spacing="leading"), 25))
    # Euler options through the class name.
    euler = with_(SD2_BASE, _class_name="EulerDiscreteScheduler")
    cases.append(run_case("euler karras 10", None, with_(euler, use_karras_sigmas=True), 10))
    cases.append(run_case("euler karras leading 30", None, with_(euler, use_karras_sigmas=True, timestep_spacing="leading"), 30))
    cases.append(run_case("euler sigma_min 10", None, with_(euler, final_sigmas_type="sigma_min"), 10))
    cases.append(run_case("euler sample 10", None, with_(euler, prediction_type="sample"), 10))
    cases.append(run_case("ddim sample clip 10", "ddim", with_(SD2_768, prediction_type="sample", clip_sample=True), 10))
    # DDPM variance types on the x4 low-res config.
    for variance in ("fixed_small_log", "fixed_large"):
        cases.append(run_case(f"ddpm {variance} 10", None, with_(X4_LOW_RES, variance_type=variance), 10))

    # β / ᾱ tables.
    tables = []
    for label, config in [("sd2", SD2_BASE), ("x4", X4), ("defaults", {}), ("cosine", cos),
                          ("zero-snr", zsnr)]:
        s = DDIMScheduler.from_config({k: v for k, v in config.items() if k != "_class_name"})
        tables.append({"label": label, "config": config, "betas": b64(s.betas),
                       "alphas_cumprod": b64(s.alphas_cumprod)})

    # x4 low-res augmentation: DDPMScheduler.add_noise(image, noise, noise_level).
    low_res = DDPMScheduler.from_config(X4_LOW_RES)
    noise_levels = [
        {"noise_level": level,
         "output": b64(low_res.add_noise(ORIGINAL, NOISE, torch.tensor([level], dtype=torch.long)))}
        for level in (0, 20, 350, 999)
    ]

    doc = {
        "generator": "Tests/Reference/schedulers/make_scheduler_fixtures.py",
        "diffusers": diffusers.__version__,
        "torch": torch.__version__,
        "shape": list(SHAPE),
        "loop_seed": LOOP_SEED,
        "pattern_seed": PATTERN_SEED,
        "original_seed": ORIGINAL_SEED,
        "noise_seed": NOISE_SEED,
        "fake_model": "model_out = x_in * 0.5 + pattern * (float32(t) * float32(0.0001))",
        "pattern": b64(PATTERN),
        "original": b64(ORIGINAL),
        "noise": b64(NOISE),
        "tables": tables,
        "low_res_config": X4_LOW_RES,
        "low_res_noise": noise_levels,
        "cases": cases,
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(doc, f, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes, {len(cases)} cases)")


if __name__ == "__main__":
    main()
