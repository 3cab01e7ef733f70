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
    dit_dir = os.path.join(root, "tests", "fixtures", "dit")
    if os.path.exists(os.path.join(os.path.dirname(os.path.abspath(__file__)), "wan_dit.py")) \
            and os.path.isdir(os.path.join(dit_dir, "official")):
        dit_cases(dit_dir, out)
    else:
        print("no tiny DiT reference (tools/reference/wan_dit.py, tests/fixtures/dit/official): "
              "DiT trajectories not written")


# name, sampler, steps, shift, guidance: a short schedule with the tiny DiT and CFG
DIT_CASES = [("dit_unipc", "unipc", 4, 5.0, 5.0), ("dit_dpmpp", "dpm++", 4, 3.0, 4.0),
             ("dit_euler", "euler", 4, 5.0, 5.0)]


def dit_cases(dit_dir, out):
    """Trajectories with the MAIN tiny DiT (official/, f32 weights): start latent
    io.safetensors x[0], conditional context io context[0], unconditional context[1]."""
    import torch
    import st
    import wan_dit
    torch.set_num_threads(1)
    p, cfg, _ = wan_dit.load_model(os.path.join(dit_dir, "official"))
    io, _ = st.load(os.path.join(dit_dir, "io.safetensors"))
    x0 = np.asarray(io["x"][0], np.float32)
    ctx = torch.from_numpy(np.asarray(io["context"], np.float32))

    def model(x, t):
        with torch.no_grad():
            v = wan_dit.forward(p, cfg, torch.from_numpy(x), torch.from_numpy(t), ctx[:x.shape[0]])
        return v.numpy().astype(np.float32)

    for name, kind, steps, shift, g in DIT_CASES:
        s = Sampler(kind, steps, shift, True, g)
        xs, ts = trajectory(s, model, x0)
        meta = {"sampler": kind, "steps": steps, "shift": repr(shift), "cfg": 1,
                "guidance": repr(g), "model": "dit/official",
                "inputs": "dit/io.safetensors: x[0] start, context[0] cond, context[1] uncond"}
        st_io.write(os.path.join(out, name + ".safetensors"),
                    {"traj": xs, "t": ts, "sigmas": s.sig}, meta)
        print("%s: %d steps, final |x| %.4f" % (name, steps, float(np.abs(xs[-1]).mean())))


if __name__ == "__main__":
    main()
