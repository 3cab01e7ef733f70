"""dit_torch_peer.py - the PyTorch peer of bench_dit_cuda: the Wan DiT forward on the GPU.

Builds a Wan2.1-shaped DiT with random bf16 weights on the GPU (default: the 1.3B shape,
dim 1536, 12 heads, 30 layers, ffn 8960), writes it as an official-form model folder
(config.json + diffusion_pytorch_model.safetensors, BF16) so the C engine loads the very
same weights, and times, on the same GPU:
  - the forward at batch B (2: CFG) on a latent [B,16,F,H,W] (21x60x104: 32,760 tokens)
    with 512 text rows, bf16 activations, PyTorch's fused attention
    (F.scaled_dot_product_attention), float32 layer/RMS norms and modulation;
  - that attention alone on [B, heads, tokens, 128];
  - a bf16 GEMM (8192^3), PyTorch's view of the machine's matrix peak.
FLOPs are tools/reference/wan_dit.flops (matmuls only, 2 per multiply-add). Prints one
machine-parsable line starting with "torch_peer:". It is a peer for timing, not a
reference: tools/reference/wan_dit.py is the reference.
Usage: python3 tools/gpu/dit_torch_peer.py --write-model DIR [--layers 30] [--batch 2]
       [--latent 21 60 104] [--repeat 3] [--no-forward]
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
import st  # noqa: E402
import wan_dit  # noqa: E402

BF = torch.bfloat16


def random_params(cfg, dev, seed):
    """Every tensor random on the GPU in bf16: weights N(0, 1/fan_in), biases N(0, 0.1^2),
    modulation N(0, 0.3^2), norm weights 1 + N(0, 0.1^2) (activations stay O(1))."""
    g = torch.Generator(device=dev).manual_seed(seed)
    out = {}
    for name, shape in wan_dit.param_shapes(cfg).items():
        r = torch.randn(*shape, generator=g, device=dev, dtype=torch.float32)
        if name.endswith("modulation"):
            v = 0.3 * r
        elif "norm" in name and name.endswith("weight"):
            v = 1.0 + 0.1 * r
        elif name.endswith(".bias"):
            v = 0.1 * r
        else:
            v = r / math.sqrt(int(np.prod(shape[1:])))
            if name == "time_projection.1.weight":
                v = 0.5 * v
        out[name] = v.to(BF)
    return out


def write_model(p, cfg, d):
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "diffusion_pytorch_model.safetensors")
    try:
        from safetensors.torch import save_file
        save_file({k: v.contiguous().cpu() for k, v in p.items()}, path,
                  {"generator": "tools/gpu/dit_torch_peer.py"})
    except ImportError:
        st.save(path, {k: st.BF16(v.cpu().view(torch.int16).numpy().view(np.uint16))
                       for k, v in p.items()}, {"generator": "tools/gpu/dit_torch_peer.py"})
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump({"_class_name": "WanModel", "dim": cfg.dim, "eps": cfg.eps,
                   "ffn_dim": cfg.ffn_dim, "freq_dim": cfg.freq_dim, "in_dim": cfg.in_dim,
                   "model_type": "t2v", "num_heads": cfg.num_heads,
                   "num_layers": cfg.num_layers, "out_dim": cfg.out_dim,
                   "text_len": cfg.text_len}, f, indent=2, sort_keys=True)


def lin(x, p, name):
    return F.linear(x, p[name + ".weight"], p.get(name + ".bias"))


def rms(x, w, eps):
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps) * w.float()).to(BF)


def rope(x, cos, sin):
    xf = x.float()
    a, b = xf[..., 0::2], xf[..., 1::2]
    return torch.stack([a * cos - b * sin, a * sin + b * cos], -1).flatten(-2).to(BF)


def attn(q, k, v):
    """[B, T, N, D] bf16 -> [B, T, N*D] through the fused SDPA kernel."""
    b, t, n, d = q.shape
    o = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
    return o.transpose(1, 2).reshape(b, t, n * d)


def forward(p, cfg, x, t, ctx_in):
    b = x.shape[0]
    n, d, eps, dim = cfg.num_heads, cfg.head_dim, cfg.eps, cfg.dim
    xp, grid = wan_dit.patchify(x, cfg)
    xs = F.linear(xp.to(BF), p["patch_embedding.weight"].reshape(dim, -1),
                  p["patch_embedding.bias"]).float()
    tk = xs.shape[1]
    s = wan_dit.time_sinusoid(cfg.freq_dim, t.cpu()).to(x.device, BF)
    e = lin(F.silu(lin(s, p, "time_embedding.0")), p, "time_embedding.2").float()
    e0 = lin(F.silu(e).to(BF), p, "time_projection.1").float().view(b, 6, dim)
    ctx = torch.zeros(b, cfg.text_len, cfg.text_dim, device=x.device, dtype=BF)
    ctx[:, :ctx_in.shape[1]] = ctx_in.to(BF)
    ctx = lin(F.gelu(lin(ctx, p, "text_embedding.0"), approximate="tanh"), p, "text_embedding.2")
    ang = wan_dit.rope_angles(d, *grid).to(x.device)
    cos, sin = torch.cos(ang).float()[None, :, None, :], torch.sin(ang).float()[None, :, None, :]
    lc = ctx.shape[1]
    for i in range(cfg.num_layers):
        pre = "blocks.%d." % i
        m = p[pre + "modulation"].float() + e0
        h = (F.layer_norm(xs, (dim,), eps=eps) * (1 + m[:, 1:2]) + m[:, 0:1]).to(BF)
        q = rope(rms(lin(h, p, pre + "self_attn.q"), p[pre + "self_attn.norm_q.weight"], eps)
                 .view(b, tk, n, d), cos, sin)
        k = rope(rms(lin(h, p, pre + "self_attn.k"), p[pre + "self_attn.norm_k.weight"], eps)
                 .view(b, tk, n, d), cos, sin)
        v = lin(h, p, pre + "self_attn.v").view(b, tk, n, d)
        xs = xs + lin(attn(q, k, v), p, pre + "self_attn.o").float() * m[:, 2:3]
        h = F.layer_norm(xs, (dim,), p[pre + "norm3.weight"].float(), p[pre + "norm3.bias"].float(),
                         eps).to(BF)
        q = rms(lin(h, p, pre + "cross_attn.q"), p[pre + "cross_attn.norm_q.weight"], eps)
        k = rms(lin(ctx, p, pre + "cross_attn.k"), p[pre + "cross_attn.norm_k.weight"], eps)
        v = lin(ctx, p, pre + "cross_attn.v")
        a = attn(q.view(b, tk, n, d), k.view(b, lc, n, d), v.view(b, lc, n, d))
        xs = xs + lin(a, p, pre + "cross_attn.o").float()
        h = (F.layer_norm(xs, (dim,), eps=eps) * (1 + m[:, 4:5]) + m[:, 3:4]).to(BF)
        y = lin(F.gelu(lin(h, p, pre + "ffn.0"), approximate="tanh"), p, pre + "ffn.2")
        xs = xs + y.float() * m[:, 5:6]
    mod = p["head.modulation"].float() + e[:, None, :]
    y = lin((F.layer_norm(xs, (dim,), eps=eps) * (1 + mod[:, 1:2]) + mod[:, 0:1]).to(BF), p,
            "head.head")
    return wan_dit.unpatchify(y.float(), grid, cfg)


def timed(fn, repeat):
    fn()
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--write-model", metavar="DIR", required=True)
    ap.add_argument("--layers", type=int, default=30)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--latent", type=int, nargs=3, default=(21, 60, 104), metavar=("F", "H", "W"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-forward", action="store_true", help="write the model, time nothing")
    a = ap.parse_args()
    if not torch.cuda.is_available():
        print("torch_peer: error=no_cuda_gpu")
        return 1
    dev = torch.device("cuda")
    cfg = wan_dit.Config(dim=1536, ffn_dim=8960, num_heads=12, num_layers=a.layers)
    torch.backends.cuda.matmul.allow_tf32 = True
    p = random_params(cfg, dev, seed=11)
    t0 = time.perf_counter()
    write_model(p, cfg, a.write_model)
    wsec = time.perf_counter() - t0
    if a.no_forward:
        print("torch_peer: wrote=%s write_s=%.1f" % (a.write_model, wsec))
        return 0
    f, h, w = a.latent
    g = torch.Generator(device=dev).manual_seed(12)
    x = torch.randn(a.batch, 16, f, h, w, generator=g, device=dev)
    ctx = torch.randn(a.batch, cfg.text_len, cfg.text_dim, generator=g, device=dev)
    t = torch.tensor([500.0, 250.0][:a.batch] + [100.0] * max(0, a.batch - 2), device=dev)
    tokens = f * h * w // 4
    torch.cuda.reset_peak_memory_stats()
    with torch.no_grad():
        fwd = timed(lambda: forward(p, cfg, x, t, ctx), a.repeat)
    peak = torch.cuda.max_memory_allocated() / 2**30
    fl = wan_dit.flops(cfg, a.batch, tokens)
    q = torch.randn(a.batch, cfg.num_heads, tokens, cfg.head_dim, generator=g, device=dev, dtype=BF)
    k = torch.randn_like(q)
    v = torch.randn_like(q)
    with torch.no_grad():
        sd = timed(lambda: F.scaled_dot_product_attention(q, k, v), a.repeat)
    afl = 4.0 * a.batch * tokens * tokens * cfg.dim
    n = 8192
    ma = torch.randn(n, n, generator=g, device=dev, dtype=BF)
    mb = torch.randn(n, n, generator=g, device=dev, dtype=BF)
    mm = timed(lambda: ma @ mb, 10)
    print("torch_peer: torch=%s gpu=%s forward_s=%.4f flops=%d tflops=%.1f sdpa_s=%.4f "
          "sdpa_tflops=%.1f gemm_tflops=%.1f peak_gib=%.2f write_s=%.1f"
          % (torch.__version__, torch.cuda.get_device_name().replace(" ", "_"), fwd, fl,
             fl / fwd / 1e12, sd, afl / sd / 1e12, 2 * n ** 3 / mm / 1e12, peak, wsec))
    return 0


if __name__ == "__main__":
    sys.exit(main())
