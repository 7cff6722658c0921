"""Procedural, seeded scenes for the demo models: one flat shape on a one- or two-tone background.

Why procedural: the embedded demo models must be trainable from scratch in under two hours on
two CPU cores, and their outputs must be checkable by pixel statistics (see
Tests/AtelierDiffusionTests/DemoModelCaptionCheckTests.swift). A scene is fully described by its
caption (apart from the position and exact size of the shape), so a picture either follows the
words or visibly does not.

    a small red circle on a blue background
    a large white star on a green and black background      (one half green, the other black)

A two-tone background is split into a top and a bottom half, either way up: in plain English
"a green and black background" does not say which colour is on top, so the data do not either.
(An earlier recipe put the first colour on top; the UNet never learnt that order, whose only
positional cue is its zero padding, and rendered either way up at chance. See Models/demo/README.md.)

Scenes render at any resolution from the same description (anti-aliased by supersampling), so
the x4 upscaler trains on exact 64 px / 256 px pairs of one scene.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np

# Colours far apart in RGB so that nearest-palette classification is unambiguous.
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 36, 36),
    "green": (36, 170, 60),
    "blue": (40, 76, 220),
    "yellow": (240, 216, 40),
    "purple": (140, 50, 180),
    "orange": (245, 140, 24),
    "white": (240, 240, 240),
    "black": (20, 20, 20),
}
COLOURS = list(PALETTE)
SHAPES = ["circle", "square", "triangle", "star", "ring"]
SIZES = {"small": (0.13, 0.17), "large": (0.27, 0.33)}  # half-extent, fraction of the side


@dataclass(frozen=True)
class Scene:
    shape: str
    colour: str
    size: str
    background: tuple[str, ...]  # one colour, or two in the caption's order
    cx: float
    cy: float
    r: float
    flipped: bool = False  # two-tone: the caption's second colour is on top

    @property
    def caption(self) -> str:
        return caption(self.shape, self.colour, self.size, self.background)


def caption(shape: str, colour: str, size: str, background: tuple[str, ...]) -> str:
    bg = background[0] if len(background) == 1 else f"{background[0]} and {background[1]}"
    return f"a {size} {colour} {shape} on {article(bg)} {bg} background"


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def all_captions() -> list[str]:
    out = []
    for shape in SHAPES:
        for colour in COLOURS:
            others = [c for c in COLOURS if c != colour]
            bgs = [(b,) for b in others] + [(a, b) for a in others for b in others if a != b]
            for size in SIZES:
                for bg in bgs:
                    out.append(caption(shape, colour, size, bg))
    return out


def swapped(background: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(reversed(background))


def held_out_captions(n: int = 100, seed: int = 1234) -> list[str]:
    """Captions never shown in training: 70% one-tone, 30% two-tone, every shape and colour."""
    rng = random.Random(seed)
    out: list[str] = []
    seen = set()
    while len(out) < n:
        shape = SHAPES[len(out) % len(SHAPES)]
        colour = rng.choice(COLOURS)
        others = [c for c in COLOURS if c != colour]
        size = rng.choice(list(SIZES))
        if rng.random() < 0.7:
            bg = (rng.choice(others),)
        else:
            a, b = rng.sample(others, 2)
            bg = (a, b)
        c = caption(shape, colour, size, bg)
        if c not in seen:
            seen.add(c)
            out.append(c)
    return out


def parse_caption(text: str) -> tuple[str, str, str, tuple[str, ...]]:
    w = text.split()
    assert w[0] == "a" and w[4] == "on" and w[5] in ("a", "an") and w[-1] == "background", text
    size, colour, shape = w[1], w[2], w[3]
    bgw = w[6:-1]
    bg = (bgw[0],) if len(bgw) == 1 else (bgw[0], bgw[2])
    return shape, colour, size, bg


def sample_scene(rng: random.Random, exclude: set[str] | None = None,
                 two_tone: float = 0.3, fixed: str | None = None) -> Scene:
    while True:
        if fixed is not None:
            shape, colour, size, bg = parse_caption(fixed)
        else:
            shape = rng.choice(SHAPES)
            colour = rng.choice(COLOURS)
            others = [c for c in COLOURS if c != colour]
            size = rng.choice(list(SIZES))
            bg = tuple(rng.sample(others, 2)) if rng.random() < two_tone else (rng.choice(others),)
        # a held-out two-tone caption is held out in both orders: they describe the same pictures
        if exclude and fixed is None and (caption(shape, colour, size, bg) in exclude
                                          or caption(shape, colour, size, swapped(bg)) in exclude):
            continue
        lo, hi = SIZES[size]
        r = rng.uniform(lo, hi)
        m = r + 0.04
        cx = rng.uniform(m, 1 - m)
        cy = rng.uniform(m, 1 - m)
        flipped = len(bg) == 2 and rng.random() < 0.5
        return Scene(shape, colour, size, bg, cx, cy, r, flipped)


def _polygon_inside(x: np.ndarray, y: np.ndarray, pts: list[tuple[float, float]]) -> np.ndarray:
    """Even-odd rule, vectorised over the sample grid."""
    inside = np.zeros(x.shape, dtype=bool)
    n = len(pts)
    for i in range(n):
        x1, y1 = pts[i]
        x2, y2 = pts[(i + 1) % n]
        cond = (y1 > y) != (y2 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            xint = (x2 - x1) * (y - y1) / (y2 - y1 + 1e-12) + x1
        inside ^= cond & (x < xint)
    return inside


def shape_mask(s: Scene, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    dx, dy = x - s.cx, y - s.cy
    r = s.r
    if s.shape == "circle":
        return dx * dx + dy * dy <= r * r
    if s.shape == "square":
        h = r * 0.86
        return (np.abs(dx) <= h) & (np.abs(dy) <= h)
    if s.shape == "ring":
        d2 = dx * dx + dy * dy
        return (d2 <= r * r) & (d2 >= (0.55 * r) ** 2)
    if s.shape == "triangle":
        pts = [(s.cx, s.cy - r), (s.cx + r, s.cy + 0.8 * r), (s.cx - r, s.cy + 0.8 * r)]
        return _polygon_inside(x, y, pts)
    if s.shape == "star":
        pts = []
        for k in range(10):
            a = -math.pi / 2 + k * math.pi / 5
            rr = r * 1.08 if k % 2 == 0 else r * 0.45
            pts.append((s.cx + rr * math.cos(a), s.cy + 0.1 * r + rr * math.sin(a)))
        return _polygon_inside(x, y, pts)
    raise ValueError(s.shape)


def render(s: Scene, size: int = 64, ss: int = 4) -> np.ndarray:
    """uint8 HxWx3, anti-aliased with ss×ss samples per pixel."""
    n = size * ss
    coords = (np.arange(n, dtype=np.float64) + 0.5) / n
    x, y = np.meshgrid(coords, coords)
    img = np.empty((n, n, 3), dtype=np.float64)
    if len(s.background) == 1:
        img[:] = PALETTE[s.background[0]]
    else:
        top, bottom = swapped(s.background) if s.flipped else s.background
        img[:] = PALETTE[bottom]
        img[y < 0.5] = PALETTE[top]
    img[shape_mask(s, x, y)] = PALETTE[s.colour]
    img = img.reshape(size, ss, size, ss, 3).mean(axis=(1, 3))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


if __name__ == "__main__":
    import sys
    from PIL import Image

    rng = random.Random(0)
    tiles = []
    for i in range(16):
        sc = sample_scene(rng)
        print(sc.caption)
        tiles.append(render(sc))
    grid = np.concatenate([np.concatenate(tiles[i * 4:(i + 1) * 4], axis=1) for i in range(4)], axis=0)
    Image.fromarray(grid).save(sys.argv[1] if len(sys.argv) > 1 else "/tmp/scenes.png")
    print(len(all_captions()), "captions")
