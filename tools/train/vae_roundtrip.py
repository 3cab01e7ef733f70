#!/usr/bin/python3
"""vae_roundtrip.py - how much colour and motion a reel-tiny VAE checkpoint keeps.

The DiT can only learn what the encoder's latents hold, and the decoder only shows what
it can decode, so before latents are re-encoded and the DiT trained on them, this
measures a VAE checkpoint on its own: ground-truth clips (the 16 adherence prompts with
their seeds, and --extra more single-object clips drawn with a fixed seed) are encoded
and decoded whole, and eval_adherence.measure() judges the round trip as it judges a
render. Prints the shares, the round trip's PSNR and the colour misses (true -> measured).
"""
import argparse
import os
import time

import numpy as np
import torch

import clips
from common import FRAMES, H, W, Z_DIM, FastVAE, clip_tensor, threads, work
from eval_adherence import measure, prompt_set


def load(name):
    c = torch.load(work(name))
    sd = dict(c["sd"])
    sd["latents_mean"], sd["latents_std"] = torch.zeros(Z_DIM), torch.ones(Z_DIM)
    return FastVAE(sd), c["step"]


def clip_set(extra):
    out = []
    for i, (s, c, m, bg, _) in enumerate(prompt_set()):
        out.append(({"objects": [{"shape": s, "color": c, "motion": m}], "background": bg}, 1000 + i))
    rng = np.random.default_rng(4242)
    while len(out) < 16 + extra:
        a = clips.sample_attrs(rng)
        if len(a["objects"]) == 1:
            out.append((a, int(rng.integers(1 << 30))))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default="vae_joint_ckpt.pt", help="checkpoint under build/train-tiny/")
    ap.add_argument("--extra", type=int, default=48, help="single-object clips beyond the 16 prompts")
    args = ap.parse_args()
    threads()
    vae, step = load(args.ckpt)
    t0 = time.time()
    ok_c = ok_m = 0
    psnr = []
    misses = []
    items = clip_set(args.extra)
    for a, seed in items:
        v = clips.render(a, FRAMES, H, W, seed=seed)
        with torch.no_grad():
            mu = vae.encode(clip_tensor(v)[None], whole=True)
            y = vae.decode(mu)[0]
        rt = ((y.permute(1, 2, 3, 0).numpy() + 1.0) * 127.5).round().clip(0, 255).astype(np.uint8)
        o = a["objects"][0]
        mse = float(np.mean((rt.astype(np.float64) - v.astype(np.float64)) ** 2))
        psnr.append(10.0 * np.log10(255.0 ** 2 / max(mse, 1e-10)))
        mc, mm, _ = measure(rt)
        ok_c += mc == o["color"]
        ok_m += mm == o["motion"] or clips.MOTIONS.get(o["motion"]) is None
        if mc != o["color"]:
            misses.append("%s->%s" % (o["color"], mc))
    n = len(items)
    print("%s (step %d): round trip colour %d/%d (%.1f%%), motion %d/%d, PSNR mean %.2f dB "
          "(worst %.2f); %.0fs" % (args.ckpt, step, ok_c, n, 100.0 * ok_c / n, ok_m, n,
                                   float(np.mean(psnr)), float(np.min(psnr)), time.time() - t0))
    print("colour misses:", ", ".join(misses) or "none")


if __name__ == "__main__":
    os.environ.setdefault("REEL_TINY_THREADS", "1")
    main()
