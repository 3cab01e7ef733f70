#!/usr/bin/python3
"""train_dit.py - stage 4 of reel-tiny: the umT5 text encoder and the Wan DiT, jointly.

Flow matching on the cached latents (encode_latents.py): x_s = (1 - s) x0 + s noise,
target v = noise - x0, the model gets t = 1000 s. s is shifted (s = 3u / (1 + 2u)) for a
random --shifted share of the batch and uniform for the rest, so the noisy end that
sampling with a shift visits (where colour and layout are decided) is well covered. 10% of captions are dropped to "" (ids = [</s>]) so
classifier-free guidance with an empty negative prompt works. The umT5 encoder
(tiny.T5_CFG) is trained jointly with the DiT (tiny.DIT_CFG): the text path is part of
the DiT's loss. AdamW, warm-up, gradient clipping, an EMA of the weights (what is
exported). Time-boxed by --minutes, resumable from build/train-tiny/dit_ckpt.pt (the
minutes count the resumed runs too); --decay-from lets the lr fall to lr/10 at the end.
"""
import argparse
import json
import os
import time

import numpy as np
import sentencepiece as spm
import torch

import tiny
from common import threads, work


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--ema", type=float, default=0.995)
    ap.add_argument("--shifted", type=float, default=0.5,
                    help="share of each batch whose sigma is shifted toward the noisy end")
    ap.add_argument("--decay-from", type=float, default=0.0,
                    help="minutes (total, resumed runs included) after which the lr falls linearly to "
                         "lr/10 at --minutes; 0: constant")
    args = ap.parse_args()
    threads()
    torch.manual_seed(0)
    data = torch.load(work("latents.pt"))
    z = data["z"]
    sp = spm.SentencePieceProcessor(model_file=work("tokenizer.model"))
    ids = [tiny.tokenize(sp, c) for c in data["captions"]]
    empty = tiny.tokenize(sp, "")
    c5, cfg = tiny.t5_config(sp.get_piece_size()), tiny.dit_config()
    p5, p = tiny.t5_init(c5, 1), tiny.dit_init(cfg, 2)
    params = {"t5." + k: v for k, v in p5.items()}
    params.update({"dit." + k: v for k, v in p.items()})
    for v in params.values():
        v.requires_grad_(True)
    ema = {k: v.detach().clone() for k, v in params.items()}
    opt = torch.optim.AdamW(list(params.values()), lr=args.lr, betas=(0.9, 0.99), weight_decay=0.0)
    ck = work("dit_ckpt.pt")
    step, log, spent = 0, [], 0.0
    if os.path.exists(ck):
        c = torch.load(ck)
        with torch.no_grad():
            for k in params:
                params[k].copy_(c["params"][k])
        ema = c["ema"]
        opt.load_state_dict(c["opt"])
        step, log, spent = c["step"], c["log"], c["spent"]
        print("resumed at step %d (%.1f min spent)" % (step, spent / 60), flush=True)
    p5 = {k[3:]: v for k, v in params.items() if k.startswith("t5.")}
    p = {k[4:]: v for k, v in params.items() if k.startswith("dit.")}
    t0 = time.time() - spent
    run = []

    def save():
        torch.save({"params": {k: v.detach() for k, v in params.items()}, "ema": ema,
                    "opt": opt.state_dict(), "step": step, "log": log, "spent": time.time() - t0,
                    "vocab": sp.get_piece_size()}, ck + ".tmp")
        os.replace(ck + ".tmp", ck)

    while time.time() - t0 < args.minutes * 60:
        rng = np.random.default_rng(100000 + step)
        g = torch.Generator().manual_seed(step)
        bi = rng.integers(0, len(z), args.batch)
        x0 = z[torch.from_numpy(bi)]
        u = torch.from_numpy(rng.random(args.batch)).float()
        half = torch.from_numpy(rng.random(args.batch) < args.shifted)
        s = torch.where(half, 3 * u / (1 + 2 * u), u).clamp(0.0, 0.999)
        noise = torch.randn(x0.shape, generator=g)
        sv = s.view(-1, 1, 1, 1, 1)
        xs = (1 - sv) * x0 + sv * noise
        drop = rng.random(args.batch) < 0.1
        texts = [empty if drop[i] else ids[j] for i, j in enumerate(bi)]
        lr = args.lr * min(1.0, (step + 1) / 50)
        el = (time.time() - t0) / 60
        if 0 < args.decay_from < el:
            lr *= 1.0 - 0.9 * min(1.0, (el - args.decay_from) / max(1e-6, args.minutes - args.decay_from))
        for pg in opt.param_groups:
            pg["lr"] = lr
        ctx, lens = tiny.encode_text(p5, c5, texts)
        v = tiny.forward(p, cfg, xs, s * 1000.0, ctx, lens)
        loss = (v - (noise - x0)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(params.values()), 1.0)
        opt.step()
        with torch.no_grad():
            d = min(args.ema, (step + 1) / (step + 10))
            for k, v_ in params.items():
                ema[k].mul_(d).add_(v_.detach(), alpha=1 - d)
        step += 1
        run.append(loss.item())
        if step % 10 == 0:
            log.append([step, time.time() - t0, float(np.mean(run))])
            run = []
            print("dit step %d t %.0fs loss %.4f" % tuple(log[-1]), flush=True)
        if step % 50 == 0:
            save()
    save()
    with open(work("dit_log.json"), "w") as f:
        json.dump(log, f)


if __name__ == "__main__":
    main()
