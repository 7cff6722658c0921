"""What a picture shows, from pixel statistics: the Python twin of the Swift test's checker
(Tests/AtelierDiffusionTests/DemoCaptionChecker.swift). Used to evaluate checkpoints while
training; the Swift test is the acceptance check.

1. every pixel -> nearest palette colour;
2. background: the most common colour of the top border band and of the bottom border band
   (one colour if they agree, else a two-tone background, compared with the caption's pair as
   a set: the captions do not say which colour is on top, see scenes.py);
3. shape colour: the most common colour among the pixels that are not background;
4. shape, from the mask of that colour: fill ratio of its bounding box and whether its centre
   is empty (ring).
"""

from __future__ import annotations

import numpy as np

import scenes

NAMES = scenes.COLOURS
PAL = np.array([scenes.PALETTE[c] for c in NAMES], dtype=np.int64)


def classify(img: np.ndarray):
    h, w, _ = img.shape
    d = ((img[:, :, None, :].astype(np.int64) - PAL[None, None]) ** 2).sum(-1)
    cls = d.argmin(-1)
    band = max(1, h // 32)

    def mode(vals):
        return int(np.bincount(vals.ravel(), minlength=len(NAMES)).argmax())

    top = np.concatenate([cls[:band].ravel(), cls[: h // 2, :band].ravel(), cls[: h // 2, -band:].ravel()])
    bot = np.concatenate([cls[-band:].ravel(), cls[h // 2:, :band].ravel(), cls[h // 2:, -band:].ravel()])
    t, b = mode(top), mode(bot)
    bg = (NAMES[t],) if t == b else (NAMES[t], NAMES[b])
    fg = ~np.isin(cls, [t, b])
    if fg.sum() < 4:
        return None, None, bg
    counts = np.bincount(cls[fg], minlength=len(NAMES))
    sc = int(counts.argmax())
    mask = cls == sc
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max(), xs.min(), xs.max()
    bw, bh = x1 - x0 + 1, y1 - y0 + 1
    fill = mask.sum() / float(bw * bh)
    cy, cx = (y0 + y1) // 2, (x0 + x1) // 2
    centre = mask[max(cy - 1, 0): cy + 2, max(cx - 1, 0): cx + 2].mean()
    if centre < 0.5 and fill < 0.8:
        shape = "ring"
    elif fill > 0.88:
        shape = "square"
    elif fill > 0.68:
        shape = "circle"
    elif fill > 0.45:
        shape = "triangle"
    else:
        shape = "star"
    return NAMES[sc], shape, bg


def check(img: np.ndarray, caption: str) -> tuple[bool, bool]:
    """(colours agree, shape agrees)"""
    return agrees(classify(img), caption)


def agrees(seen, caption: str) -> tuple[bool, bool]:
    """check() on a reading that classify() already made."""
    shape, colour, _, bg = scenes.parse_caption(caption)
    c, s, b = seen
    return (c == colour and same_background(b, bg)), s == shape


def same_background(seen: tuple[str, ...], caption: tuple[str, ...]) -> bool:
    """One colour, or the same two colours either way up."""
    return len(seen) == len(caption) and set(seen) == set(caption)


if __name__ == "__main__":
    import random
    rng = random.Random(5)
    caps = scenes.held_out_captions()
    ok_c = ok_s = 0
    for cap in caps:
        sc = scenes.sample_scene(rng, fixed=cap)
        c, s = check(scenes.render(sc, 64), cap)
        ok_c += c
        ok_s += s
        if not (c and s):
            print("MISS", cap, classify(scenes.render(sc, 64)))
    print(f"ground truth: colour {ok_c}/{len(caps)}, shape {ok_s}/{len(caps)}")
