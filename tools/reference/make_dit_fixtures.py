"""make_dit_fixtures.py - writes tests/fixtures/dit/ from the reference DiT (wan_dit.py).

Two random models, every parameter randomized (fixed seeds, deterministic output):
MAIN (dim 256, 2 heads of 128, 2 layers) in the official form with float32 weights,
the f32 parity fixture; SMALL (dim 128, 1 head, 2 layers), rounded to bf16 and stored
BF16, written in the three other forms (sharded official, prefixed single-file repack,
diffusers naming), the bf16-weight fixture. Each model has an io file (inputs and the
expected v) and MAIN a debug file of intermediates. After writing, every form is read
back through wan_dit.load_model and must reproduce its expected v bit for bit.
Usage: /usr/bin/python3 tools/reference/make_dit_fixtures.py [OUT_DIR]
"""
import json
import os
import shutil
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402
import wan_dit  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "..", "..", "tests", "fixtures", "dit")

MAIN = wan_dit.Config(dim=256, ffn_dim=512, num_heads=2, num_layers=2)
SMALL = wan_dit.Config(dim=128, ffn_dim=256, num_heads=1, num_layers=2)
MAIN_SEED, SMALL_SEED = 1, 2


def inputs(cfg, seed, b, f, h, w, l, t):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, cfg.in_dim, f, h, w, generator=g)
    ctx = torch.randn(b, l, cfg.text_dim, generator=g)
    return x, torch.tensor(t, dtype=torch.float32), ctx


def probes(cfg):
    """Op-level probes for details too small to show in v at NMSE 1e-6: GELU-tanh vs
    erf GELU (differ by < 1e-3) and the norms' eps (matters only at tiny variance)."""
    gx = torch.linspace(-6.0, 6.0, 241)
    g = torch.Generator().manual_seed(13)
    scales = torch.tensor([1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 0.1, 1.0, 10.0])[:, None]
    nx = torch.randn(8, cfg.dim, generator=g) * scales + 0.5 * scales
    return {"probe_gelu_x": npy(gx), "probe_gelu_tanh": npy(wan_dit.gelu_tanh(gx)),
            "probe_norm_x": npy(nx),
            "probe_layernorm": npy(wan_dit.layer_norm(nx, cfg.eps)),
            "probe_rmsnorm": npy(wan_dit.rms_norm(nx, torch.ones(cfg.dim), cfg.eps))}


def npy(t):
    return np.ascontiguousarray(t.detach().numpy())


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


def official_config_json(cfg, full):
    c = {"_class_name": "WanModel", "_diffusers_version": "0.30.0", "dim": cfg.dim,
         "eps": cfg.eps, "ffn_dim": cfg.ffn_dim, "freq_dim": cfg.freq_dim,
         "in_dim": cfg.in_dim, "model_type": "t2v", "num_heads": cfg.num_heads,
         "num_layers": cfg.num_layers, "out_dim": cfg.out_dim, "text_len": cfg.text_len}
    if full:  # the keys WanModel also accepts; the public release omits them
        c.update({"patch_size": list(cfg.patch_size), "window_size": [-1, -1],
                  "qk_norm": True, "cross_attn_norm": True})
    return c


def diffusers_config_json(cfg):
    return {"_class_name": "WanTransformer3DModel", "_diffusers_version": "0.33.0",
            "added_kv_proj_dim": None, "attention_head_dim": cfg.head_dim,
            "cross_attn_norm": True, "eps": cfg.eps, "ffn_dim": cfg.ffn_dim,
            "freq_dim": cfg.freq_dim, "image_dim": None, "in_channels": cfg.in_dim,
            "num_attention_heads": cfg.num_heads, "num_layers": cfg.num_layers,
            "out_channels": cfg.out_dim, "patch_size": list(cfg.patch_size),
            "pos_embed_seq_len": None, "qk_norm": "rms_norm_across_heads",
            "rope_max_seq_len": 1024, "text_dim": cfg.text_dim}


def main():
    out = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_OUT)
    torch.set_num_threads(1)  # the same summation order on every machine we control
    for sub in ("official", "small_sharded", "small_repack", "small_diffusers"):
        shutil.rmtree(os.path.join(out, sub), ignore_errors=True)
        os.makedirs(os.path.join(out, sub))
    meta = {"generator": "tools/reference/make_dit_fixtures.py"}

    # ---- MAIN: official form, f32 weights --------------------------------------
    p = wan_dit.random_params(MAIN, MAIN_SEED)
    st.save(os.path.join(out, "official", "diffusion_pytorch_model.safetensors"),
            {k: npy(v) for k, v in p.items()}, {"format": "pt", **meta})
    write_json(os.path.join(out, "official", "config.json"), official_config_json(MAIN, True))
    x, t, ctx = inputs(MAIN, 11, b=2, f=3, h=12, w=16, l=7, t=[999.0, 437.5])
    dbg = {}
    with torch.no_grad():
        v = wan_dit.forward(p, MAIN, x, t, ctx, debug=dbg)
    st.save(os.path.join(out, "io.safetensors"),
            {"x": npy(x), "t": npy(t), "context": npy(ctx), "v": npy(v)}, meta)
    l = ctx.shape[1]
    st.save(os.path.join(out, "debug.safetensors"), {
        "patch_tokens": npy(dbg["patch_tokens"]),
        "time_sinusoid": npy(dbg["time_sinusoid"]),
        "e": npy(dbg["e"]), "e0": npy(dbg["e0"]),
        "text_ctx_rows": npy(dbg["text_ctx"][:, :l + 2]),
        "rope_angles": npy(dbg["rope_angles"]),
        "block_0": npy(dbg["block_0"]),
        "head_out": npy(dbg["head_out"]),
        **probes(MAIN),
    }, meta)

    # ---- SMALL: bf16 weights in three forms --------------------------------------
    ps = wan_dit.random_params(SMALL, SMALL_SEED)
    bits = {k: st.bf16_bits(npy(v)) for k, v in ps.items()}
    ps = {k: torch.from_numpy(st.bf16_to_f32(b)) for k, b in bits.items()}
    xs, ts, cs = inputs(SMALL, 12, b=2, f=2, h=8, w=12, l=5, t=[0.0, 612.25])
    with torch.no_grad():
        vs = wan_dit.forward(ps, SMALL, xs, ts, cs)
    st.save(os.path.join(out, "io_small.safetensors"),
            {"x": npy(xs), "t": npy(ts), "context": npy(cs), "v": npy(vs)}, meta)

    names = list(bits)  # sharded official: the first half of the names in shard 1
    shard_names = ["diffusion_pytorch_model-00001-of-00002.safetensors",
                   "diffusion_pytorch_model-00002-of-00002.safetensors"]
    halves = [names[:len(names) // 2], names[len(names) // 2:]]
    wmap = {}
    for fname, part in zip(shard_names, halves):
        st.save(os.path.join(out, "small_sharded", fname),
                {k: st.BF16(bits[k]) for k in part}, {"format": "pt", **meta})
        wmap.update({k: fname for k in part})
    total = sum(b.nbytes for b in bits.values())
    write_json(os.path.join(out, "small_sharded", "diffusion_pytorch_model.safetensors.index.json"),
               {"metadata": {"total_size": total}, "weight_map": wmap})
    write_json(os.path.join(out, "small_sharded", "config.json"), official_config_json(SMALL, False))

    st.save(os.path.join(out, "small_repack", "wan2.1_t2v_tiny_bf16.safetensors"),
            {wan_dit.REPACK_PREFIX + k: st.BF16(b) for k, b in bits.items()}, meta)

    st.save(os.path.join(out, "small_diffusers", "diffusion_pytorch_model.safetensors"),
            {wan_dit.official_to_diffusers(k): st.BF16(b) for k, b in bits.items()},
            {"format": "pt", **meta})
    write_json(os.path.join(out, "small_diffusers", "config.json"), diffusers_config_json(SMALL))

    # ---- read every form back and check it reproduces its expected v ----------------
    checks = [("official", v, x, t, ctx),
              ("small_sharded", vs, xs, ts, cs),
              ("small_repack/wan2.1_t2v_tiny_bf16.safetensors", vs, xs, ts, cs),
              ("small_diffusers", vs, xs, ts, cs)]
    for sub, want, xi, ti, ci in checks:
        pl, cfg, form = wan_dit.load_model(os.path.join(out, sub))
        with torch.no_grad():
            got = wan_dit.forward(pl, cfg, xi, ti, ci)
        ok = torch.equal(got, want)
        print("%-50s form=%-9s %s" % (sub, form, "ok" if ok else "MISMATCH"))
        if not ok:
            sys.exit(1)
    for root, _, files in sorted(os.walk(out)):
        for fn in sorted(files):
            fp = os.path.join(root, fn)
            print("%9d  %s" % (os.path.getsize(fp), os.path.relpath(fp, out)))


if __name__ == "__main__":
    main()
