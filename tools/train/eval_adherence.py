#!/usr/bin/python3
"""eval_adherence.py - does reel-tiny draw what the prompt says? (PyTorch reference path)

Renders a fixed prompt set (the four HELD_OUT combinations of clips.py plus twelve
in-distribution ones, every colour and every straight motion) with the reference
pipeline: tokenizer -> umt5.py -> wan_dit.py sampled with samplers.py (CFG with the
empty negative prompt) -> wan_vae.py decode, at the model.json defaults. From the
decoded frames it measures the dominant foreground colour and the direction of the
foreground centroid's motion (measure(); the algorithm is spelled out in the model card
so the C test can do the same) and reports the share that match the caption.
Negative controls: the same seed with the colour word swapped (COLOR_SWAP) and with the
direction reversed (OPPOSITE); their measurement must disagree with the original
caption. The same measurement on the ground-truth clips checks the measurement itself.
--engine BIN renders with the C engine (reelfarm-engine render) instead.
Writes build/train-tiny/adherence.json and contact.png (or --out and its folder).
"""
import argparse
import json
import os
import time

import numpy as np
import sentencepiece as spm
import torch

import clips
from common import MODEL_DIR, threads, work  # first: puts tools/reference on the path
import samplers  # noqa: E402
import sheet  # noqa: E402
import st  # noqa: E402
import umt5  # noqa: E402
import wan_dit as wd  # noqa: E402
from wan_vae import WanVAE

TRANSLATIONS = [m for m, v in clips.MOTIONS.items() if v is not None]
OPPOSITE = {"moves to the right": "moves to the left", "moves to the left": "moves to the right",
            "moves up": "moves down", "moves down": "moves up",
            "moves diagonally up and to the right": "moves diagonally down and to the left",
            "moves diagonally down and to the left": "moves diagonally up and to the right"}
COLOR_NAMES = list(clips.COLORS)
COLOR_SWAP = {c: COLOR_NAMES[(i + 4) % len(COLOR_NAMES)] for i, c in enumerate(COLOR_NAMES)}
FG_THRESHOLD = 0.25  # max-channel |pixel - row background| in [0, 1]
MIN_AREA = 12  # foreground pixels for a frame to count
MIN_SHIFT = 4.0  # pixels of centroid travel below which the motion is "static"


def prompt_set():
    """[(shape, colour, motion, background, held_out)], fixed."""
    bgs = list(clips.BACKGROUNDS)
    out = [(s, c, m, bgs[i % len(bgs)], True) for i, (s, c, m) in enumerate(sorted(clips.HELD_OUT))]
    i = 0
    while len(out) < 16:
        s, c, m = clips.SHAPES[(i // 2) % 4], COLOR_NAMES[i % 8], TRANSLATIONS[i % 6]
        if (s, c, m) not in clips.HELD_OUT:
            out.append((s, c, m, bgs[(i * 5 + 1) % len(bgs)], False))
        i += 1
    return out


def caption(shape, color, motion, bg):
    return clips.caption({"objects": [{"shape": shape, "color": color, "motion": motion}], "background": bg})


def measure(frames):
    """uint8 [F, H, W, 3] -> (colour name or None, direction name or "static"/None, info).
    Background: per image row, the median over all frames and columns (the backgrounds
    are plain or vertical gradients and the object covers well under half of a row).
    Foreground: max over channels of |pixel - row background| > FG_THRESHOLD. Colour:
    the mean foreground RGB over all frames, nearest (Euclidean) of clips.COLORS.
    Motion: least-squares slope of the foreground centroid x(f), y(f) over frames with
    at least MIN_AREA pixels, times (F - 1); under MIN_SHIFT pixels -> "static", else
    the translation whose (dx, dy) has the largest cosine with it."""
    f = frames.astype(np.float32) / 255.0
    nf, h, w, _ = f.shape
    bg = np.median(f.transpose(1, 0, 2, 3).reshape(h, nf * w, 3), axis=1)  # [h, 3]
    mask = np.abs(f - bg[None, :, None, :]).max(axis=3) > FG_THRESHOLD
    area = mask.sum(axis=(1, 2))
    if mask.sum() < MIN_AREA:
        return None, None, {"area": 0}
    rgb = f[mask].mean(axis=0) * 255.0
    names = list(clips.COLORS)
    dist = [float(np.linalg.norm(rgb - np.array(clips.COLORS[n], np.float32))) for n in names]
    colour = names[int(np.argmin(dist))]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    ts, cx, cy = [], [], []
    for i in range(nf):
        if area[i] >= MIN_AREA:
            ts.append(i)
            cx.append(float(xs[mask[i]].mean()))
            cy.append(float(ys[mask[i]].mean()))
    info = {"rgb": [round(float(v), 1) for v in rgb], "frames_with_fg": len(ts)}
    if len(ts) < 3:
        return colour, None, info
    t = np.array(ts, np.float32)
    dx = float(np.polyfit(t, cx, 1)[0]) * (nf - 1)
    dy = float(np.polyfit(t, cy, 1)[0]) * (nf - 1)
    info["shift"] = [round(dx, 1), round(dy, 1)]
    if np.hypot(dx, dy) < MIN_SHIFT:
        return colour, "static", info
    best, bc = None, -2.0
    for m in TRANSLATIONS:
        vx, vy = clips.MOTIONS[m]
        c = (dx * vx + dy * vy) / (np.hypot(dx, dy) * np.hypot(vx, vy))
        if c > bc:
            best, bc = m, c
    return colour, best, info


class Model:
    """The reference pipeline over a model folder."""

    def __init__(self, path):
        with open(os.path.join(path, "model.json")) as f:
            self.mj = json.load(f)
        self.p, self.cfg, _ = wd.load_model(os.path.join(path, self.mj["dit"]))
        self.p5, self.c5 = umt5.load(os.path.join(path, self.mj["t5"]))
        self.sp = spm.SentencePieceProcessor(model_file=os.path.join(path, self.mj["tokenizer"]))
        raw, _ = st.load(os.path.join(path, self.mj["vae"]), as_f32=True)
        self.vae = WanVAE({k: torch.from_numpy(np.array(v, np.float32)) for k, v in raw.items()})

    def text(self, prompt):
        ids = torch.tensor([self.sp.encode(prompt) + [1]])
        with torch.no_grad():
            return umt5.forward(self.p5, self.c5, ids)

    def render(self, prompt, seed, **over):
        d = dict(self.mj["defaults"], **over)
        frames, h, w = d["frames"], d["height"], d["width"]
        shape = (16, (frames - 1) // 4 + 1, h // 8, w // 8)
        x = torch.randn(shape, generator=torch.Generator().manual_seed(seed)).numpy()
        g = float(d["guidance"])
        ctxs = [self.text(prompt)] + ([self.text(d["negative"])] if g != 1.0 else [])
        smp = samplers.Sampler(d["sampler"], int(d["steps"]), float(d["shift"]), cfg=g != 1.0, guidance=g)

        def model(xb, tb):
            with torch.no_grad():
                out = [wd.forward(self.p, self.cfg, torch.from_numpy(xb[i:i + 1]),
                                  torch.from_numpy(tb[i:i + 1]), ctxs[i]) for i in range(len(xb))]
            return torch.cat(out).numpy()

        for _ in range(smp.steps):
            x = smp.do_step(model, x)
        with torch.no_grad():
            y = self.vae.decode(torch.from_numpy(x)[None])[0]
        return ((y.permute(1, 2, 3, 0).numpy() + 1.0) * 127.5).round().clip(0, 255).astype(np.uint8)


class Engine:
    """The C engine (reelfarm-engine render) over the same model folder: same prompts
    and seeds, Philox noise instead of torch's, so different (equally valid) samples."""

    def __init__(self, binary, path):
        self.binary, self.path = binary, path
        with open(os.path.join(path, "model.json")) as f:
            self.mj = json.load(f)

    def render(self, prompt, seed, **over):
        import glob
        import subprocess
        import tempfile
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [self.binary, "render", "--model", self.path, "--prompt", prompt, "--seed", str(seed),
                   "--threads", "1", "-o", os.path.join(tmp, "frames")]
            for k, v in over.items():
                cmd += ["--" + k, str(v)]
            subprocess.run(cmd, check=True, capture_output=True)
            files = sorted(glob.glob(os.path.join(tmp, "frames", "*.png")))
            return np.stack([sheet.read_png(f) for f in files])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", help="render with this reelfarm-engine binary instead of PyTorch")
    ap.add_argument("--model", default=MODEL_DIR)
    ap.add_argument("--n", type=int, default=16, help="prompts to use (of 16)")
    ap.add_argument("--guidance", type=float)
    ap.add_argument("--shift", type=float)
    ap.add_argument("--steps", type=int)
    ap.add_argument("--out", default=work("adherence.json"))
    args = ap.parse_args()
    threads()
    over = {k: getattr(args, k) for k in ("guidance", "shift", "steps") if getattr(args, k) is not None}
    m = Engine(args.engine, args.model) if args.engine else Model(args.model)
    t0 = time.time()
    rows, results = [], []
    gt = {"colour": 0, "motion": 0}
    prompts = prompt_set()[:args.n]
    for i, (s, c, mo, bg, held) in enumerate(prompts):
        seed = 1000 + i
        cap = caption(s, c, mo, bg)
        truth = clips.render({"objects": [{"shape": s, "color": c, "motion": mo}], "background": bg},
                             m.mj["defaults"]["frames"], m.mj["defaults"]["height"], m.mj["defaults"]["width"], seed=seed)
        tc, tm, _ = measure(truth)
        gt["colour"] += tc == c
        gt["motion"] += tm == mo
        vid = m.render(cap, seed, **over)
        mc, mm, info = measure(vid)
        vc = m.render(caption(s, COLOR_SWAP[c], mo, bg), seed, **over)
        cc, _, _ = measure(vc)
        vm = m.render(caption(s, c, OPPOSITE[mo], bg), seed, **over)
        _, cm, _ = measure(vm)
        r = {"prompt": cap, "held_out": held, "colour": mc, "motion": mm, "info": info,
             "colour_ok": mc == c, "motion_ok": mm == mo,
             "control_colour": cc, "control_colour_disagrees": cc != c, "control_colour_follows": cc == COLOR_SWAP[c],
             "control_motion": cm, "control_motion_disagrees": cm != mo, "control_motion_follows": cm == OPPOSITE[mo]}
        results.append(r)
        print("%-80s colour %-7s %s motion %-40s %s | ctrl colour %s ctrl motion %s (%.0fs)" % (
            cap, mc, "ok" if r["colour_ok"] else "NO", mm, "ok" if r["motion_ok"] else "NO", cc, cm,
            time.time() - t0), flush=True)
        if len(rows) < 12:
            rows.append([vid[k] for k in range(0, len(vid), 4)] + [vm[k] for k in range(0, len(vm), 8)])
    n = len(results)

    def share(key, sub=None):
        rs = [r for r in results if sub is None or r["held_out"] == sub]
        return round(sum(r[key] for r in rs) / max(1, len(rs)), 3)

    summary = {"n": n, "colour_match": share("colour_ok"), "motion_match": share("motion_ok"),
               "held_out_colour_match": share("colour_ok", True), "held_out_motion_match": share("motion_ok", True),
               "control_colour_disagrees": share("control_colour_disagrees"),
               "control_motion_disagrees": share("control_motion_disagrees"),
               "control_colour_follows_swap": share("control_colour_follows"),
               "control_motion_follows_reversal": share("control_motion_follows"),
               "ground_truth_colour_match": gt["colour"] / n, "ground_truth_motion_match": gt["motion"] / n,
               "settings": dict(m.mj["defaults"], **over), "seconds": round(time.time() - t0, 1),
               "renderer": "reelfarm-engine" if args.engine else "pytorch reference"}
    print(json.dumps(summary, indent=1))
    with open(args.out, "w") as f:
        json.dump({"summary": summary, "results": results}, f, indent=1)
    sheet.write_png(os.path.join(os.path.dirname(args.out), "contact.png"), sheet.sheet(rows, scale=2))


if __name__ == "__main__":
    main()
