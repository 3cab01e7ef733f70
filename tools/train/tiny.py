"""tiny.py - reel-tiny's model definitions for training: sizes, inits, tokenization,
and a DiT forward that equals tools/reference/wan_dit.forward but is cheap to train.

The DiT is Wan2.1's (wan_dit.py, same step functions); the only difference is how the
cross-attention sees the 512-row text context: rows past the prompt are zero before
text_embedding, so they all become one constant vector c, and attending (512 - L) equal
keys equals attending one key c whose logit gets + log(512 - L). That is exact math,
so the trained weights run unchanged on the reference and on the C engine
(check_equal() verifies it). The text encoder is umt5.py's forward (trained jointly).
Never change a step here without changing the reference: they must stay one function.
"""
import math

import torch
import torch.nn.functional as F

import common  # noqa: F401  (puts tools/reference on the path)
import umt5
import wan_dit as wd

T5_CFG = dict(dim=128, num_heads=2, head_dim=64, ffn_dim=256, num_layers=2)
DIT_CFG = dict(dim=128, ffn_dim=256, num_heads=1, num_layers=3)
EOS = 1


def t5_config(vocab):
    return umt5.Config(vocab=vocab, **T5_CFG)


def dit_config():
    return wd.Config(text_dim=T5_CFG["dim"], text_len=512, **DIT_CFG)


def t5_init(cfg, seed):
    """T5-style init: embedding N(0, 1), norms 1, q N(0, 1/(dim*head_dim)) (no logit
    scaling in umT5), others N(0, 1/fan_in), position tables N(0, 0.1^2)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, shape in umt5.param_shapes(cfg).items():
        r = torch.randn(*shape, generator=g)
        if name == "token_embedding.weight":
            v = r
        elif name.endswith("pos_embedding.embedding.weight"):
            v = 0.1 * r
        elif "norm" in name:
            v = torch.ones(shape)
        elif name.endswith("attn.q.weight"):
            v = r / math.sqrt(cfg.dim * cfg.head_dim)
        else:
            v = r / math.sqrt(shape[1])
        out[name] = v
    return out


def dit_init(cfg, seed):
    """adaLN-zero style: linears N(0, 1/fan_in), biases 0, norms 1/0, modulation tables
    N(0, 1/dim), time_projection and the head's linear zero (so every block starts as
    the identity and the output as 0)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, shape in wd.param_shapes(cfg).items():
        r = torch.randn(*shape, generator=g)
        if name.endswith("modulation"):
            v = r / math.sqrt(cfg.dim)
        elif name.endswith("norm3.weight") or "norm_q" in name or "norm_k" in name:
            v = torch.ones(shape)
        elif name.endswith(".bias"):
            v = torch.zeros(shape)
        elif name.startswith("time_projection") or name.startswith("head.head"):
            v = torch.zeros(shape)
        else:
            v = r / math.sqrt(int(torch.tensor(shape[1:]).prod()))
        out[name] = v
    return out


def tokenize(sp, text):
    """Wan's ids for a prompt (the captions need no cleaning): pieces + </s>."""
    return sp.encode(text) + [EOS]


def encode_text(p5, cfg5, id_lists):
    """umT5 over a batch of id lists -> (ctx [B, Lmax, dim] with rows past each length
    zeroed, lengths)."""
    lens = [len(x) for x in id_lists]
    lmax = max(lens)
    ids = torch.zeros(len(id_lists), lmax, dtype=torch.long)
    mask = torch.zeros(len(id_lists), lmax, dtype=torch.long)
    for i, x in enumerate(id_lists):
        ids[i, :len(x)] = torch.tensor(x)
        mask[i, :len(x)] = 1
    out = umt5.forward(p5, cfg5, ids, mask)
    return out * mask[:, :, None].float(), lens


def _cross(x, p, pre, cfg, ctx_k, ctx_v, kbias):
    b, t, dim = x.shape
    hc = wd.layer_norm(x, cfg.eps, p[pre + "norm3.weight"], p[pre + "norm3.bias"])
    q = wd.rms_norm(wd.linear(hc, p, pre + "cross_attn.q"), p[pre + "cross_attn.norm_q.weight"], cfg.eps)
    k = wd.rms_norm(wd.linear(ctx_k, p, pre + "cross_attn.k"), p[pre + "cross_attn.norm_k.weight"], cfg.eps)
    v = wd.linear(ctx_v, p, pre + "cross_attn.v")
    n, d = cfg.num_heads, cfg.head_dim
    qh = q.view(b, t, n, d).transpose(1, 2).contiguous()
    kh = k.view(b, -1, n, d).transpose(1, 2).contiguous()
    vh = v.view(b, -1, n, d).transpose(1, 2).contiguous()
    logits = qh @ kh.transpose(-1, -2) / math.sqrt(d) + kbias[:, None, None, :]
    a = (torch.softmax(logits, -1) @ vh).transpose(1, 2).reshape(b, t, n * d)
    return x + wd.linear(a, p, pre + "cross_attn.o")


def _self_ffn(x, p, pre, cfg, e0, angles):
    b, t, dim = x.shape
    n, d, eps = cfg.num_heads, cfg.head_dim, cfg.eps
    m = p[pre + "modulation"] + e0
    hs = wd.layer_norm(x, eps) * (1 + m[:, 1:2]) + m[:, 0:1]
    q = wd.rms_norm(wd.linear(hs, p, pre + "self_attn.q"), p[pre + "self_attn.norm_q.weight"], eps)
    k = wd.rms_norm(wd.linear(hs, p, pre + "self_attn.k"), p[pre + "self_attn.norm_k.weight"], eps)
    v = wd.linear(hs, p, pre + "self_attn.v")
    q = wd.rope_apply(q.view(b, t, n, d), angles).transpose(1, 2).contiguous()
    k = wd.rope_apply(k.view(b, t, n, d), angles).transpose(1, 2).contiguous()
    vh = v.view(b, t, n, d).transpose(1, 2).contiguous()
    a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d), -1) @ vh
    x = x + wd.linear(a.transpose(1, 2).reshape(b, t, n * d), p, pre + "self_attn.o") * m[:, 2:3]
    return x, m


def forward(p, cfg, x, t, ctx, lens):
    """= wan_dit.forward(p, cfg, x, t, ctx[i, :lens[i]] zero-padded to text_len), batched."""
    b = x.shape[0]
    lmax = ctx.shape[1]
    xp, grid = wd.patchify(x, cfg)
    tok = xp @ p["patch_embedding.weight"].reshape(cfg.dim, -1).t() + p["patch_embedding.bias"]
    s = wd.time_sinusoid(cfg.freq_dim, t).to(x.dtype)
    e = wd.linear(F.silu(wd.linear(s, p, "time_embedding.0")), p, "time_embedding.2")
    e0 = wd.linear(F.silu(e), p, "time_projection.1").view(b, 6, cfg.dim)
    full = torch.cat([ctx, ctx.new_zeros(b, 1, ctx.shape[2])], 1)  # + one zero (pad) row
    c = wd.linear(wd.gelu_tanh(wd.linear(full, p, "text_embedding.0")), p, "text_embedding.2")
    assert lmax < cfg.text_len
    kbias = torch.zeros(b, lmax + 1)
    kbias[:, lmax] = math.log(cfg.text_len - lmax)
    angles = wd.rope_angles(cfg.head_dim, *grid)
    xs = tok
    for i in range(cfg.num_layers):
        pre = "blocks.%d." % i
        xs, m = _self_ffn(xs, p, pre, cfg, e0, angles)
        xs = _cross(xs, p, pre, cfg, c, c, kbias)
        hf = wd.layer_norm(xs, cfg.eps) * (1 + m[:, 4:5]) + m[:, 3:4]
        xs = xs + wd.linear(wd.gelu_tanh(wd.linear(hf, p, pre + "ffn.0")), p, pre + "ffn.2") * m[:, 5:6]
    mod = p["head.modulation"] + e[:, None, :]
    y = wd.linear(wd.layer_norm(xs, cfg.eps) * (1 + mod[:, 1:2]) + mod[:, 0:1], p, "head.head")
    return wd.unpatchify(y, grid, cfg)


def check_equal(p, cfg, p5, cfg5, sp, seed=0):
    """Max |difference| between forward() and wan_dit.forward on two prompts."""
    g = torch.Generator().manual_seed(seed)
    prompts = ["a red circle moves to the right on a black background", ""]
    ctx, lens = encode_text(p5, cfg5, [tokenize(sp, s) for s in prompts])
    x = torch.randn(2, 16, 5, 8, 8, generator=g)
    t = torch.tensor([900.0, 250.0])
    with torch.no_grad():
        a = forward(p, cfg, x, t, ctx, lens)
        worst = 0.0
        for i in range(2):
            r = wd.forward(p, cfg, x[i:i + 1], t[i:i + 1], ctx[i:i + 1, :lens[i]])
            worst = max(worst, (r - a[i:i + 1]).abs().max().item())
    return worst
