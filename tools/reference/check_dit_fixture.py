"""check_dit_fixture.py - re-derives the DiT fixture two ways, to catch the reference's
own mistakes, and shows which Wan2.1 details the fixture can tell apart.

1. Re-runs the reference on tests/fixtures/dit/official + io.safetensors: v must match.
2. Second derivations of intermediates: patchify as a Conv3d, the time sinusoid in
   numpy, RoPE as complex multiplication by polar(1, angle) (Wan2.1's own formulation),
   unpatchify by an explicit index loop; and the whole forward in float64.
3. Sensitivity: the NMSE of v when one detail is done the wrong way (no text padding,
   per-head q/k RMSNorm, sin-first sinusoid, ...). Each must be far above the 1e-6
   parity bound, or the fixture could not catch that mistake.
It only reads the fixtures and never writes anything.
Usage: /usr/bin/python3 tools/reference/check_dit_fixture.py [FIXTURE_DIR]
"""
import contextlib
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402
import wan_dit as W  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FAILS = []


def nmse(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(((a - b) ** 2).sum() / (b ** 2).sum())


def report(what, value, ok):
    print("%-58s %-12.3e %s" % (what, value, "ok" if ok else "FAIL"))
    if not ok:
        FAILS.append(what)


@contextlib.contextmanager
def patched(**repl):
    old = {k: getattr(W, k) for k in repl}
    for k, v in repl.items():
        setattr(W, k, v)
    try:
        yield
    finally:
        for k, v in old.items():
            setattr(W, k, v)


def main():
    fx = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "tests", "fixtures", "dit"))
    torch.set_num_threads(1)
    p, cfg, _ = W.load_model(os.path.join(fx, "official"))
    io = {k: torch.from_numpy(v) for k, v in st.load(os.path.join(fx, "io.safetensors"))[0].items()}
    dbg = st.load(os.path.join(fx, "debug.safetensors"))[0]
    x, t, ctx, v = io["x"], io["t"], io["context"], io["v"].numpy()

    def run(params=p, cf=cfg, tt=t, cc=ctx):
        with torch.no_grad():
            return W.forward(params, cf, x, tt, cc).numpy()

    print("== 1. the fixture reproduces")
    report("forward(official) vs io.v (nmse)", nmse(run(), v), nmse(run(), v) == 0.0)

    print("== 2. second derivations")
    tok = F.conv3d(x, p["patch_embedding.weight"], p["patch_embedding.bias"],
                   stride=cfg.patch_size).flatten(2).transpose(1, 2)
    report("patch_tokens: Conv3d vs reshape+GEMM", nmse(tok, dbg["patch_tokens"]), nmse(tok, dbg["patch_tokens"]) < 1e-12)

    half = cfg.freq_dim // 2
    ang = t.numpy().astype(np.float64)[:, None] * 10000.0 ** (-np.arange(half) / half)[None]
    sino = np.concatenate([np.cos(ang), np.sin(ang)], 1).astype(np.float32)
    report("time_sinusoid: numpy float64 vs torch", float(np.abs(sino - dbg["time_sinusoid"]).max()),
           np.array_equal(sino, dbg["time_sinusoid"]))

    f, h, w = (x.shape[2] // cfg.patch_size[0], x.shape[3] // cfg.patch_size[1], x.shape[4] // cfg.patch_size[2])
    d = cfg.head_dim
    c = d // 2
    sizes = [c - 2 * (c // 3), c // 3, c // 3]  # Wan2.1's split of the pair axis
    tabs = [torch.outer(torch.arange(1024, dtype=torch.float64),
                        1.0 / torch.pow(10000.0, torch.arange(0, dd, 2, dtype=torch.float64) / dd))
            for dd in W.rope_axis_dims(d)]
    assert [tb.shape[1] for tb in tabs] == sizes, (sizes, [tb.shape[1] for tb in tabs])
    full = torch.cat([tabs[0][:f].view(f, 1, 1, -1).expand(f, h, w, -1),
                      tabs[1][:h].view(1, h, 1, -1).expand(f, h, w, -1),
                      tabs[2][:w].view(1, 1, w, -1).expand(f, h, w, -1)], -1).reshape(f * h * w, -1)
    report("rope_angles: 1024-row tables sliced vs direct", float((full - torch.from_numpy(dbg["rope_angles"])).abs().max()),
           torch.equal(full, torch.from_numpy(dbg["rope_angles"])))
    q = torch.randn(2, f * h * w, cfg.num_heads, d)
    rot = W.rope_apply(q, full)
    cq = torch.view_as_complex(q.to(torch.float64).reshape(2, f * h * w, cfg.num_heads, -1, 2))
    cr = torch.view_as_real(cq * torch.polar(torch.ones_like(full), full)[None, :, None, :]).flatten(3).float()
    report("RoPE: explicit rotation vs complex multiply (max abs)", float((rot - cr).abs().max()),
           float((rot - cr).abs().max()) < 1e-6)

    y = torch.from_numpy(dbg["head_out"])
    un = W.unpatchify(y, (f, h, w), cfg).numpy()
    ref = np.zeros_like(un)
    pt, ph, pw = cfg.patch_size
    yn = y.numpy()
    for fi in range(f):
        for hi in range(h):
            for wi in range(w):
                tk = (fi * h + hi) * w + wi
                for kt in range(pt):
                    for kh in range(ph):
                        for kw in range(pw):
                            for ch in range(cfg.out_dim):
                                ref[:, ch, fi * pt + kt, hi * ph + kh, wi * pw + kw] = \
                                    yn[:, tk, ((kt * ph + kh) * pw + kw) * cfg.out_dim + ch]
    report("unpatchify: index loop vs permute", nmse(un, ref), np.array_equal(un, ref))
    report("unpatchify(head_out) vs io.v", nmse(un, v), np.array_equal(un, v))

    p64 = {k: t_.double() for k, t_ in p.items()}
    with torch.no_grad():
        v64 = W.forward(p64, cfg, x.double(), t, ctx.double()).numpy()
    report("float64 forward vs float32 fixture (f32 error floor)", nmse(v, v64), nmse(v, v64) < 1e-9)

    print("== 3. mistakes the fixture catches (nmse of v, must be >> 1e-6)")
    mistakes = {}
    mistakes["context not padded to text_len"] = run(cf=_with(cfg, text_len=ctx.shape[1]))

    def rms_per_head(xx, wt, eps):
        n = cfg.num_heads
        xs = xx.view(*xx.shape[:-1], n, -1)
        xs = xs * torch.rsqrt(xs.pow(2).mean(-1, keepdim=True) + eps)
        return xs.reshape(xx.shape) * wt
    with patched(rms_norm=rms_per_head):
        mistakes["q/k RMSNorm per head, not over full dim"] = run()

    def sin_first(fd, tt):
        s = W.__dict__["_orig_sinusoid"](fd, tt)
        return torch.cat([s[:, fd // 2:], s[:, :fd // 2]], 1)
    W._orig_sinusoid = W.time_sinusoid
    with patched(time_sinusoid=sin_first):
        mistakes["sinusoid sin half first"] = run()
    mistakes["t truncated to an integer"] = run(tt=torch.floor(t))

    def rope_halves(xx, angles):  # rotate-half pairing (k, k + D/2) instead of (2k, 2k+1)
        dd = xx.shape[-1] // 2
        xd = xx.double()
        a, b = xd[..., :dd], xd[..., dd:]
        cs, sn = torch.cos(angles)[None, :, None], torch.sin(angles)[None, :, None]
        return torch.cat([a * cs - b * sn, a * sn + b * cs], -1).float()
    with patched(rope_apply=rope_halves):
        mistakes["RoPE pairs (k, k+64) instead of (2k, 2k+1)"] = run()

    def angles_hw_swapped(hd, ff, hh, ww):
        a = W.__dict__["_orig_angles"](hd, ff, ww, hh)  # tables built for a w x h grid
        return a.view(ff, ww, hh, -1).transpose(1, 2).reshape(ff * hh * ww, -1)
    W._orig_angles = W.rope_angles
    with patched(rope_angles=lambda hd, ff, hh, ww: _split_angles(W._orig_angles, hd, ff, hh, ww, (21, 21, 22))):
        mistakes["RoPE split 21/21/22 instead of 22/21/21"] = run()
    with patched(rope_angles=angles_hw_swapped):
        mistakes["RoPE height/width positions swapped"] = run()
    with patched(rope_angles=lambda hd, ff, hh, ww: torch.zeros(ff * hh * ww, hd // 2, dtype=torch.float64)):
        mistakes["no RoPE"] = run()

    pm = dict(p)
    for i in range(cfg.num_layers):
        mm = p["blocks.%d.modulation" % i].clone()
        pm["blocks.%d.modulation" % i] = mm[:, [1, 0, 2, 4, 3, 5]]
    mistakes["modulation shift/scale swapped (param side)"] = run(params=pm)
    pm = dict(p)
    pm["head.modulation"] = p["head.modulation"][:, [1, 0]]
    mistakes["head shift/scale swapped"] = run(params=pm)
    pm = dict(p)
    for i in range(cfg.num_layers):
        pm["blocks.%d.norm3.weight" % i] = torch.ones(cfg.dim)
        pm["blocks.%d.norm3.bias" % i] = torch.zeros(cfg.dim)
    mistakes["norm3 without affine"] = run(params=pm)
    with patched(gelu_tanh=lambda z: F.gelu(z)):
        mistakes["exact (erf) GELU instead of tanh"] = run()
    with patched(unpatchify=lambda yy, g, cf: _unpatchify_like_input(yy, g, cf)):
        mistakes["unpatchify with the patchify order (c slowest)"] = run()
    mistakes["eps 1e-5 instead of 1e-6"] = run(cf=_with(cfg, eps=1e-5))

    head_e0 = _head_with(lambda e, e0: F.silu(e))
    with patched(forward=head_e0):
        mistakes["head modulation with SiLU(e)"] = run()
    below = {"exact (erf) GELU instead of tanh", "eps 1e-5 instead of 1e-6"}
    for what, got in mistakes.items():
        m = nmse(got, v)
        if what in below:  # inherent: see the probes below
            print("%-58s %-12.3e below the bound: use the probes" % ("  " + what, m))
        else:
            report("  " + what, m, m > 1e-4)

    print("== 4. op probes (debug.safetensors) for what v cannot show")
    gx, gy = torch.from_numpy(dbg["probe_gelu_x"]), dbg["probe_gelu_tanh"]
    gt = 0.5 * gx.double() * (1 + torch.tanh(math.sqrt(2 / math.pi) * (gx.double() + 0.044715 * gx.double() ** 3)))
    report("probe_gelu_tanh vs the tanh formula in f64 (max abs)", float(np.abs(gt.numpy() - gy).max()),
           float(np.abs(gt.numpy() - gy).max()) < 1e-6)
    erf = F.gelu(gx).numpy()
    report("  erf GELU differs from the probe by (max abs)", float(np.abs(erf - gy).max()),
           float(np.abs(erf - gy).max()) > 1e-4)
    nx = dbg["probe_norm_x"].astype(np.float64)
    for key, fn in (("probe_layernorm", lambda a, e: (a - a.mean(-1, keepdims=True)) / np.sqrt(a.var(-1, keepdims=True) + e)),
                    ("probe_rmsnorm", lambda a, e: a / np.sqrt((a * a).mean(-1, keepdims=True) + e))):
        got = fn(nx, cfg.eps)
        report("%s vs numpy f64 (max abs)" % key, float(np.abs(got - dbg[key]).max()),
               float(np.abs(got - dbg[key]).max()) < 1e-4)
        wrong = fn(nx, 1e-5)
        report("  eps 1e-5 differs from %s by (max abs)" % key, float(np.abs(wrong - dbg[key]).max()),
               float(np.abs(wrong - dbg[key]).max()) > 1e-2)
    if FAILS:
        print("FAILED: %s" % "; ".join(FAILS))
        sys.exit(1)
    print("all checks passed")


def _with(cfg, **kw):
    c = W.Config(**{k: getattr(cfg, k) for k in ("dim", "ffn_dim", "num_heads", "num_layers", "freq_dim",
                                                  "in_dim", "out_dim", "text_len", "text_dim", "eps",
                                                  "patch_size")})
    for k, val in kw.items():
        setattr(c, k, val)
    return c


def _split_angles(orig, hd, f, h, w, pairs):
    """RoPE angles with a different pair split (frame, height, width)."""
    parts = []
    for n, npair, shape in zip((f, h, w), pairs, ((f, 1, 1), (1, h, 1), (1, 1, w))):
        dd = 2 * npair
        inv = 1.0 / torch.pow(torch.tensor(10000.0, dtype=torch.float64),
                              torch.arange(0, dd, 2, dtype=torch.float64) / dd)
        ang = torch.arange(n, dtype=torch.float64)[:, None] * inv[None, :]
        parts.append(ang.view(*shape, npair).expand(f, h, w, npair))
    return torch.cat(parts, -1).reshape(f * h * w, hd // 2)


def _unpatchify_like_input(y, grid, cfg):
    b = y.shape[0]
    f, h, w = grid
    pt, ph, pw = cfg.patch_size
    c = y.shape[-1] // (pt * ph * pw)
    y = y.reshape(b, f, h, w, c, pt, ph, pw).permute(0, 4, 1, 5, 2, 6, 3, 7)
    return y.reshape(b, c, f * pt, h * ph, w * pw)


def _head_with(head_input):
    """A forward whose head modulation uses head_input(e, e0) instead of e."""
    orig = W.forward

    def fwd(p, cfg, x, t, context, debug=None):
        dbg = {}
        orig(p, cfg, x, t, context, debug=dbg)
        xs = dbg["block_%d" % (cfg.num_layers - 1)]
        mod = p["head.modulation"] + head_input(dbg["e"], dbg["e0"])[:, None, :]
        y = W.linear(W.layer_norm(xs, cfg.eps) * (1 + mod[:, 1:2]) + mod[:, 0:1], p, "head.head")
        f, h, w = x.shape[2] // cfg.patch_size[0], x.shape[3] // cfg.patch_size[1], x.shape[4] // cfg.patch_size[2]
        return W.unpatchify(y, (f, h, w), cfg)
    return fwd


if __name__ == "__main__":
    main()
