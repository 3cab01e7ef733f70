"""wan_dit.py - the Wan2.1 text-to-video DiT forward in plain PyTorch (WAN_SPEC.md §1).

The reference the C engine is checked against: one readable function per step, the
weights in a dict under the official tensor names, float32 math except where Wan2.1
itself uses float64 (the timestep sinusoid, the RoPE tables and the RoPE rotation).
It also loads the three folder forms users have (official / sharded, a prefixed
single-file repack, the diffusers naming). It must never "improve" on Wan2.1: no
masks Wan does not apply, no precision Wan does not use, no re-ordered modulation.
Run with Debian's /usr/bin/python3 (torch 1.13).
"""
import glob
import json
import math
import os
import re

import numpy as np
import torch
import torch.nn.functional as F

import st

REPACK_PREFIX = "model.diffusion_model."
HEAD_DIM_WHEN_INFERRED = 128  # every Wan2.1 model has head_dim 128
ATTN_ROWS = 256  # query rows per attention block (speed only: rows are independent)


class Config:
    """DiT hyper-parameters (official names)."""

    def __init__(self, dim, ffn_dim, num_heads, num_layers, freq_dim=256, in_dim=16,
                 out_dim=16, text_len=512, text_dim=4096, eps=1e-6, patch_size=(1, 2, 2)):
        assert dim % num_heads == 0 and (dim // num_heads) % 2 == 0
        self.dim, self.ffn_dim, self.num_heads, self.num_layers = dim, ffn_dim, num_heads, num_layers
        self.freq_dim, self.in_dim, self.out_dim = freq_dim, in_dim, out_dim
        self.text_len, self.text_dim, self.eps = text_len, text_dim, eps
        self.patch_size = tuple(patch_size)

    @property
    def head_dim(self):
        return self.dim // self.num_heads

    def __repr__(self):
        return "Config(%s)" % ", ".join("%s=%r" % kv for kv in sorted(vars(self).items()))


# ---- the steps -------------------------------------------------------------------


def linear(x, params, name):
    """x @ W^T + b with W [out, in] from params[name + '.weight'] (bias if present)."""
    return F.linear(x, params[name + ".weight"], params.get(name + ".bias"))


def gelu_tanh(x):
    return F.gelu(x, approximate="tanh")


def layer_norm(x, eps, weight=None, bias=None):
    """LayerNorm over the last dim; affine only when weight/bias are given."""
    return F.layer_norm(x, (x.shape[-1],), weight, bias, eps)


def rms_norm(x, weight, eps):
    """x * rsqrt(mean(x^2) + eps) * w over the last (FULL model) dim."""
    return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps) * weight


def time_sinusoid(freq_dim, t):
    """[B] timesteps (as given, not rounded) -> [B, freq_dim] float64:
    [cos(t*w_i), sin(t*w_i)], w_i = 10000^(-i/half), cos half first."""
    half = freq_dim // 2
    pos = t.to(torch.float64)
    w = torch.pow(torch.tensor(10000.0, dtype=torch.float64),
                  -torch.arange(half, dtype=torch.float64) / half)
    ang = pos[:, None] * w[None, :]
    return torch.cat([torch.cos(ang), torch.sin(ang)], dim=1)


def rope_axis_dims(head_dim):
    """Per-axis RoPE dims (frame, height, width): 44, 42, 42 for head_dim 128."""
    d6 = head_dim // 6
    return (head_dim - 4 * d6, 2 * d6, 2 * d6)


def rope_angles(head_dim, f, h, w):
    """float64 [f*h*w, head_dim/2]: angle of pair k at token (fi, hi, wi) in
    f-slowest order. Pairs of the frame axis come first, then height, then width;
    pair j of an axis with dim d turns by pos * 10000^(-2j/d)."""
    parts = []
    for n, d, shape in zip((f, h, w), rope_axis_dims(head_dim),
                           ((f, 1, 1), (1, h, 1), (1, 1, w))):
        inv = 1.0 / torch.pow(torch.tensor(10000.0, dtype=torch.float64),
                              torch.arange(0, d, 2, dtype=torch.float64) / d)
        ang = torch.arange(n, dtype=torch.float64)[:, None] * inv[None, :]  # [n, d/2]
        parts.append(ang.view(*shape, d // 2).expand(f, h, w, d // 2))
    return torch.cat(parts, dim=-1).reshape(f * h * w, head_dim // 2)


def rope_apply(x, angles):
    """x [B, T, N, D] float32; pairs (2k, 2k+1) rotated by angles [T, D/2] in float64,
    result cast back to x's dtype (float32 in Wan2.1)."""
    xd = x.to(torch.float64)
    re_, im = xd[..., 0::2], xd[..., 1::2]
    c = torch.cos(angles)[None, :, None, :]
    s = torch.sin(angles)[None, :, None, :]
    out = torch.stack([re_ * c - im * s, re_ * s + im * c], dim=-1)
    return out.flatten(-2).to(x.dtype)


def attention(q, k, v):
    """q [B, Tq, N, D], k/v [B, Tk, N, D] -> [B, Tq, N*D]; softmax(q k^T / sqrt(D)) v,
    no mask. Computed a block of query rows at a time; each row is exact softmax."""
    b, tq, n, d = q.shape
    qh, kh, vh = (a.transpose(1, 2).contiguous() for a in (q, k, v))  # [B, N, T, D]
    kt = kh.transpose(-1, -2)
    out = torch.empty_like(qh)
    for i in range(0, tq, ATTN_ROWS):  # query rows in blocks: the logits stay in cache
        logits = torch.matmul(qh[:, :, i:i + ATTN_ROWS], kt).mul_(1.0 / math.sqrt(d))
        torch.matmul(torch.softmax(logits, dim=-1), vh, out=out[:, :, i:i + ATTN_ROWS])
    return out.transpose(1, 2).reshape(b, tq, n * d)


def patchify(x, cfg):
    """[B, C, F, H, W] -> ([B, T, C*pt*ph*pw], (f, h, w)); the patch vector is ordered
    (c, kt, kh, kw) with c slowest, tokens f slowest then h then w."""
    b, c, fr, hh, ww = x.shape
    pt, ph, pw = cfg.patch_size
    f, h, w = fr // pt, hh // ph, ww // pw
    assert (f * pt, h * ph, w * pw) == (fr, hh, ww), "latent not divisible by the patch"
    x = x.reshape(b, c, f, pt, h, ph, w, pw).permute(0, 2, 4, 6, 1, 3, 5, 7)
    return x.reshape(b, f * h * w, c * pt * ph * pw), (f, h, w)


def unpatchify(y, grid, cfg):
    """[B, T, pt*ph*pw*C] (channel fastest) -> [B, C, F, H, W]: value
    ((kt*ph+kh)*pw+kw)*C + c goes to out[c, f*pt+kt, h*ph+kh, w*pw+kw]."""
    b = y.shape[0]
    f, h, w = grid
    pt, ph, pw = cfg.patch_size
    c = y.shape[-1] // (pt * ph * pw)
    y = y.reshape(b, f, h, w, pt, ph, pw, c).permute(0, 7, 1, 4, 2, 5, 3, 6)
    return y.reshape(b, c, f * pt, h * ph, w * pw)


def block_forward(x, p, pre, cfg, e0, ctx, angles):
    """One DiT block (WAN_SPEC §1 steps 1-8). x [B,T,dim], e0 [B,6,dim], ctx
    [B,text_len,dim]."""
    b, t, dim = x.shape
    n, d, eps = cfg.num_heads, cfg.head_dim, cfg.eps
    m = p[pre + "modulation"] + e0  # [B, 6, dim]
    shift_sa, scale_sa, gate_sa = m[:, 0:1], m[:, 1:2], m[:, 2:3]
    shift_ff, scale_ff, gate_ff = m[:, 3:4], m[:, 4:5], m[:, 5:6]

    # self-attention
    hs = layer_norm(x, eps) * (1 + scale_sa) + shift_sa
    q = rms_norm(linear(hs, p, pre + "self_attn.q"), p[pre + "self_attn.norm_q.weight"], eps)
    k = rms_norm(linear(hs, p, pre + "self_attn.k"), p[pre + "self_attn.norm_k.weight"], eps)
    v = linear(hs, p, pre + "self_attn.v")
    q = rope_apply(q.view(b, t, n, d), angles)
    k = rope_apply(k.view(b, t, n, d), angles)
    a = attention(q, k, v.view(b, t, n, d))
    x = x + linear(a, p, pre + "self_attn.o") * gate_sa

    # cross-attention (norm3 with affine, no modulation, no gate, no mask)
    hc = layer_norm(x, eps, p[pre + "norm3.weight"], p[pre + "norm3.bias"])
    lc = ctx.shape[1]
    q = rms_norm(linear(hc, p, pre + "cross_attn.q"), p[pre + "cross_attn.norm_q.weight"], eps)
    k = rms_norm(linear(ctx, p, pre + "cross_attn.k"), p[pre + "cross_attn.norm_k.weight"], eps)
    v = linear(ctx, p, pre + "cross_attn.v")
    a = attention(q.view(b, t, n, d), k.view(b, lc, n, d), v.view(b, lc, n, d))
    x = x + linear(a, p, pre + "cross_attn.o")

    # feed-forward
    hf = layer_norm(x, eps) * (1 + scale_ff) + shift_ff
    y = linear(gelu_tanh(linear(hf, p, pre + "ffn.0")), p, pre + "ffn.2")
    return x + y * gate_ff


def forward(p, cfg, x, t, context, debug=None):
    """The DiT forward. p: official name -> float32 tensor; x [B, in_dim, F, H, W];
    t [B] (the timestep value the model receives); context [B, L, text_dim], L <=
    text_len real rows (zero-padded here to text_len, all rows attended).
    Returns v [B, out_dim, F, H, W] float32. debug, if a dict, receives intermediates.
    (Float64 params and inputs give a float64 forward, for checking the f32 error.)"""
    b, l = context.shape[0], context.shape[1]
    if l > cfg.text_len:
        raise ValueError("context has %d rows, more than text_len %d" % (l, cfg.text_len))
    dbg = debug if debug is not None else {}

    xp, grid = patchify(x, cfg)
    w = p["patch_embedding.weight"].reshape(cfg.dim, -1)
    tok = xp @ w.t() + p["patch_embedding.bias"]
    dbg["patch_tokens"] = tok

    s = time_sinusoid(cfg.freq_dim, t).to(x.dtype)
    e = linear(F.silu(linear(s, p, "time_embedding.0")), p, "time_embedding.2")
    e0 = linear(F.silu(e), p, "time_projection.1").view(b, 6, cfg.dim)
    dbg["time_sinusoid"], dbg["e"], dbg["e0"] = s, e, e0

    ctx = torch.zeros(b, cfg.text_len, cfg.text_dim, dtype=x.dtype)
    ctx[:, :l] = context
    ctx = linear(gelu_tanh(linear(ctx, p, "text_embedding.0")), p, "text_embedding.2")
    dbg["text_ctx"] = ctx

    angles = rope_angles(cfg.head_dim, *grid)
    dbg["rope_angles"] = angles
    xs = tok
    for i in range(cfg.num_layers):
        xs = block_forward(xs, p, "blocks.%d." % i, cfg, e0, ctx, angles)
        dbg["block_%d" % i] = xs

    mod = p["head.modulation"] + e[:, None, :]  # [B, 2, dim]: shift, scale
    y = linear(layer_norm(xs, cfg.eps) * (1 + mod[:, 1:2]) + mod[:, 0:1], p, "head.head")
    dbg["head_out"] = y
    return unpatchify(y, grid, cfg)


def flops(cfg, batch, tokens, text_rows=None):
    """Matmul FLOPs of one forward (2 per multiply-add), the count the benches use:
    every linear (patch embedding as a [T, C*pt*ph*pw] x [.., dim] GEMM, the time and
    text embeddings, q/k/v/o, cross q/k/v/o with k/v over text_len rows, FFN, head)
    plus attention QK^T and PV (2 * 2 * Tq * Tk * dim each attention). Norms,
    RoPE, softmax and elementwise work are not counted."""
    d, fd, lc = cfg.dim, cfg.ffn_dim, text_rows or cfg.text_len
    pin = cfg.in_dim * int(np.prod(cfg.patch_size))
    pout = cfg.out_dim * int(np.prod(cfg.patch_size))
    per_seq = 2 * tokens * pin * d + 2 * tokens * d * pout
    per_seq += 2 * (cfg.freq_dim * d + d * d + d * 6 * d)
    per_seq += 2 * lc * (cfg.text_dim * d + d * d)
    per_layer = 2 * tokens * d * d * 4 + 4 * tokens * tokens * d  # self-attn
    per_layer += 2 * tokens * d * d * 2 + 2 * lc * d * d * 2 + 4 * tokens * lc * d  # cross
    per_layer += 2 * tokens * d * fd * 2  # ffn
    return batch * (per_seq + cfg.num_layers * per_layer)


# ---- naming and loading ---------------------------------------------------------

_DIFFUSERS_FIXED = [  # (official, diffusers) name prefixes, whole-component matches
    ("time_embedding.0.", "condition_embedder.time_embedder.linear_1."),
    ("time_embedding.2.", "condition_embedder.time_embedder.linear_2."),
    ("text_embedding.0.", "condition_embedder.text_embedder.linear_1."),
    ("text_embedding.2.", "condition_embedder.text_embedder.linear_2."),
    ("time_projection.1.", "condition_embedder.time_proj."),
    ("head.head.", "proj_out."),
]
_DIFFUSERS_BLOCK = [  # (official, diffusers) inside blocks.N.
    ("modulation", "scale_shift_table"),
    ("self_attn.q.", "attn1.to_q."), ("self_attn.k.", "attn1.to_k."),
    ("self_attn.v.", "attn1.to_v."), ("self_attn.o.", "attn1.to_out.0."),
    ("self_attn.norm_q.", "attn1.norm_q."), ("self_attn.norm_k.", "attn1.norm_k."),
    ("cross_attn.q.", "attn2.to_q."), ("cross_attn.k.", "attn2.to_k."),
    ("cross_attn.v.", "attn2.to_v."), ("cross_attn.o.", "attn2.to_out.0."),
    ("cross_attn.norm_q.", "attn2.norm_q."), ("cross_attn.norm_k.", "attn2.norm_k."),
    ("norm3.", "norm2."),  # the affine cross-attention norm is norm2 in diffusers
    ("ffn.0.", "ffn.net.0.proj."), ("ffn.2.", "ffn.net.2."),
]


def _map_name(name, to_diffusers):
    src, dst = (0, 1) if to_diffusers else (1, 0)
    if name == ("head.modulation", "scale_shift_table")[src]:
        return ("head.modulation", "scale_shift_table")[dst]
    for pair in _DIFFUSERS_FIXED:
        if name.startswith(pair[src]):
            return pair[dst] + name[len(pair[src]):]
    m = re.match(r"^blocks\.(\d+)\.(.*)$", name)
    if m:
        rest = m.group(2)
        for pair in _DIFFUSERS_BLOCK:
            if rest == pair[src] or (pair[src].endswith(".") and rest.startswith(pair[src])):
                return "blocks.%s.%s%s" % (m.group(1), pair[dst], rest[len(pair[src]):])
    if name.startswith("patch_embedding."):
        return name
    raise KeyError("no %s mapping for tensor %r" % ("diffusers" if to_diffusers else "official", name))


def official_to_diffusers(name):
    return _map_name(name, True)


def diffusers_to_official(name):
    return _map_name(name, False)


def config_from_official_json(c):
    return Config(dim=c["dim"], ffn_dim=c["ffn_dim"], num_heads=c["num_heads"],
                  num_layers=c["num_layers"], freq_dim=c.get("freq_dim", 256),
                  in_dim=c.get("in_dim", 16), out_dim=c.get("out_dim", 16),
                  text_len=c.get("text_len", 512), text_dim=c.get("text_dim", 4096),
                  eps=c.get("eps", 1e-6), patch_size=c.get("patch_size", (1, 2, 2)))


def config_from_diffusers_json(c):
    heads, hd = c["num_attention_heads"], c["attention_head_dim"]
    return Config(dim=heads * hd, ffn_dim=c["ffn_dim"], num_heads=heads,
                  num_layers=c["num_layers"], freq_dim=c.get("freq_dim", 256),
                  in_dim=c.get("in_channels", 16), out_dim=c.get("out_channels") or c.get("in_channels", 16),
                  text_len=512, text_dim=c.get("text_dim", 4096), eps=c.get("eps", 1e-6),
                  patch_size=c.get("patch_size", (1, 2, 2)))


def config_from_weights(p):
    """Dims inferred from official-named shapes; head_dim 128, text_len 512, eps 1e-6."""
    pw = p["patch_embedding.weight"]
    dim, in_dim, patch = pw.shape[0], pw.shape[1], tuple(pw.shape[2:])
    layers = sum(1 for k in p if re.match(r"^blocks\.\d+\.modulation$", k))
    return Config(dim=dim, ffn_dim=p["blocks.0.ffn.0.weight"].shape[0],
                  num_heads=dim // HEAD_DIM_WHEN_INFERRED, num_layers=layers,
                  freq_dim=p["time_embedding.0.weight"].shape[1], in_dim=in_dim,
                  out_dim=p["head.head.weight"].shape[0] // int(np.prod(patch)),
                  text_dim=p["text_embedding.0.weight"].shape[1], patch_size=patch)


def _load_tensors(path):
    """A .safetensors file or an index.json -> name -> f32 numpy."""
    if path.endswith(".index.json"):
        with open(path) as f:
            wm = json.load(f)["weight_map"]
        out = {}
        for shard in sorted(set(wm.values())):
            t, _ = st.load(os.path.join(os.path.dirname(path), shard), as_f32=True)
            out.update(t)
        missing = set(wm) - set(out)
        if missing:
            raise KeyError("index names tensors its shards lack: %s" % sorted(missing)[:5])
        return out
    return st.load(path, as_f32=True)[0]


def load_model(path):
    """Any of the three forms -> (params official-named torch f32, Config, form)."""
    if os.path.isdir(path):
        with open(os.path.join(path, "config.json")) as f:
            cj = json.load(f)
        files = glob.glob(os.path.join(path, "*.safetensors.index.json"))
        wpath = files[0] if files else os.path.join(path, "diffusion_pytorch_model.safetensors")
        raw = _load_tensors(wpath)
        if "num_attention_heads" in cj:
            raw = {diffusers_to_official(k): v for k, v in raw.items()}
            cfg, form = config_from_diffusers_json(cj), "diffusers"
        else:
            cfg, form = config_from_official_json(cj), "official"
    else:
        raw = _load_tensors(path)
        raw = {k[len(REPACK_PREFIX):] if k.startswith(REPACK_PREFIX) else k: v for k, v in raw.items()}
        cfg, form = config_from_weights(raw), "repack"
    return {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in raw.items()}, cfg, form


def param_shapes(cfg):
    """Official name -> shape, for every tensor a T2V model holds, in file order."""
    d, pin = cfg.dim, cfg.patch_size
    s = {"patch_embedding.weight": (d, cfg.in_dim) + pin, "patch_embedding.bias": (d,),
         "text_embedding.0.weight": (d, cfg.text_dim), "text_embedding.0.bias": (d,),
         "text_embedding.2.weight": (d, d), "text_embedding.2.bias": (d,),
         "time_embedding.0.weight": (d, cfg.freq_dim), "time_embedding.0.bias": (d,),
         "time_embedding.2.weight": (d, d), "time_embedding.2.bias": (d,),
         "time_projection.1.weight": (6 * d, d), "time_projection.1.bias": (6 * d,)}
    for i in range(cfg.num_layers):
        pre = "blocks.%d." % i
        s[pre + "modulation"] = (1, 6, d)
        for a in ("self_attn", "cross_attn"):
            for w in "qkvo":
                s[pre + a + "." + w + ".weight"] = (d, d)
                s[pre + a + "." + w + ".bias"] = (d,)
            s[pre + a + ".norm_q.weight"] = (d,)
            s[pre + a + ".norm_k.weight"] = (d,)
        s[pre + "norm3.weight"] = (d,)
        s[pre + "norm3.bias"] = (d,)
        s[pre + "ffn.0.weight"] = (cfg.ffn_dim, d)
        s[pre + "ffn.0.bias"] = (cfg.ffn_dim,)
        s[pre + "ffn.2.weight"] = (d, cfg.ffn_dim)
        s[pre + "ffn.2.bias"] = (d,)
    s["head.modulation"] = (1, 2, d)
    s["head.head.weight"] = (cfg.out_dim * int(np.prod(pin)), d)
    s["head.head.bias"] = (cfg.out_dim * int(np.prod(pin)),)
    return s


def random_params(cfg, seed):
    """Every parameter random (norm weights/biases, modulation tables, biases too),
    scaled so activations stay O(1) while every detail stays visible in the output:
    weights N(0, 1/fan_in), biases N(0, 0.1^2), modulation tables N(0, 0.3^2);
    q/k norm weights 2 * (1 + N(0, 0.2^2)) so attention is sharp, not an average;
    norm3 weight 1 + N(0, 0.5^2), bias N(0, 0.3^2); and the q/k projection rows of
    head h scaled by 0.5 + h/(N-1), so the heads differ in size and a per-head q/k
    RMSNorm (wrong: Wan2.1 normalizes over the full dim) gives a different answer."""
    g = torch.Generator().manual_seed(seed)
    n = cfg.num_heads
    head_scale = torch.tensor([0.5 + h / (n - 1) if n > 1 else 1.0 for h in range(n)])
    head_scale = head_scale.repeat_interleave(cfg.head_dim)  # [dim]
    out = {}
    for name, shape in param_shapes(cfg).items():
        r = torch.randn(*shape, generator=g, dtype=torch.float32)
        if name.endswith("modulation"):
            v = 0.3 * r
        elif re.search(r"norm_[qk]\.weight$", name):
            v = 2.0 * (1.0 + 0.2 * r)
        elif name.endswith("norm3.weight"):
            v = 1.0 + 0.5 * r
        elif name.endswith("norm3.bias"):
            v = 0.3 * r
        elif name.endswith(".bias"):
            v = 0.1 * r
        else:
            fan_in = int(np.prod(shape[1:]))
            v = r / math.sqrt(fan_in)
            if name == "time_projection.1.weight":
                v = 0.5 * v  # keeps (1 + scale) and the gates O(1)
        if re.search(r"attn\.[qk]\.(weight|bias)$", name):
            v = v * (head_scale[:, None] if v.dim() == 2 else head_scale)
        out[name] = v
    return out
