"""samplers.py - reference flow-matching samplers (Euler, UniPC bh2, DPM-Solver++ 2M) in numpy.

Written from WAN_SPEC.md section 4 and the published algorithms (UniPC: Zhao et al. 2023,
"UniPC: A Unified Predictor-Corrector Framework for Fast Sampling of Diffusion Models",
with B(h) = expm1(-h) ("bh2"), data (x0) prediction; DPM-Solver++: Lu et al. 2022,
multistep second order with data prediction). Flow matching: alpha = 1 - s, sigma = s,
lambda = log(alpha) - log(sigma), x0 = x_s - s v.
Scalars are float64; every tensor update is the same sequence of float32 operations as
engine/sampler.c, so trajectories can be compared step by step. It never calls a model
other than the one it is given.
"""
import math

import numpy as np

KINDS = ("euler", "unipc", "dpm++")
F32 = np.float32


def sigmas(kind, steps, shift):
    """The N+1 shifted sigmas (the last 0), float64."""
    start = 0.999 if kind == "unipc" else 1.0
    s = np.linspace(start, 0.0, steps + 1)[:steps]
    s = shift * s / (1 + (shift - 1) * s)
    return np.concatenate([s, [0.0]]).astype(np.float64)


def timestep(sigma):
    """What the model receives: floor(s * 1000), as float32."""
    return F32(math.floor(float(sigma) * 1000.0))


def lam(s):
    """log(1 - s) - log(s) with the infinities at s = 1 and s = 0 made explicit."""
    if s >= 1.0:
        return -math.inf
    if s <= 0.0:
        return math.inf
    return math.log(1.0 - s) - math.log(s)


def unipc_coef(s0, t):
    """a = t/s0, b = alpha_t*phi1, c = alpha_t*B(h), b1, b2 (order conditions / B(h)), h."""
    h = lam(t) - lam(s0)
    hh = -h
    phi1 = math.expm1(hh)
    bh = math.expm1(hh)
    phik = phi1 / hh - 1.0
    b1 = phik * 1.0 / bh
    phik = phik / hh - 0.5
    b2 = phik * 2.0 / bh
    return t / s0, (1.0 - t) * phi1, (1.0 - t) * bh, b1, b2, h


class Sampler:
    """One chunk's sampler. model(x [B,C,F,H,W] f32, t [B] f32) -> v [B,C,F,H,W] f32;
    with cfg, B = 2 ([cond, uncond]) and v = v_u + g (v_c - v_u)."""

    def __init__(self, kind, steps, shift, cfg=False, guidance=1.0):
        assert kind in KINDS
        self.kind, self.steps, self.cfg = kind, steps, cfg
        self.g = F32(guidance if cfg else 1.0)
        self.sig = sigmas(kind, steps, shift)
        self.step = 0
        self.lower_order_nums = 0
        self.last_order = 0
        self.m_prev = self.m_prev2 = self.last_sample = None

    def velocity(self, model, x, i):
        t = timestep(self.sig[i])
        if self.cfg:
            v = model(np.stack([x, x]), np.array([t, t], F32))
            vc, vu = v[0], v[1]
            return vu + self.g * (vc - vu)
        return model(x[None], np.array([t], F32))[0]

    def do_step(self, model, x):
        i, sg = self.step, self.sig
        v = self.velocity(model, x, i)
        if self.kind == "euler":
            x = x + F32(sg[i + 1] - sg[i]) * v
        else:
            m = x - F32(sg[i]) * v
            x = self._dpmpp(x, m, i) if self.kind == "dpm++" else self._unipc(x, m, i)
            self.lower_order_nums = min(self.lower_order_nums + 1, 2)
        self.step += 1
        return x.astype(F32)

    def _dpmpp(self, x, m, i):
        sg = self.sig
        s, t = sg[i], sg[i + 1]
        order = 2 if (self.lower_order_nums >= 1 and t > 0.0 and sg[i - 1] < 1.0) else 1
        if t <= 0.0:
            out = m.copy()
        else:
            h = lam(t) - lam(s)
            cx = F32(t / s)
            cm = F32(-(1.0 - t) * math.expm1(-h))
            if order == 1:
                out = cx * x + cm * m
            else:
                r = (lam(s) - lam(sg[i - 1])) / h
                cd = F32(0.5 / r)
                out = cx * x + cm * (m + cd * (m - self.m_prev))
        self.m_prev = m
        return out

    def _unipc(self, x, m, i):
        sg, n = self.sig, self.steps
        if i > 0:  # corrector with the last predictor's order
            a, b, c, b1, b2, h = unipc_coef(sg[i - 1], sg[i])
            fa, fb, fc = F32(a), F32(b), F32(c)
            ls, mp = self.last_sample, self.m_prev
            if self.last_order == 1:
                x = (fa * ls - fb * mp) - fc * (F32(0.5) * (m - mp))
            else:
                rk = (lam(sg[i - 2]) - lam(sg[i - 1])) / h
                rho = np.linalg.solve(np.array([[1.0, 1.0], [rk, 1.0]]), np.array([b1, b2]))
                e0, r1 = F32(rho[0] / rk), F32(rho[1])
                x = (fa * ls - fb * mp) - fc * (e0 * (self.m_prev2 - mp) + r1 * (m - mp))
        self.m_prev2, self.m_prev, self.last_sample = self.m_prev, m, x
        order = min(2, n - i, self.lower_order_nums + 1)
        if sg[i + 1] <= 0.0:
            out = m.copy()
        else:
            a, b, c, b1, b2, h = unipc_coef(sg[i], sg[i + 1])
            fa, fb, fc = F32(a), F32(b), F32(c)
            if order == 1:
                out = fa * x - fb * m
            else:
                rk = (lam(sg[i - 1]) - lam(sg[i])) / h
                e = F32(0.5 / rk)
                out = (fa * x - fb * m) - fc * (e * (self.m_prev2 - m))
        self.last_order = order
        return out


def toy_model(A, bias):
    """A fixed toy velocity model, the same in tests/test_sampler.c: per batch item b,
    v[c] = sum_c' A[c, c'] x[c'] + 0.5 tanh(x[c]) + (t_b / 1000) bias[b, c], in float64
    (summed over c' in ascending order), rounded to float32. A [C, C], bias [2, C] f32."""
    A64, B64 = A.astype(np.float64), bias.astype(np.float64)

    def model(x, t):
        out = np.empty_like(x)
        for b in range(x.shape[0]):
            x64 = x[b].astype(np.float64)
            acc = np.zeros_like(x64)
            for c2 in range(x.shape[1]):
                acc += A64[:, c2][:, None, None, None] * x64[c2][None]
            acc += 0.5 * np.tanh(x64)
            acc += (float(t[b]) / 1000.0) * B64[b][:, None, None, None]
            out[b] = acc.astype(F32)
        return out

    return model


def trajectory(sampler, model, x0):
    """Runs every step from x0; returns (latents [N+1, ...] f32, timesteps [N] f32)."""
    xs, ts = [x0.astype(F32)], []
    x = x0.astype(F32)
    for i in range(sampler.steps):
        ts.append(timestep(sampler.sig[i]))
        x = sampler.do_step(model, x)
        xs.append(x)
    return np.stack(xs), np.array(ts, F32)
