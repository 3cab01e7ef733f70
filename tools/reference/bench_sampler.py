"""bench_sampler.py - the PyTorch peer of tests/bench/bench_sampler.c: one sampler step.

A step is what the C bench times: the reference DiT forward (wan_dit.forward, float32)
on a batch of 2 (classifier-free guidance: conditional and unconditional context), the
guidance combine, and the solver update of tools/reference/samplers.py. Config: the
Engine I bench (bench_dit.BENCH: dim 512, 4 heads, 8 layers, ffn 2048, latent
[16,8,32,32] = 2048 tokens, 20 text tokens), UniPC, 10 steps, shift 5, guidance 5.
Steps 1.. are timed (step 0 has no corrector); the best is reported. Prints one line:
  torch_threads=N torch_step_s=S torch_forward_share=F
Usage: /usr/bin/python3 tools/reference/bench_sampler.py [--threads N] [--repeat R]
"""
import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_dit  # noqa: E402
import wan_dit  # noqa: E402
from samplers import Sampler  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads")
    ap.add_argument("--repeat", type=int, default=2, help="timed steps; the best is reported")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cfg = bench_dit.BENCH
    p = wan_dit.random_params(cfg, seed=7)
    g = torch.Generator().manual_seed(8)
    x = torch.randn(*bench_dit.LATENT[1:], generator=g).numpy()
    ctx = torch.randn(2, bench_dit.TEXT_TOKENS, cfg.text_dim, generator=g)
    fwd = []

    def model(xb, t):
        t0 = time.perf_counter()
        with torch.no_grad():
            v = wan_dit.forward(p, cfg, torch.from_numpy(xb), torch.from_numpy(t), ctx[:xb.shape[0]])
        fwd.append(time.perf_counter() - t0)
        return v.numpy()

    s = Sampler("unipc", 10, 5.0, cfg=True, guidance=5.0)
    x = s.do_step(model, x)  # warm-up (and step 0: no corrector)
    best, best_fwd = float("inf"), 0.0
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        x = s.do_step(model, x)
        dt = time.perf_counter() - t0
        if dt < best:
            best, best_fwd = dt, fwd[-1]
    assert np.isfinite(x).all()
    print("torch_threads=%d torch_step_s=%.4f torch_forward_share=%.3f"
          % (a.threads, best, best_fwd / best))


if __name__ == "__main__":
    main()
