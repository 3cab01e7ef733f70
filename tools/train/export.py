#!/usr/bin/python3
"""export.py - stage 5 of reel-tiny: the trained pieces into models/reel-tiny/.

Writes the folder the engine loads (engine/model_folder.h): dit/config.json +
dit/diffusion_pytorch_model.safetensors (the DiT, official names and config, f32),
vae.safetensors (official Wan-VAE names, f32, with the per-channel latents_mean /
latents_std measured on the training latents), t5.safetensors (umT5 names, f32),
tokenizer.model, and model.json with the default sampler settings and the decode
warm-up measured here with the reference VAE: the smallest w such that every segment
[a, T) decoded from a - w matches the whole decode within 1/255. It checks that the
written DiT, read back through wan_dit.load_model, equals the trained forward.
"""
import argparse
import json
import os
import shutil

import numpy as np
import sentencepiece as spm
import torch

import clips
from common import FPS, FRAMES, H, MODEL_DIR, W, FastVAE, clip_tensor, vae_checkpoint, work  # first: sets the path
import st  # noqa: E402
import tiny  # noqa: E402
import umt5  # noqa: E402
import wan_dit as wd  # noqa: E402
from wan_vae import WanVAE  # noqa: E402

DEFAULTS = {"sampler": "unipc", "steps": 20, "shift": 3.0, "guidance": 4.0, "width": W,
            "height": H, "frames": FRAMES, "fps": FPS, "negative": ""}


def vae_state():
    c = torch.load(vae_checkpoint())
    lat = torch.load(work("latents.pt"))
    sd = {k: v.float().contiguous() for k, v in c["sd"].items()}
    sd["latents_mean"], sd["latents_std"] = lat["mean"].float(), lat["std"].float()
    return sd, c["step"]


def measure_warmup(sd, frames=49, seed=3, max_w=12):
    """Smallest w with every segment [a, T) from a - w within 1/255 of the whole decode."""
    vae = WanVAE(sd)
    rng = np.random.default_rng(seed)
    a0 = clips.sample_attrs(rng)
    video = clip_tensor(clips.render(a0, frames, H, W, seed=seed))[None]
    with torch.no_grad():
        z = FastVAE(sd).encode(video, whole=True)
        t = z.shape[2]
        whole = vae.decode(z)
        worst_by_w = []
        for w in range(0, max_w + 1):
            worst = 0.0
            for a in range(2, t):
                seg = vae.decode_segment(z, a, t, w)
                ref = whole[:, :, 1 + 4 * (a - 1):]
                worst = max(worst, (seg - ref).abs().max().item() / 2.0)  # [-1,1] -> [0,1]
            worst_by_w.append(worst)
            print("decode warm-up w=%d: max |segment - whole| = %.5f (of 1)" % (w, worst), flush=True)
            if worst <= 1.0 / 255:
                return w, worst_by_w
    return -1, worst_by_w


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-warmup", action="store_true")
    ap.add_argument("--guidance", type=float, default=DEFAULTS["guidance"],
                    help="the default CFG scale written to model.json")
    args = ap.parse_args()
    DEFAULTS["guidance"] = args.guidance
    torch.manual_seed(0)
    os.makedirs(MODEL_DIR, exist_ok=True)
    dc = torch.load(work("dit_ckpt.pt"))
    ema = dc["ema"]
    p5 = {k[3:]: v.float().contiguous() for k, v in ema.items() if k.startswith("t5.")}
    p = {k[4:]: v.float().contiguous() for k, v in ema.items() if k.startswith("dit.")}
    cfg = tiny.dit_config()
    c5 = tiny.t5_config(dc["vocab"])
    conf = {"_class_name": "WanModel", "model_type": "t2v", "dim": cfg.dim, "ffn_dim": cfg.ffn_dim,
            "num_heads": cfg.num_heads, "num_layers": cfg.num_layers, "freq_dim": cfg.freq_dim,
            "in_dim": cfg.in_dim, "out_dim": cfg.out_dim, "text_len": cfg.text_len,
            "text_dim": cfg.text_dim, "eps": cfg.eps, "patch_size": list(cfg.patch_size),
            "qk_norm": True, "cross_attn_norm": True, "window_size": [-1, -1]}
    dit_dir = os.path.join(MODEL_DIR, "dit")  # its own folder: the official form
    os.makedirs(dit_dir, exist_ok=True)
    with open(os.path.join(dit_dir, "config.json"), "w") as f:
        json.dump(conf, f, indent=2)
    st.save(os.path.join(dit_dir, "diffusion_pytorch_model.safetensors"),
            {k: v.numpy() for k, v in sorted(p.items())}, {"format": "pt"})
    st.save(os.path.join(MODEL_DIR, "t5.safetensors"), {k: v.numpy() for k, v in sorted(p5.items())},
            {"format": "pt"})
    sd, vae_step = vae_state()
    st.save(os.path.join(MODEL_DIR, "vae.safetensors"), {k: v.numpy() for k, v in sorted(sd.items())},
            {"format": "pt"})
    shutil.copyfile(work("tokenizer.model"), os.path.join(MODEL_DIR, "tokenizer.model"))

    # read back and check the trained forward equals the reference on the written files
    p_r, cfg_r, form = wd.load_model(dit_dir)
    p5_r, c5_r = umt5.load(os.path.join(MODEL_DIR, "t5.safetensors"))
    sp = spm.SentencePieceProcessor(model_file=os.path.join(MODEL_DIR, "tokenizer.model"))
    diff = tiny.check_equal(p_r, cfg_r, p5_r, c5_r, sp)
    print("written DiT (%s form) vs training forward: max |diff| %.2e" % (form, diff))
    assert diff < 1e-4, diff
    assert c5_r.num_heads == c5.num_heads and c5_r.dim == c5.dim

    warm, curve = (-1, []) if args.skip_warmup else measure_warmup(sd)
    model = {"name": "reel-tiny", "dit": "dit", "vae": "vae.safetensors", "t5": "t5.safetensors",
             "tokenizer": "tokenizer.model", "defaults": DEFAULTS}
    if warm >= 0:  # unmeasured (--skip-warmup) or never within 1/255: left out, the engine's default
        model["decode_warmup"] = warm
    with open(os.path.join(MODEL_DIR, "model.json"), "w") as f:
        json.dump(model, f, indent=2)
        f.write("\n")
    info = {"dit_step": dc["step"], "dit_minutes": dc["spent"] / 60, "dit_log_tail": dc["log"][-5:],
            "vae_step": vae_step, "decode_warmup": warm, "warmup_curve": curve,
            "dit_params": sum(v.numel() for v in p.values()),
            "t5_params": sum(v.numel() for v in p5.values()),
            "vae_params": sum(v.numel() for k, v in sd.items() if not k.startswith("latents_"))}
    with open(work("export_info.json"), "w") as f:
        json.dump(info, f, indent=2)
    total = sum(os.path.getsize(os.path.join(r, n)) for r, _, ns in os.walk(MODEL_DIR) for n in ns)
    print(json.dumps(info), "folder bytes", total)


if __name__ == "__main__":
    main()
