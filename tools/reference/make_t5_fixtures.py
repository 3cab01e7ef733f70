"""make_t5_fixtures.py - writes tests/fixtures/t5/ from the umT5 reference (umt5.py).

A tiny umT5 encoder with every parameter random (seed 3), stored F32 and, rounded to
bf16, BF16; id sequences of length 10, 150 (relative distances up to 149: the exact,
logarithmic and clamped bucket regions) and a padded batch of 2 x 40 (lengths 40 and
23, pad id 0, with a mask); the expected outputs; the bucket table. Deterministic.
Usage: /usr/bin/python3 tools/reference/make_t5_fixtures.py [OUT_DIR]
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402
import umt5  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "..", "..", "tests", "fixtures", "t5")
TINY = umt5.Config(vocab=512, dim=64, num_heads=4, head_dim=16, ffn_dim=128, num_layers=2)


def npy(t):
    return np.ascontiguousarray(t.detach().numpy())


def outputs(p, g_ids):
    ids_short, ids_long, ids_batch, mask_batch = g_ids
    with torch.no_grad():
        return (umt5.forward(p, TINY, ids_short), umt5.forward(p, TINY, ids_long),
                umt5.forward(p, TINY, ids_batch, mask_batch))


def main():
    out = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_OUT)
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)
    meta = {"generator": "tools/reference/make_t5_fixtures.py"}

    p = umt5.random_params(TINY, seed=3)
    bits = {k: st.bf16_bits(npy(v)) for k, v in p.items()}
    pb = {k: torch.from_numpy(st.bf16_to_f32(b)) for k, b in bits.items()}
    st.save(os.path.join(out, "umt5_tiny.safetensors"), {k: npy(v) for k, v in p.items()}, meta)
    st.save(os.path.join(out, "umt5_tiny_bf16.safetensors"), {k: st.BF16(b) for k, b in bits.items()}, meta)

    g = torch.Generator().manual_seed(4)
    ids_short = torch.randint(1, TINY.vocab, (1, 10), generator=g)
    ids_short[0, -1] = 1  # ends like a real prompt: </s> (id 1 in umT5's vocabulary)
    ids_long = torch.randint(1, TINY.vocab, (1, 150), generator=g)
    ids_long[0, -1] = 1
    lens = [40, 23]
    ids_batch = torch.zeros(2, 40, dtype=torch.int64)
    mask_batch = torch.zeros(2, 40, dtype=torch.int64)
    for i, n in enumerate(lens):
        ids_batch[i, :n] = torch.randint(2, TINY.vocab, (n,), generator=g)
        ids_batch[i, n - 1] = 1
        mask_batch[i, :n] = 1
    gi = (ids_short, ids_long, ids_batch, mask_batch)
    o32, ob16 = outputs(p, gi), outputs(pb, gi)
    dbg = {}
    with torch.no_grad():
        umt5.forward(p, TINY, ids_short, debug=dbg)

    st.save(os.path.join(out, "io.safetensors"), {
        "ids_short": npy(ids_short), "out_short": npy(o32[0]), "out_short_bf16": npy(ob16[0]),
        "ids_long": npy(ids_long), "out_long": npy(o32[1]), "out_long_bf16": npy(ob16[1]),
        "ids_batch": npy(ids_batch), "mask_batch": npy(mask_batch),
        "out_batch": npy(o32[2]), "out_batch_bf16": npy(ob16[2]),
        "buckets": npy(umt5.relative_buckets(150, 150).to(torch.int32)),
        "short_embed": npy(dbg["embed"]), "short_block_0": npy(dbg["block_0"]),
    }, meta)

    # self-checks: the files load back to the same answer; padding is invisible to the
    # real rows (batch row 1 vs the same 23 ids alone)
    pl, cfg = umt5.load(os.path.join(out, "umt5_tiny.safetensors"))
    assert vars(cfg) == vars(TINY), (vars(cfg), vars(TINY))
    with torch.no_grad():
        assert torch.equal(umt5.forward(pl, cfg, ids_long), o32[1])
        alone = umt5.forward(p, TINY, ids_batch[1:2, :lens[1]])
    d = (alone[0] - o32[2][1, :lens[1]]).abs().max().item()
    print("padded row vs alone: max abs diff %.3e" % d)
    assert d < 1e-5
    for fn in sorted(os.listdir(out)):
        print("%9d  %s" % (os.path.getsize(os.path.join(out, fn)), fn))


if __name__ == "__main__":
    main()
