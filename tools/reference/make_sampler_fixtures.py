"""make_sampler_fixtures.py - step-by-step sampler trajectories for tests/test_sampler.c.

For each case it writes tests/fixtures/sampler/<name>.safetensors holding the toy model
(A [C,C], bias [2,C]), the latent after every step (traj [N+1,C,F,H,W], traj[0] the
start), the timesteps the model received (t [N]) and the sigmas (F64 [N+1]), with the
case's settings in the metadata. When tests/fixtures/dit/ holds the tiny DiT fixture of
tools/reference/wan_dit.py, it also writes dit_<sampler>.safetensors: a short trajectory
with that model and CFG. Run: /usr/bin/python3 tools/reference/make_sampler_fixtures.py
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402
from samplers import Sampler, toy_model, trajectory  # noqa: E402

C, F, H, W = 16, 3, 4, 4
# name, sampler, steps, shift, cfg, guidance
CASES = [
    ("unipc", "unipc", 8, 5.0, True, 5.0),
    ("dpmpp", "dpm++", 8, 3.0, True, 4.0),
    ("euler", "euler", 6, 5.0, False, 1.0),
    ("unipc_n1", "unipc", 1, 5.0, True, 5.0),
    ("unipc_n3", "unipc", 3, 1.0, False, 1.0),
    ("dpmpp_n2", "dpm++", 2, 8.0, True, 6.0),
]


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "tests", "fixtures", "sampler")
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(2024)
    A = (rng.standard_normal((C, C)) * (0.3 / np.sqrt(C)) - 0.2 * np.eye(C)).astype(np.float32)
    bias = rng.standard_normal((2, C)).astype(np.float32)
    x0 = rng.standard_normal((C, F, H, W)).astype(np.float32)
    model = toy_model(A, bias)
    for name, kind, steps, shift, cfg, g in CASES:
        s = Sampler(kind, steps, shift, cfg, g)
        xs, ts = trajectory(s, model, x0)
        meta = {"sampler": kind, "steps": steps, "shift": repr(shift), "cfg": int(cfg),
                "guidance": repr(g), "model": "toy"}
        st_io.write(os.path.join(out, name + ".safetensors"),
                    {"A": A, "bias": bias, "traj": xs, "t": ts, "sigmas": s.sig}, meta)
        print("%s: %d steps, final |x| %.4f" % (name, steps, float(np.abs(xs[-1]).mean())))


if __name__ == "__main__":
    main()
