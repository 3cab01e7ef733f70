"""Procedural video clips with captions: the training data of reel-tiny.

One or two flat shapes (circle, square, triangle, star) in a named colour move over a
plain or gradient background; the caption is generated from the same attributes,
e.g. "a red circle moves to the right on a dark blue background". Everything is
drawn with numpy from a seed, so a clip is a pure function of (seed, attributes).
Some (shape, colour, motion) combinations are held out of training (HELD_OUT) so the
adherence evaluation can measure generalization to unseen combinations.
"""

import math

import numpy as np

FPS = 16

COLORS = {
    "red": (220, 40, 40),
    "green": (40, 200, 60),
    "blue": (50, 90, 230),
    "yellow": (240, 220, 40),
    "white": (245, 245, 245),
    "purple": (150, 60, 200),
    "orange": (245, 140, 30),
    "cyan": (40, 210, 220),
}
BACKGROUNDS = {
    "black": ((0, 0, 0), None),
    "dark blue": ((10, 20, 70), None),
    "gray": ((110, 110, 110), None),
    "dark green": ((10, 60, 20), None),
    "sunset gradient": ((90, 20, 60), (240, 150, 60)),
    "night gradient": ((5, 5, 30), (40, 60, 120)),
}
SHAPES = ("circle", "square", "triangle", "star")
# motion -> (dx, dy) in frame-widths per second for translations. reel-tiny's native clip
# is 17 frames (about 1 s), so a translation crosses about half the frame in a clip.
MOTIONS = {
    "moves to the right": (0.45, 0.0),
    "moves to the left": (-0.45, 0.0),
    "moves up": (0.0, -0.45),
    "moves down": (0.0, 0.45),
    "moves diagonally up and to the right": (0.32, -0.32),
    "moves diagonally down and to the left": (-0.32, 0.32),
    "bounces": None,
    "grows": None,
    "shrinks": None,
    "spins": None,
}
# (shape, colour, motion) combinations never shown in training.
HELD_OUT = {
    ("star", "yellow", "moves to the left"),
    ("circle", "purple", "moves up"),
    ("triangle", "cyan", "moves to the right"),
    ("square", "orange", "moves down"),
}


def shape_mask(shape, cx, cy, r, angle, h, w):
    """Boolean [h, w] mask of a shape centred at (cx, cy) pixels with radius r."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    dx, dy = xs - cx, ys - cy
    c, s = math.cos(angle), math.sin(angle)
    u, v = c * dx + s * dy, -s * dx + c * dy
    if shape == "circle":
        return u * u + v * v <= r * r
    if shape == "square":
        return (np.abs(u) <= r * 0.85) & (np.abs(v) <= r * 0.85)
    if shape == "triangle":
        # upward triangle: inside three half-planes
        k = r * 0.9
        e1 = v <= k * 0.5
        e2 = (math.sqrt(3) * u - v) <= k
        e3 = (-math.sqrt(3) * u - v) <= k
        return e1 & e2 & e3
    if shape == "star":
        ang = np.arctan2(v, u)
        rad = np.sqrt(u * u + v * v)
        lobes = 0.55 + 0.45 * np.cos(5 * ang) ** 2
        return rad <= r * lobes
    raise ValueError(shape)


def background(name, h, w):
    top, bottom = BACKGROUNDS[name]
    img = np.empty((h, w, 3), np.float32)
    if bottom is None:
        img[:] = top
    else:
        t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
        img[:] = np.array(top, np.float32) * (1 - t) + np.array(bottom, np.float32) * t
    return img


def render(attrs, frames, h=64, w=64, seed=0):
    """Renders a clip: uint8 [frames, h, w, 3]. attrs: dict with 'objects' (list of
    {shape, color, motion}) and 'background'."""
    rng = np.random.default_rng(seed)
    bg = background(attrs["background"], h, w)
    out = np.empty((frames, h, w, 3), np.uint8)
    objs = []
    for o in attrs["objects"]:
        r = rng.uniform(0.12, 0.18) * min(h, w)
        motion = MOTIONS[o["motion"]]
        if motion is not None:
            # start so that the whole path stays mostly in frame
            dur = frames / FPS
            ex, ey = motion[0] * w * dur, motion[1] * h * dur
            cx = (w - ex) / 2 + rng.uniform(-0.08, 0.08) * w
            cy = (h - ey) / 2 + rng.uniform(-0.08, 0.08) * h
        else:
            cx = rng.uniform(0.35, 0.65) * w
            cy = rng.uniform(0.35, 0.65) * h
        objs.append(dict(o, r=r, cx=cx, cy=cy, phase=rng.uniform(0, 2 * math.pi)))
    for f in range(frames):
        t = f / FPS
        img = bg.copy()
        for o in objs:
            cx, cy, r, angle = o["cx"], o["cy"], o["r"], 0.0
            m = o["motion"]
            if MOTIONS[m] is not None:
                cx += MOTIONS[m][0] * w * t
                cy += MOTIONS[m][1] * h * t
            elif m == "bounces":
                cy = h * 0.7 - abs(math.sin(math.pi * 1.5 * t + o["phase"])) * h * 0.4
            elif m == "grows":
                r = r * (0.5 + 1.2 * t / max(frames / FPS, 1e-6))
            elif m == "shrinks":
                r = r * (1.7 - 1.2 * t / max(frames / FPS, 1e-6))
            elif m == "spins":
                angle = 2.5 * t + o["phase"]
            img[shape_mask(o["shape"], cx, cy, r, angle, h, w)] = COLORS[o["color"]]
        out[f] = np.clip(img, 0, 255).astype(np.uint8)
    return out


def caption(attrs):
    def article(word):
        return "an" if word[0] in "aeiou" else "a"

    parts = [f"{article(o['color'])} {o['color']} {o['shape']} {o['motion']}" for o in attrs["objects"]]
    return " and ".join(parts) + f" on a {attrs['background']} background"


def sample_attrs(rng, allow_held_out=False, max_objects=2):
    """Random attributes; held-out combinations are skipped unless allowed."""
    while True:
        n = 1 if rng.random() < 0.75 or max_objects == 1 else 2
        objs = []
        for _ in range(n):
            objs.append(
                {
                    "shape": SHAPES[rng.integers(len(SHAPES))],
                    "color": list(COLORS)[rng.integers(len(COLORS))],
                    "motion": list(MOTIONS)[rng.integers(len(MOTIONS))],
                }
            )
        if n == 2 and objs[0]["color"] == objs[1]["color"]:
            continue
        held = any((o["shape"], o["color"], o["motion"]) in HELD_OUT for o in objs)
        if held and not allow_held_out:
            continue
        bgs = list(BACKGROUNDS)
        return {"objects": objs, "background": bgs[rng.integers(len(bgs))]}


if __name__ == "__main__":
    rng = np.random.default_rng(0)
    for i in range(5):
        a = sample_attrs(rng)
        print(caption(a), render(a, 17, seed=i).shape)
