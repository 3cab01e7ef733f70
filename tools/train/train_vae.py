#!/usr/bin/python3
"""train_vae.py - stage 2 of reel-tiny: the Wan-VAE-architecture autoencoder.

The model is tools/reference/wan_vae.py's WanVAE over a state dict (official names,
base width common.VAE_DIM, z_dim 16, strides 4x8x8), trained with autograd through the
reference's own whole-sequence path (FastVAE only skips all-zero taps). It starts
framewise (framewise_init: a per-frame 2D autoencoder that repeats frames in time), so
the cheap single-frame steps teach every frame. Each step sees 8 random 32x32 crops of
single frames and 2 full 64x64 frames (the causal VAE treats a lone frame as a first
frame); every 3rd step adds one 5-frame 32x32 clip crop (so the temporal taps learn),
all rendered on the fly by clips.py from per-step seeds. Loss: L1 + MSE on the
unclamped decoder output (foreground pixels weighted --fg-weight x), plus 1e-3 * mean(mu^2); the decoder sees mu + N(0,
0.05^2) so it tolerates a denoiser's small errors. Runs for --minutes (resumable from
build/train-tiny/vae_ckpt.pt); the latents_mean/std are set later by encode_latents.py.
--decoder-only then continues with the encoder frozen (so the cached latents stay
valid) while the DiT trains: build/train-tiny/vae_dec_ckpt.pt, which export.py prefers. With --cached-clips N it
decodes N whole native clips per step from the cached latents (+ noise of
--latent-noise x their std), against the re-rendered clips: the temporal layers then
learn on the exact input the engine decodes (the crop steps teach them little).
--joint-clips N (session 3) trains the encoder again, with the decoder, on N whole native
clips a step (foreground weighted): the frozen encoder had kept colour weakly (purple and
cyan close to blue), the ceiling of what the DiT could learn. It starts from vae_ckpt.pt's
encoder and vae_dec_ckpt.pt's decoder and writes build/train-tiny/vae_joint_ckpt.pt, which
encode_latents.py and export.py then prefer; --anchor keeps the new latents near the
cached ones (squared difference in units of their std), so the DiT trained on those
continues instead of starting over. --decoder-only --after-joint then trains that decoder
on (vae_joint_dec_ckpt.pt) with the re-encoded latents cached; --lone-frames adds lone
frames (an image input is encoded alone: the whole-clip stages never showed the decoder
one).
"""
import argparse
import json
import math
import os
import time

import numpy as np
import torch

import clips
from common import FastVAE, H, W, VAE_DIM, Z_DIM, clip_tensor, threads, work
from wan_vae import random_state, wan_vae_shapes

CROP = 32


N_SINGLE, N_FULL, N_CLIP, CLIP_EVERY = 8, 2, 1, 3


def batch(step):
    """Deterministic batch of step: (singles [8,3,1,32,32], full [2,3,1,64,64], clips
    [1,3,5,32,32] on every 3rd step, else None)."""
    rng = np.random.default_rng(1000 + step)
    singles, cl, full = [], [], []
    for i in range(N_SINGLE + N_FULL):
        a = clips.sample_attrs(rng)
        v = clips.render(a, clips.FPS + 1, H, W, seed=int(rng.integers(1 << 30)))
        f = v[rng.integers(len(v))]
        if i >= N_SINGLE:
            full.append(clip_tensor(f[None]))
        else:
            y, x = rng.integers(0, H - CROP + 1), rng.integers(0, W - CROP + 1)
            singles.append(clip_tensor(f[None, y:y + CROP, x:x + CROP]))
    if step % CLIP_EVERY:
        return torch.stack(singles), torch.stack(full), None
    for _ in range(N_CLIP):
        a = clips.sample_attrs(rng)
        v = clips.render(a, 5, H, W, seed=int(rng.integers(1 << 30)))
        y, x = rng.integers(0, H - CROP + 1), rng.integers(0, W - CROP + 1)
        cl.append(clip_tensor(v[:, y:y + CROP, x:x + CROP]))
    return torch.stack(singles), torch.stack(full), torch.stack(cl)


def framewise_init(sd):
    """Makes the random VAE a per-frame 2D autoencoder that repeats frames in time:
    the earlier taps of every causal 3-frame conv are zeroed, the encoder's down3d
    time convs keep the newest frame, the decoder's up3d time convs copy the frame into
    both halves. Single-frame training (cheap) then teaches every frame; clip steps
    teach the temporal taps from there."""
    with torch.no_grad():
        for name, w in sd.items():
            if not name.endswith(".weight") or w.dim() != 5 or w.shape[2] != 3:
                continue
            if name.endswith("time_conv.weight"):
                w.zero_()
                c = w.shape[1]
                for half in range(w.shape[0] // c):
                    w[half * c:(half + 1) * c, :, 2, 0, 0] = torch.eye(c)
                sd[name[:-len("weight")] + "bias"].zero_()
            else:
                w[:, :, :2] = 0.0


def recon(vae, x, g, frozen_encoder=False, fg_weight=1.0):
    """Reconstruction loss terms of x through the VAE (latent noise from generator g)."""
    if frozen_encoder:
        with torch.no_grad():
            mu = vae.encode(x, whole=True)
    else:
        mu = vae.encode(x, whole=True)  # mean 0 / std 1 during training: raw mu
    z = mu + 0.05 * torch.randn(mu.shape, generator=g)
    y = vae.dec_body(vae.cconv(z, "conv2", None), None)
    loss, l1 = weighted_loss(y, x, fg_weight)
    return loss, 1e-3 * mu.pow(2).mean(), l1


def weighted_loss(y, x, fg_weight):
    """L1 + MSE of the decode y against x, and the plain L1. The shapes are a small share
    of the pixels: pixels off the image's median colour (the foreground) weigh fg_weight x,
    so their colour is not traded for the background's."""
    d = y - x
    med = x.flatten(3).median(dim=3).values[..., None, None]
    w = 1.0 + (fg_weight - 1.0) * ((x - med).abs().amax(dim=1, keepdim=True) > 0.1).float()
    return (w * d.abs()).mean() + (w * d.pow(2)).mean(), d.abs().mean().item()


class CachedClips:
    """Decoder training on whole native clips: the cached latents (encode_latents.py,
    frozen encoder) and the clips they were encoded from, re-rendered (clips.py is a
    pure function of the attributes and seed) and kept in memory."""

    def __init__(self):
        from encode_latents import dataset_attrs
        d = torch.load(work("latents.pt"))
        self.mu = d["z"] * d["std"].view(1, -1, 1, 1, 1) + d["mean"].view(1, -1, 1, 1, 1)
        self.std = d["std"].view(1, -1, 1, 1, 1)
        self.attrs = dataset_attrs(len(self.mu))
        self.frames = self.mu.shape[2] * 4 - 3
        self.cache = {}

    def batch(self, step, n):
        rng = np.random.default_rng(500000 + step)
        idx = rng.integers(0, len(self.mu), n)
        xs = []
        for i in idx.tolist():
            if i not in self.cache:
                a, seed = self.attrs[i]
                self.cache[i] = clips.render(a, self.frames, H, W, seed=seed)
            xs.append(clip_tensor(self.cache[i]))
        return self.mu[torch.from_numpy(idx)], torch.stack(xs)


def recon_mu(vae, mu, std, x, g, noise, fg_weight):
    """Loss of decoding raw mu (+ noise x the latents' std: a denoiser's error) against x."""
    z = mu + noise * std * torch.randn(mu.shape, generator=g)
    y = vae.dec_body(vae.cconv(z, "conv2", None), None)
    return weighted_loss(y, x, fg_weight)


def recon_joint(vae, old_mu, std, x, g, noise, fg_weight, anchor):
    """Loss of encoding and decoding whole clips x, plus the anchor to the old latents."""
    mu = vae.encode(x, whole=True)
    loss, l1 = recon_mu(vae, mu, std, x, g, noise, fg_weight)
    drift = ((mu - old_mu) / std).pow(2).mean()
    return loss + anchor * drift, l1, drift.item()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=25.0)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--decoder-only", action="store_true",
                    help="freeze the encoder (its latents are cached) and train the decoder on")
    ap.add_argument("--fg-weight", type=float, default=1.0,
                    help="loss weight of pixels off the image's median colour")
    ap.add_argument("--cached-clips", type=int, default=0,
                    help="with --decoder-only: each step decodes this many whole cached clips "
                         "(latents.pt) instead of the crop/frame mix")
    ap.add_argument("--joint-clips", type=int, default=0,
                    help="train encoder and decoder on this many whole cached clips a step "
                         "(from vae_ckpt.pt's encoder, vae_dec_ckpt.pt's decoder) into vae_joint_ckpt.pt")
    ap.add_argument("--after-joint", action="store_true",
                    help="with --decoder-only: start from vae_joint_ckpt.pt (its encoder frozen, its "
                         "latents cached) and write vae_joint_dec_ckpt.pt")
    ap.add_argument("--lone-frames", action="store_true",
                    help="--cached-clips: each step also decodes two lone whole frames (what an "
                         "image input encodes to)")
    ap.add_argument("--anchor", type=float, default=0.1,
                    help="--joint-clips: weight of the new latents' squared drift from the cached ones")
    ap.add_argument("--latent-noise", type=float, default=0.1,
                    help="--cached-clips: noise added to the latent, in units of its std")
    ap.add_argument("--decay-from", type=float, default=0.0,
                    help="minutes (total) after which the lr falls linearly to lr/10 at --minutes")
    args = ap.parse_args()
    threads()
    torch.manual_seed(0)
    joint = args.joint_clips > 0
    assert not (joint and args.decoder_only), "--joint-clips trains the encoder too"
    assert not args.after_joint or args.decoder_only, "--after-joint goes with --decoder-only"
    ck = work("vae_joint_ckpt.pt" if joint else "vae_joint_dec_ckpt.pt" if args.after_joint
              else "vae_dec_ckpt.pt" if args.decoder_only else "vae_ckpt.pt")
    sd = random_state(wan_vae_shapes(dim=VAE_DIM, z_dim=Z_DIM), seed=0)
    framewise_init(sd)
    sd["latents_mean"], sd["latents_std"] = torch.zeros(Z_DIM), torch.ones(Z_DIM)
    train_names = [k for k in sorted(sd) if not k.startswith("latents_")]
    if args.decoder_only:
        enc = torch.load(work("vae_joint_ckpt.pt" if args.after_joint else "vae_ckpt.pt"))
        with torch.no_grad():
            for k in train_names:
                sd[k].copy_(enc["sd"][k])
        train_names = [k for k in train_names if k.startswith("decoder.") or k.startswith("conv2.")]
    if joint:
        enc, dec = torch.load(work("vae_ckpt.pt")), torch.load(work("vae_dec_ckpt.pt"))
        with torch.no_grad():
            for k in train_names:
                is_dec = k.startswith("decoder.") or k.startswith("conv2.")
                sd[k].copy_((dec if is_dec else enc)["sd"][k])
    for k in train_names:
        sd[k].requires_grad_(True)
    opt = torch.optim.Adam([sd[k] for k in train_names], lr=args.lr, betas=(0.9, 0.99))
    step, log, spent = 0, [], 0.0
    if os.path.exists(ck):
        c = torch.load(ck)
        with torch.no_grad():
            for k in train_names:
                sd[k].copy_(c["sd"][k])
        opt.load_state_dict(c["opt"])
        step, log, spent = c["step"], c["log"], c["spent"]
        print("resumed at step %d (%.1f min spent)" % (step, spent / 60), flush=True)
    vae = FastVAE(sd)
    cached = CachedClips() if args.cached_clips or joint else None
    assert cached is None or args.decoder_only or joint, "--cached-clips needs --decoder-only"
    t0 = time.time() - spent
    while time.time() - t0 < args.minutes * 60:
        g = torch.Generator().manual_seed(step)
        singles, full, cl = batch(step)
        lr = args.lr * min(1.0, (step + 1) / 20)
        el = (time.time() - t0) / 60
        if 0 < args.decay_from < el:
            lr *= 1.0 - 0.9 * min(1.0, (el - args.decay_from) / max(1e-6, args.minutes - args.decay_from))
        for pg in opt.param_groups:
            pg["lr"] = lr
        opt.zero_grad()
        if cached is not None:
            mu, x = cached.batch(step, args.joint_clips or args.cached_clips)
            drift = float("nan")
            if joint:
                loss, l1, drift = recon_joint(vae, mu, cached.std, x, g, args.latent_noise, args.fg_weight, args.anchor)
            else:
                loss, l1 = recon_mu(vae, mu, cached.std, x, g, args.latent_noise, args.fg_weight)
            if args.lone_frames:  # two whole 64x64 frames alone (an image input's latent)
                lone, _, _ = recon(vae, batch(step)[1], g, True, args.fg_weight)
                loss = loss + lone
            loss.backward()
            torch.nn.utils.clip_grad_norm_([sd[k] for k in train_names], 1.0)
            opt.step()
            step += 1
            log.append([step, time.time() - t0, loss.item(), float("nan"), drift, l1])
            if step % 10 == 0:
                print("vae step %d t %.0fs loss %.4f l1 whole clips %.4f latent drift %.4f"
                      % (step, log[-1][1], loss.item(), l1, drift), flush=True)
            if step % 50 == 0 or time.time() - t0 >= args.minutes * 60:
                torch.save({"sd": {k: v.detach() for k, v in sd.items() if not k.startswith("latents_")},
                            "opt": opt.state_dict(), "step": step, "log": log, "spent": time.time() - t0}, ck + ".tmp")
                os.replace(ck + ".tmp", ck)
            continue
        fz = args.decoder_only
        fw = args.fg_weight
        ls, rs, l1s = recon(vae, singles, g, fz, fw)
        lf, rf, l1f = recon(vae, full, g, fz, fw)
        lc, rc, l1c = recon(vae, cl, g, fz, fw) if cl is not None else (0.0, 0.0, float("nan"))
        loss = (N_SINGLE * ls + 4 * N_FULL * lf + N_CLIP * 5 * lc) / (N_SINGLE + 4 * N_FULL + 5 * N_CLIP)
        if not fz:
            loss = loss + rs + rf + rc
        loss.backward()
        torch.nn.utils.clip_grad_norm_([sd[k] for k in train_names], 1.0)
        opt.step()
        step += 1
        log.append([step, time.time() - t0, loss.item(), l1s, l1f, l1c])
        print("vae step %d t %.0fs loss %.4f l1 single %.4f full %.4f clip %.4f" % tuple(log[-1]), flush=True)
        if step % 10 == 0 or time.time() - t0 >= args.minutes * 60:
            torch.save({"sd": {k: v.detach() for k, v in sd.items() if not k.startswith("latents_")}, "opt": opt.state_dict(),
                        "step": step, "log": log, "spent": time.time() - t0}, ck + ".tmp")
            os.replace(ck + ".tmp", ck)
    with open(ck[:-len("_ckpt.pt")] + "_log.json", "w") as f:
        json.dump(log, f)


if __name__ == "__main__":
    main()
