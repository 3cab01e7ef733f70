"""make_tiny_model.py - writes tests/fixtures/tiny_model/: the pieces of a tiny random model
folder whose parts fit together (the umT5 output width is the DiT's text_dim), for tests
of the whole pipeline's mechanics (inputs, render, the farm) where quality does not matter.

DiT: official form, dim 64, 1 head of 64, 2 layers, ffn 128, text_dim 64, BF16 weights
(wan_dit.random_params, seed 21). umT5: vocab 1500 (the nfkc_bf tokenizer fixture's), dim
64, 4 heads x 16, ffn 128, 2 layers, F32 (umt5.random_params, seed 22). The VAE and the
tokenizer are the existing fixtures (tests/fixtures/vae/vae_tiny.safetensors,
tests/fixtures/tokenizer/nfkc_bf.model): a test links them into a folder beside these
files with its own model.json (see tests/support/tiny_model.c). Deterministic.
Usage: /usr/bin/python3 tools/reference/make_tiny_model.py [OUT_DIR]
"""
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402
import umt5  # noqa: E402
import wan_dit  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "..", "..", "tests", "fixtures", "tiny_model")
DIT = wan_dit.Config(dim=64, ffn_dim=128, num_heads=1, num_layers=2, text_dim=64)
T5 = umt5.Config(vocab=1500, dim=64, num_heads=4, head_dim=16, ffn_dim=128, num_layers=2)


def npy(t):
    return np.ascontiguousarray(t.detach().numpy())


def main():
    out = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_OUT)
    os.makedirs(os.path.join(out, "dit"), exist_ok=True)
    torch.set_num_threads(1)
    meta = {"generator": "tools/reference/make_tiny_model.py"}
    p = wan_dit.random_params(DIT, 21)
    st.save(os.path.join(out, "dit", "diffusion_pytorch_model.safetensors"),
            {k: st.BF16(st.bf16_bits(npy(v))) for k, v in p.items()}, {"format": "pt", **meta})
    cfg = {"_class_name": "WanModel", "_diffusers_version": "0.30.0", "dim": DIT.dim,
           "eps": DIT.eps, "ffn_dim": DIT.ffn_dim, "freq_dim": DIT.freq_dim,
           "in_dim": DIT.in_dim, "model_type": "t2v", "num_heads": DIT.num_heads,
           "num_layers": DIT.num_layers, "out_dim": DIT.out_dim, "text_len": DIT.text_len,
           "text_dim": DIT.text_dim}
    with open(os.path.join(out, "dit", "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    q = umt5.random_params(T5, seed=22)
    st.save(os.path.join(out, "t5.safetensors"), {k: npy(v) for k, v in q.items()}, meta)


if __name__ == "__main__":
    main()
