"""umt5.py - the umT5 encoder (Wan2.1's text encoder) in plain PyTorch (WAN_SPEC.md §3).

Pre-norm blocks: x += Attn(RMS(x)); x += FFN(RMS(x)); a final RMS. Attention has no
1/sqrt(d) scaling, adds a per-layer relative-position bias (32 bidirectional buckets,
computed the way the release does, in float32) and masks padded keys with the float
minimum; FFN = fc2(fc1(x) * gelu_tanh(gate(x))); no biases; embedding not scaled.
Weights in a dict under the release names (blocks.i.attn.q.weight, ...). float32
throughout; it must not add a scaling, a mask or a precision the release lacks.
"""
import math
import re

import numpy as np
import torch

import st


class Config:
    def __init__(self, vocab, dim, num_heads, head_dim, ffn_dim, num_layers,
                 num_buckets=32, max_distance=128, eps=1e-6):
        self.vocab, self.dim, self.num_heads, self.head_dim = vocab, dim, num_heads, head_dim
        self.ffn_dim, self.num_layers = ffn_dim, num_layers
        self.num_buckets, self.max_distance, self.eps = num_buckets, max_distance, eps

    @property
    def dim_attn(self):
        return self.num_heads * self.head_dim


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def rms_norm(x, weight, eps):
    return weight * (x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps))


def relative_buckets(lq, lk, num_buckets=32, max_distance=128):
    """[lq, lk] int64 bucket of (key pos - query pos), bidirectional: half the buckets
    per direction (+half when the key is after the query); below half/2 exact, above
    logarithmic up to max_distance, clamped to half-1. The log step is float32, as in
    the release (this decides the bucket at the exact boundaries 16, 32, 64)."""
    rel = torch.arange(lk)[None, :] - torch.arange(lq)[:, None]
    half = num_buckets // 2
    out = (rel > 0).long() * half
    n = rel.abs()
    exact = half // 2
    large = exact + (torch.log(n.float() / exact) / math.log(max_distance / exact)
                     * (half - exact)).long()
    large = torch.min(large, torch.full_like(large, half - 1))
    return out + torch.where(n < exact, n, large)


def attention(x, p, pre, cfg, mask, bias):
    """x [B, L, dim] (already normed); mask [B, L] 1 = real key, 0 = padding, or None;
    bias [1, N, L, L]."""
    b, l, _ = x.shape
    n, d = cfg.num_heads, cfg.head_dim
    q = (x @ p[pre + "q.weight"].t()).view(b, l, n, d)
    k = (x @ p[pre + "k.weight"].t()).view(b, l, n, d)
    v = (x @ p[pre + "v.weight"].t()).view(b, l, n, d)
    logits_bias = bias.expand(b, n, l, l).clone()
    if mask is not None:
        logits_bias.masked_fill_(mask.view(b, 1, 1, l) == 0, torch.finfo(x.dtype).min)
    logits = torch.einsum("binc,bjnc->bnij", q, k) + logits_bias  # no 1/sqrt(d)
    a = torch.softmax(logits.float(), dim=-1).type_as(logits)
    y = torch.einsum("bnij,bjnc->binc", a, v).reshape(b, l, n * d)
    return y @ p[pre + "o.weight"].t()


def ffn(x, p, pre):
    h = (x @ p[pre + "fc1.weight"].t()) * gelu_tanh(x @ p[pre + "gate.0.weight"].t())
    return h @ p[pre + "fc2.weight"].t()


def forward(p, cfg, ids, mask=None, debug=None):
    """ids [B, L] int64, mask [B, L] (1 real, 0 padding) or None -> [B, L, dim] float32.
    Rows at padded positions are computed too (their keys are masked like all others)
    but mean nothing; callers keep the first len rows of each sequence."""
    x = p["token_embedding.weight"][ids]
    if debug is not None:
        debug["embed"] = x
    l = ids.shape[1]
    bk = relative_buckets(l, l, cfg.num_buckets, cfg.max_distance)
    for i in range(cfg.num_layers):
        pre = "blocks.%d." % i
        bias = p[pre + "pos_embedding.embedding.weight"][bk].permute(2, 0, 1).unsqueeze(0)
        x = x + attention(rms_norm(x, p[pre + "norm1.weight"], cfg.eps), p, pre + "attn.", cfg, mask, bias)
        x = x + ffn(rms_norm(x, p[pre + "norm2.weight"], cfg.eps), p, pre + "ffn.")
        if debug is not None:
            debug["block_%d" % i] = x
    return rms_norm(x, p["norm.weight"], cfg.eps)


def param_shapes(cfg):
    s = {"token_embedding.weight": (cfg.vocab, cfg.dim)}
    for i in range(cfg.num_layers):
        pre = "blocks.%d." % i
        s[pre + "norm1.weight"] = (cfg.dim,)
        for w in "qkv":
            s[pre + "attn.%s.weight" % w] = (cfg.dim_attn, cfg.dim)
        s[pre + "attn.o.weight"] = (cfg.dim, cfg.dim_attn)
        s[pre + "norm2.weight"] = (cfg.dim,)
        s[pre + "ffn.gate.0.weight"] = (cfg.ffn_dim, cfg.dim)
        s[pre + "ffn.fc1.weight"] = (cfg.ffn_dim, cfg.dim)
        s[pre + "ffn.fc2.weight"] = (cfg.dim, cfg.ffn_dim)
        s[pre + "pos_embedding.embedding.weight"] = (cfg.num_buckets, cfg.num_heads)
    s["norm.weight"] = (cfg.dim,)
    return s


def random_params(cfg, seed):
    """All parameters random: embedding N(0,1); norm weights 1 + N(0, 0.3^2); q, k
    scaled so unscaled logits are O(1) (q N(0, 1/(dim*head_dim)), k N(0, 1/dim)); v, o,
    FFN N(0, 1/fan_in); position tables N(0, 1) so the bias visibly shapes attention."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, shape in param_shapes(cfg).items():
        r = torch.randn(*shape, generator=g, dtype=torch.float32)
        if name == "token_embedding.weight" or name.endswith("pos_embedding.embedding.weight"):
            v = r
        elif re.search(r"norm\d?\.weight$", name):
            v = 1.0 + 0.3 * r
        elif name.endswith("attn.q.weight"):
            v = r / math.sqrt(cfg.dim * cfg.head_dim)
        else:
            v = r / math.sqrt(shape[1])
        out[name] = v
    return out


def load(path):
    """A safetensors file -> (params torch f32, Config): dims from the shapes, heads
    from the position table [buckets, heads]."""
    raw, _ = st.load(path, as_f32=True)
    p = {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in raw.items()}
    vocab, dim = p["token_embedding.weight"].shape
    buckets, heads = p["blocks.0.pos_embedding.embedding.weight"].shape
    layers = sum(1 for k in p if re.match(r"^blocks\.\d+\.norm1\.weight$", k))
    cfg = Config(vocab=vocab, dim=dim, num_heads=heads,
                 head_dim=p["blocks.0.attn.q.weight"].shape[0] // heads,
                 ffn_dim=p["blocks.0.ffn.fc1.weight"].shape[0], num_layers=layers,
                 num_buckets=buckets)
    return p, cfg
