"""bench_t5.py - the PyTorch peer of the C umT5 benchmark: tokens per second.

Times umt5.forward (float32) on random weights at a fixed config: dim 1024, 16 heads x
64, ffn 2560, 4 layers, 32 buckets, vocab 4096 (a quarter-width, 1/6-depth umT5-XXL;
per-token cost scales the same way), one sequence of 512 tokens, no padding. Prints:
  torch_threads=N t5_tokens=T torch_t5_forward_s=S torch_t5_tokens_per_s=R torch_t5_gflops=G
FLOPs: 2 per multiply-add over q/k/v/o, gate/fc1/fc2 and attention QK^T and PV.
--write-model PATH saves the same random weights (safetensors, release names) so a C
bench can load exactly this model.
Usage: /usr/bin/python3 tools/reference/bench_t5.py [--threads N] [--repeat R] [--write-model PATH]
"""
import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402
import umt5  # noqa: E402

BENCH = umt5.Config(vocab=4096, dim=1024, num_heads=16, head_dim=64, ffn_dim=2560, num_layers=4)
TOKENS = 512


def flops(cfg, tokens):
    per_layer = 2 * tokens * cfg.dim * cfg.dim_attn * 4 + 2 * tokens * cfg.dim * cfg.ffn_dim * 3
    per_layer += 4 * tokens * tokens * cfg.dim_attn
    return cfg.num_layers * per_layer


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads (default: all cores)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs; the best is reported")
    ap.add_argument("--write-model", metavar="PATH", help="also save the random weights here")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    p = umt5.random_params(BENCH, seed=9)
    if a.write_model:
        st.save(a.write_model, {k: np.ascontiguousarray(v.numpy()) for k, v in p.items()},
                {"generator": "tools/reference/bench_t5.py"})
    ids = torch.randint(1, BENCH.vocab, (1, TOKENS), generator=torch.Generator().manual_seed(10))
    with torch.no_grad():
        umt5.forward(p, BENCH, ids)
        best = float("inf")
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            umt5.forward(p, BENCH, ids)
            best = min(best, time.perf_counter() - t0)
    print("torch_threads=%d t5_tokens=%d torch_t5_forward_s=%.4f torch_t5_tokens_per_s=%.1f torch_t5_gflops=%.2f"
          % (a.threads, TOKENS, best, TOKENS / best, flops(BENCH, TOKENS) / best / 1e9))


if __name__ == "__main__":
    main()
