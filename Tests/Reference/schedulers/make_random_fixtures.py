#!/usr/bin/env python3
"""Golden values for AtelierDiffusion's TorchRandomSource, taken from the real torch.randn / torch.rand.

Run with the reference virtualenv (torch 2.13.0+cpu was used):

    /work/refvenv/bin/python Tests/Reference/schedulers/make_random_fixtures.py

Writes Tests/Reference/schedulers/fixtures/torch_random.json. To keep the file small, each draw
stores its shape, the first and last 256 values (float32, little-endian, base64), the float64 sum of
all values, and FNV-1a-64 of the raw float32 bytes, so the Swift test checks every bit of the tensor
without the fixture holding it.

torch's CPU normal kernel takes different paths on different CPUs (SD2-SPEC §7.10/§9); the machine
that produced the fixture is recorded in "machine".
"""
import base64
import json
import os
import platform

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures", "torch_random.json")
EDGE = 256


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def fnv1a64_np(arr: np.ndarray) -> int:
    # Vectorised-enough FNV over bytes (the big tensors are a few hundred KB).
    return fnv1a64(arr.astype("<f4").tobytes())


def b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode("ascii")


def record(kind, shape, t):
    a = t.detach().numpy().astype(np.float32).reshape(-1)
    return {
        "kind": kind,
        "shape": list(shape),
        "count": int(a.size),
        "head": b64(a[:EDGE]),
        "tail": b64(a[-EDGE:]) if a.size > EDGE else b64(a[0:0]),
        "sum": float(a.astype(np.float64).sum()),
        "fnv1a64": str(fnv1a64_np(a)),
    }


def sequence(seed, draws):
    g = torch.Generator("cpu").manual_seed(seed)
    out = []
    for kind, shape in draws:
        if kind == "normal":
            t = torch.randn(shape, generator=g, dtype=torch.float32)
        elif kind == "uniform":
            t = torch.rand(shape, generator=g, dtype=torch.float32)
        else:
            raise ValueError(kind)
        out.append(record(kind, shape, t))
    return {"seed": str(seed), "draws": out}


def main():
    cases = []
    # One fresh generator per (seed, shape): the single-call paths.
    for seed in [0, 1, 42, 4294967295]:
        for shape in [[1, 4, 64, 64], [2, 4, 96, 96], [3, 7], [5]]:
            cases.append(sequence(seed, [("normal", shape)]))
    # Seeds above 32 bits: torch keeps only the low 32 bits.
    cases.append(sequence(2**32 + 5, [("normal", [1, 4, 8, 8]), ("normal", [3])]))
    cases.append(sequence(2**64 - 1, [("normal", [2, 3, 5]), ("normal", [5])]))
    # Successive calls on one generator: the small-path cache survives a vectorised call, tails redraw.
    cases.append(sequence(42, [
        ("normal", [5]), ("normal", [1, 4, 64, 64]), ("normal", [3]), ("normal", [2, 8]),
        ("normal", [7]), ("normal", [1, 4, 3, 3]), ("normal", [1]),
    ]))
    # The upscaler order: low-res noise (B,3,H,W) then latents (B,4,H,W).
    cases.append(sequence(1234, [("normal", [1, 3, 32, 48]), ("normal", [1, 4, 32, 48])]))
    # torch.rand interleaved with randn.
    cases.append(sequence(7, [("uniform", [3, 5]), ("normal", [4]), ("uniform", [17]), ("normal", [20])]))

    doc = {
        "generator": "torch.Generator('cpu').manual_seed(seed); torch.randn/torch.rand(shape, generator=g)",
        "torch": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "machine": platform.processor() or platform.machine(),
        "edge": EDGE,
        "cases": cases,
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes, {len(cases)} cases)")


if __name__ == "__main__":
    main()
