"""vae_bench_peer.py - the PyTorch peer of tests/bench/bench_vae.c.

Decodes `z` from --input with the reference Wan-VAE (tools/reference/wan_vae.py, the
release's streamed path: one latent frame per call) on --threads threads and prints
"peer_fps <pixel frames per second>" for the best of --reps runs, then the same for the
whole-sequence path (each conv once over all frames; not the release's algorithm, but a
faster PyTorch baseline) as "peer_whole_fps". Reads only its inputs.
"""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402
from wan_vae import WanVAE  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vae", required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    sd, _ = st_io.read(a.vae)
    z = st_io.read(a.input)[0]["z"]
    vae = WanVAE(sd)
    for whole, label in ((False, "peer_fps"), (True, "peer_whole_fps")):
        best = None
        with torch.no_grad():
            for _ in range(a.reps):
                t0 = time.perf_counter()
                v = vae.decode(z, whole=whole)
                dt = time.perf_counter() - t0
                best = dt if best is None else min(best, dt)
        print("%s %.4f frames %d seconds %.4f" % (label, v.shape[2] / best, v.shape[2], best),
              flush=True)


if __name__ == "__main__":
    main()
