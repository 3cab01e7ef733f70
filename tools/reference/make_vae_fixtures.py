"""make_vae_fixtures.py - golden fixtures for the C Wan-VAE (tests/fixtures/vae/).

Builds a Wan2.1-structured VAE at base width 8 (z_dim 16) with every parameter
randomized (weights rounded to bf16 and stored as BF16 to keep the files small; the
reference computes in f32 on exactly those values), random latents_mean/latents_std,
and writes the reference's encode, decode and segment outputs. It asserts that the
streamed (cached) path equals the whole-sequence path before writing anything.
Run: /usr/bin/python3 tools/reference/make_vae_fixtures.py [OUTDIR]
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402
from wan_vae import WanVAE, random_state, wan_vae_shapes  # noqa: E402

DEC_SEGMENTS = [(2, 5, 1), (3, 5, 3), (4, 5, 2), (1, 3, 0)]  # (a, b, w)
ENC_SEGMENTS = [(2, 3, 1), (1, 3, 0)]


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "tests", "fixtures", "vae")
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)
    shapes = wan_vae_shapes(dim=8, z_dim=16)
    sd = {k: st_io.round_bf16(v) for k, v in random_state(shapes, seed=1234, out_gain=0.7).items()}
    g = torch.Generator().manual_seed(99)
    sd["latents_mean"] = 0.5 * torch.randn(16, generator=g)
    sd["latents_std"] = 0.5 + torch.rand(16, generator=g)
    vae = WanVAE(sd)

    with torch.no_grad():
        z = torch.randn(1, 16, 5, 4, 6, generator=g)
        video = vae.decode(z)
        whole = vae.decode(z, whole=True)
        d = (video - whole).abs().max().item()
        assert d < 1e-4, "streamed vs whole decode differ by %g" % d
        dec = {"z": z, "video": video}
        for a, b, w in DEC_SEGMENTS:
            seg = vae.decode_segment(z, a, b, w)
            if a - w <= 0:  # starts at frame 0: must equal the whole decode's frames
                lo = 0 if a == 0 else 1 + 4 * (a - 1)
                assert (seg - video[:, :, lo:lo + seg.shape[2]]).abs().max() < 1e-5
            dec["seg_%d_%d_w%d" % (a, b, w)] = seg

        clip = torch.rand(1, 3, 9, 32, 48, generator=g) * 2 - 1
        zc = vae.encode(clip)
        d = (zc - vae.encode(clip, whole=True)).abs().max().item()
        assert d < 1e-4, "streamed vs whole encode differ by %g" % d
        enc = {"video": clip, "z": zc}
        for a, b, w in ENC_SEGMENTS:
            enc["seg_%d_%d_w%d" % (a, b, w)] = vae.encode_segment(clip, a, b, w)

    weights = [k for k in sd if k not in ("latents_mean", "latents_std")]
    st_io.write(os.path.join(out, "vae_tiny.safetensors"), sd, {"base_dim": "8", "z_dim": "16"},
                bf16=set(weights))
    st_io.write(os.path.join(out, "decode.safetensors"), dec,
                {"segments": ";".join("%d:%d:%d" % s for s in DEC_SEGMENTS)})
    st_io.write(os.path.join(out, "encode.safetensors"), enc,
                {"segments": ";".join("%d:%d:%d" % s for s in ENC_SEGMENTS)})
    with open(os.path.join(out, "names.txt"), "w") as f:
        for k in sorted(shapes):
            f.write("%s %s\n" % (k, list(shapes[k])))
    print("wrote", out, "params", sum(t.numel() for t in sd.values()),
          "clamped fraction %.3f" % (video.abs() >= 1).float().mean().item())


if __name__ == "__main__":
    main()
