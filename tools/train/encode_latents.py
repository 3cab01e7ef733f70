#!/usr/bin/python3
"""encode_latents.py - stage 3 of reel-tiny: the DiT's training set, encoded once.

Renders --clips captioned 17-frame 64x64 clips (clips.sample_attrs with a fixed seed;
held-out combinations excluded), encodes them with the trained (then frozen) VAE
encoder (the newest stage's: common.vae_checkpoint), and caches raw mu. `--shard i --of n` encodes every n-th clip (so two
processes can share the work); `--merge` joins the shards, computes the per-channel
latents_mean / latents_std over the whole set and writes build/train-tiny/latents.pt
with the normalized latents z = (mu - mean) / std, the captions and the attributes.
`--first N` encodes only clips N.. (a set extended later); `--stats-clips N` takes the
statistics from the first N clips, so an extended set keeps the normalization a DiT
checkpoint was trained with.
"""
import argparse
import glob
import os
import time

import numpy as np
import torch

import clips
from common import FRAMES, H, W, Z_DIM, FastVAE, clip_tensor, threads, vae_checkpoint, work


def dataset_attrs(n, seed=7):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        a = clips.sample_attrs(rng)
        out.append((a, int(rng.integers(1 << 30))))
    return out


def load_vae():
    c = torch.load(vae_checkpoint())
    sd = dict(c["sd"])
    sd["latents_mean"], sd["latents_std"] = torch.zeros(Z_DIM), torch.ones(Z_DIM)
    return FastVAE(sd), c["step"]


def encode_shard(n, shard, of, first=0, bs=4):
    vae, step = load_vae()
    items = [(i, a, s) for i, (a, s) in enumerate(dataset_attrs(n)) if i >= first and i % of == shard]
    mus, idx = [], []
    t0 = time.time()
    with torch.no_grad():
        for j in range(0, len(items), bs):
            part = items[j:j + bs]
            x = torch.stack([clip_tensor(clips.render(a, FRAMES, H, W, seed=s)) for _, a, s in part])
            mus.append(vae.encode(x, whole=True))
            idx += [i for i, _, _ in part]
            print("shard %d: %d/%d clips, %.0fs" % (shard, j + len(part), len(items), time.time() - t0), flush=True)
    name = "latents_shard%d.pt" % shard if first == 0 else "latents_shard%d_from%d.pt" % (shard, first)
    torch.save({"idx": idx, "mu": torch.cat(mus), "vae_step": step}, work(name))


def merge(n, stats_clips=0):
    attrs = dataset_attrs(n)
    parts = [torch.load(f) for f in sorted(glob.glob(work("latents_shard*.pt")))]
    idx = sum((p["idx"] for p in parts), [])
    mu = torch.cat([p["mu"] for p in parts])
    order = np.argsort(idx)
    assert [idx[i] for i in order] == list(range(n)), "shards do not cover the clips"
    mu = mu[torch.from_numpy(order)]
    ref = mu[:stats_clips] if stats_clips else mu
    mean = ref.mean(dim=(0, 2, 3, 4))
    std = ref.std(dim=(0, 2, 3, 4))
    z = (mu - mean.view(1, -1, 1, 1, 1)) / std.view(1, -1, 1, 1, 1)
    torch.save({"z": z, "mean": mean, "std": std, "captions": [clips.caption(a) for a, _ in attrs],
                "attrs": [a for a, _ in attrs], "vae_step": parts[0]["vae_step"]}, work("latents.pt"))
    print("latents", tuple(z.shape), "mean", [round(v, 3) for v in mean.tolist()],
          "std", [round(v, 3) for v in std.tolist()])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=400)
    ap.add_argument("--shard", type=int, default=0)
    ap.add_argument("--of", type=int, default=1)
    ap.add_argument("--first", type=int, default=0, help="encode only clips from this index on (extends a set)")
    ap.add_argument("--merge", action="store_true")
    ap.add_argument("--stats-clips", type=int, default=0,
                    help="latents_mean/std over the first N clips only (0: all), so an extended set keeps them")
    args = ap.parse_args()
    threads()
    if args.merge:
        merge(args.clips, args.stats_clips)
    else:
        encode_shard(args.clips, args.shard, args.of, args.first)


if __name__ == "__main__":
    main()
