"""bench_dit.py - the PyTorch peer of the C DiT benchmark (issue 3's bench config).

Times wan_dit.forward (the reference, float32, plain matmul attention) on random
weights at dim 512, 4 heads, 8 layers, ffn 2048, latent [1,16,8,32,32] (2048 tokens),
20 text tokens (zero-padded to text_len 512 as Wan2.1 does), and a 2048^3 float32
matmul as the peer's GEMM rate. Prints one machine-parsable line:
  torch_threads=N torch_forward_s=S torch_flops=F torch_gflops=G torch_matmul_gflops=M
FLOPs are counted by wan_dit.flops (matmuls only, 2 per multiply-add; see there).
--write-model DIR saves the same random weights as an official-form folder
(config.json + diffusion_pytorch_model.safetensors) so a C bench runs this model.
Usage: /usr/bin/python3 tools/reference/bench_dit.py [--threads N] [--repeat R] [--write-model DIR]
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402
import wan_dit  # noqa: E402

BENCH = wan_dit.Config(dim=512, ffn_dim=2048, num_heads=4, num_layers=8)
LATENT = (1, 16, 8, 32, 32)
TEXT_TOKENS = 20


def best_of(fn, repeat):
    fn()  # warm-up: first-touch allocations, BLAS thread start
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads (default: all cores)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs; the best is reported")
    ap.add_argument("--write-model", metavar="DIR", help="also save the random weights as an official folder")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)

    p = wan_dit.random_params(BENCH, seed=7)
    if a.write_model:
        os.makedirs(a.write_model, exist_ok=True)
        st.save(os.path.join(a.write_model, "diffusion_pytorch_model.safetensors"),
                {k: v.numpy() for k, v in p.items()}, {"generator": "tools/reference/bench_dit.py"})
        c = BENCH
        with open(os.path.join(a.write_model, "config.json"), "w") as f:
            json.dump({"_class_name": "WanModel", "dim": c.dim, "eps": c.eps, "ffn_dim": c.ffn_dim,
                       "freq_dim": c.freq_dim, "in_dim": c.in_dim, "model_type": "t2v",
                       "num_heads": c.num_heads, "num_layers": c.num_layers, "out_dim": c.out_dim,
                       "text_len": c.text_len}, f, indent=2, sort_keys=True)
    g = torch.Generator().manual_seed(8)
    x = torch.randn(*LATENT, generator=g)
    ctx = torch.randn(1, TEXT_TOKENS, BENCH.text_dim, generator=g)
    t = torch.tensor([500.0])
    tokens = LATENT[2] * LATENT[3] * LATENT[4] // 4

    with torch.no_grad():
        s = best_of(lambda: wan_dit.forward(p, BENCH, x, t, ctx), a.repeat)
    fl = wan_dit.flops(BENCH, 1, tokens)

    n = 2048
    ma, mb = torch.randn(n, n, generator=g), torch.randn(n, n, generator=g)
    ms = best_of(lambda: ma @ mb, a.repeat)

    print("torch_threads=%d torch_forward_s=%.4f torch_flops=%d torch_gflops=%.2f "
          "torch_matmul_gflops=%.2f" % (a.threads, s, fl, fl / s / 1e9, 2 * n ** 3 / ms / 1e9))


if __name__ == "__main__":
    main()
