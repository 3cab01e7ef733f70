"""common.py - shared settings and helpers of the reel-tiny training stages.

Paths (work files under build/train-tiny/, the shipped model under models/reel-tiny/),
the native clip geometry, the fixed seeds, and a VAE subclass that computes exactly the
reference WanVAE function but skips the all-zero taps of single-frame causal convs
(a 3-frame causal conv over one frame with zero front padding only uses its last
temporal tap: conv2d with w[:, :, 2]). Must never change what the model computes.
"""
import os
import sys

import torch
import torch.nn.functional as F

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tools", "reference"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from wan_vae import WanVAE  # noqa: E402

WORK = os.environ.get("REEL_TINY_WORK", os.path.join(ROOT, "build", "train-tiny"))
MODEL_DIR = os.environ.get("REEL_TINY_OUT", os.path.join(ROOT, "models", "reel-tiny"))

H = W = 64  # native size
FRAMES = 17  # native clip length (4n+1): 5 latent frames
FPS = 16
VAE_DIM = 8  # Wan-VAE base width (dims 8, 16, 32, 32)
Z_DIM = 16


def work(*p):
    os.makedirs(WORK, exist_ok=True)
    return os.path.join(WORK, *p)


def vae_checkpoint():
    """The newest VAE stage's checkpoint under WORK: the decoder trained on after the joint
    retraining (vae_joint_dec_ckpt.pt), the joint encoder+decoder retraining
    (vae_joint_ckpt.pt), the decoder-only one (vae_dec_ckpt.pt, the base encoder with a
    trained-on decoder), or the base (vae_ckpt.pt). Each holds the whole VAE."""
    for name in ("vae_joint_dec_ckpt.pt", "vae_joint_ckpt.pt", "vae_dec_ckpt.pt", "vae_ckpt.pt"):
        if os.path.exists(work(name)):
            return work(name)
    raise FileNotFoundError("no VAE checkpoint under %s: run train_vae.py first" % WORK)


def threads():
    n = int(os.environ.get("REEL_TINY_THREADS", "1"))
    torch.set_num_threads(n)
    return n


class FastVAE(WanVAE):
    """The reference VAE; whole-path causal convs over a single frame use conv2d."""

    def cconv(self, x, name, st):
        w = self.sd[name + ".weight"]
        if st is None and x.shape[2] == 1 and w.shape[2] == 3:
            y = F.conv2d(x[:, :, 0], w[:, :, 2], self.sd.get(name + ".bias"),
                         padding=(w.shape[3] // 2, w.shape[4] // 2))
            return y[:, :, None]
        return super().cconv(x, name, st)


def clip_tensor(frames_u8):
    """uint8 [F, H, W, 3] -> float [3, F, H, W] in [-1, 1]."""
    x = torch.from_numpy(frames_u8).float().div_(127.5).sub_(1.0)
    return x.permute(3, 0, 1, 2).contiguous()
