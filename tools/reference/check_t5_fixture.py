"""check_t5_fixture.py - re-derives the umT5 fixture and shows which mistakes it catches.

1. The reference reproduces io.safetensors from umt5_tiny.safetensors; the bucket table
   matches WAN_SPEC §3's formula evaluated in float64 Python.
2. Sensitivity: NMSE of the outputs when one detail is done the wrong way; each must be
   far above the 1e-6 parity bound. Reads only; writes nothing.
Usage: /usr/bin/python3 tools/reference/check_t5_fixture.py [FIXTURE_DIR]
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
import umt5 as U  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FAILS = []


def nmse(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(((a - b) ** 2).sum() / (b ** 2).sum())


def report(what, value, ok):
    print("%-52s %-12.3e %s" % (what, value, "ok" if ok else "FAIL"))
    if not ok:
        FAILS.append(what)


@contextlib.contextmanager
def patched(**repl):
    old = {k: getattr(U, k) for k in repl}
    for k, v in repl.items():
        setattr(U, k, v)
    try:
        yield
    finally:
        for k, v in old.items():
            setattr(U, k, v)


def spec_bucket(rel):
    b = 16 if rel > 0 else 0
    n = abs(rel)
    return b + (n if n < 8 else min(15, 8 + int(math.floor(math.log(n / 8) / math.log(16) * 8))))


def main():
    fx = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "tests", "fixtures", "t5"))
    torch.set_num_threads(1)
    p, cfg = U.load(os.path.join(fx, "umt5_tiny.safetensors"))
    io = {k: torch.from_numpy(v) for k, v in st.load(os.path.join(fx, "io.safetensors"))[0].items()}

    def run_all(params=p):
        with torch.no_grad():
            return (U.forward(params, cfg, io["ids_short"]).numpy(),
                    U.forward(params, cfg, io["ids_long"]).numpy(),
                    U.forward(params, cfg, io["ids_batch"], io["mask_batch"]).numpy())

    want = (io["out_short"].numpy(), io["out_long"].numpy(), io["out_batch"].numpy())
    lens = io["mask_batch"].sum(1).tolist()

    def score(got):  # real rows only
        s = nmse(got[0], want[0]) + nmse(got[1], want[1])
        for i, n in enumerate(lens):
            s += nmse(got[2][i, :n], want[2][i, :n])
        return s / (2 + len(lens))

    print("== 1. the fixture reproduces")
    report("forward vs io (nmse, real rows)", score(run_all()), score(run_all()) == 0.0)
    bk = io["buckets"].numpy()
    table = np.array([[spec_bucket(j - i) for j in range(bk.shape[1])] for i in range(bk.shape[0])])
    report("buckets vs the spec formula in float64 (mismatches)", float((table != bk).sum()), np.array_equal(table, bk))
    # 31 of 32: bucket 16 (key after the query at distance 0) cannot occur
    report("buckets used (31 reachable of 32)", float(len(np.unique(bk))), len(np.unique(bk)) == 31)

    print("== 2. mistakes the fixture catches (nmse, must be >> 1e-6)")
    m = {}
    orig_attn = U.attention

    def scaled_attn(x, pp, pre, c, mask, bias):
        pq = dict(pp)
        pq[pre + "q.weight"] = pp[pre + "q.weight"] / math.sqrt(c.head_dim)
        return orig_attn(x, pq, pre, c, mask, bias)
    with patched(attention=scaled_attn):
        m["logits scaled by 1/sqrt(head_dim)"] = run_all()
    with patched(attention=lambda x, pp, pre, c, mask, bias: orig_attn(x, pp, pre, c, mask, bias * 0)):
        m["no relative position bias"] = run_all()
    with patched(attention=lambda x, pp, pre, c, mask, bias: orig_attn(x, pp, pre, c, None, bias)):
        m["key mask ignored"] = run_all()
    orig_bk = U.relative_buckets
    with patched(relative_buckets=lambda lq, lk, nb=32, md=128: orig_bk(lk, lq, nb, md).t()):
        m["rel = query - key (direction flipped)"] = run_all()
    def collapsed(lq, lk, nb=32, md=128):  # every logarithmic bucket -> the last one
        b = orig_bk(lq, lk, nb, md)
        return torch.where(b % 16 >= 8, b - b % 16 + 15, b)
    with patched(relative_buckets=collapsed):
        m["log buckets collapsed to the last one"] = run_all()
    pp = dict(p)
    for i in range(cfg.num_layers):
        pp["blocks.%d.pos_embedding.embedding.weight" % i] = p["blocks.0.pos_embedding.embedding.weight"]
    m["layer 0's position table for every layer"] = run_all(pp)
    with patched(gelu_tanh=lambda z: F.gelu(z)):
        m["exact (erf) GELU"] = run_all()
    pp = dict(p)
    for i in range(cfg.num_layers):
        pp["blocks.%d.ffn.gate.0.weight" % i] = p["blocks.%d.ffn.fc1.weight" % i]
        pp["blocks.%d.ffn.fc1.weight" % i] = p["blocks.%d.ffn.gate.0.weight" % i]
    m["GELU on fc1 instead of gate"] = run_all(pp)
    pp = dict(p)
    pp["token_embedding.weight"] = p["token_embedding.weight"] * math.sqrt(cfg.dim)
    m["embedding scaled by sqrt(dim)"] = run_all(pp)
    pp = dict(p)
    pp["norm.weight"] = torch.ones(cfg.dim)
    m["final norm weight ignored"] = run_all(pp)
    for what, got in m.items():
        s = score(got)
        if what == "exact (erf) GELU":
            print("%-52s %-12.3e below the bound: test the op" % ("  " + what, s))
        else:
            report("  " + what, s, s > 1e-4)
    if FAILS:
        print("FAILED: %s" % "; ".join(FAILS))
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
