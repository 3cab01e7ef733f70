"""rng.py - numpy mirror of common/rng.c: Philox4x32-10 and the project's initial noise.

The convention (see common/rng.h, the contract):
  key     = (seed & 0xffffffff, seed >> 32)
  counter = (timeline, frame, element & 0xffffffff, element >> 32)
  x0..x3  = philox4x32_10(counter, key)
  u1 = (x0 + 1) * 2**-32, u2 = (x1 + 1) * 2**-32
  z  = float32(sqrt(-2 log u1) * cos(6.283185307179586 * u2))   in float64; x2, x3 unused
A [C, T, H, W] latent for global latent frames [f0, f0+T) takes frame = f0 + t and
element = (c*H + h)*W + w. numpy only (no torch), so the PyTorch reference can import it
and reproduce the C noise. Values agree with C to the bit in practice and always within
1 float32 ulp (libm log/cos may differ by a double ulp; rng.h explains).
Run it directly to check the Random123 known-answer vectors.
"""
import numpy as np

M0, M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
W0, W1 = np.uint32(0x9E3779B9), np.uint32(0xBB67AE85)
TWO_PI = 6.283185307179586


def philox4x32_10(ctr, key):
    """ctr: 4 arrays (or ints) of uint32, key: 2 of uint32, broadcastable; returns 4 uint32 arrays."""
    c = [np.asarray(v, dtype=np.uint32) for v in ctr]
    k0, k1 = (np.asarray(v, dtype=np.uint32) for v in key)
    c = list(np.broadcast_arrays(*c, k0, k1)[:4])
    with np.errstate(over="ignore"):
        for r in range(10):
            if r:
                k0 = k0 + W0
                k1 = k1 + W1
            p0 = M0 * c[0].astype(np.uint64)
            p1 = M1 * c[2].astype(np.uint64)
            hi0, lo0 = (p0 >> np.uint64(32)).astype(np.uint32), p0.astype(np.uint32)
            hi1, lo1 = (p1 >> np.uint64(32)).astype(np.uint32), p1.astype(np.uint32)
            c = [hi1 ^ c[1] ^ k0, lo1, hi0 ^ c[3] ^ k1, lo0]
    return c


def _key(seed):
    seed = int(seed)
    assert 0 <= seed < 2**64, "seed must be an unsigned 64-bit integer"
    return np.uint32(seed & 0xFFFFFFFF), np.uint32(seed >> 32)


def noise(seed, timeline, frame, element):
    """float32 normals for arrays (or ints) timeline, frame, element (uint64), broadcast."""
    element = np.asarray(element, dtype=np.uint64)
    ctr = (np.asarray(timeline, dtype=np.uint32), np.asarray(frame, dtype=np.uint32),
           (element & np.uint64(0xFFFFFFFF)).astype(np.uint32),
           (element >> np.uint64(32)).astype(np.uint32))
    x = philox4x32_10(ctr, _key(seed))
    u1 = (x[0].astype(np.float64) + 1.0) * 2.0**-32
    u2 = (x[1].astype(np.float64) + 1.0) * 2.0**-32
    z = np.sqrt(-2.0 * np.log(u1)) * np.cos(TWO_PI * u2)
    return z.astype(np.float32)


def noise_latent(seed, timeline, f0, C, T, H, W):
    """The [C, T, H, W] float32 initial noise of global latent frames [f0, f0 + T)."""
    c = np.arange(C, dtype=np.uint64).reshape(C, 1, 1, 1)
    t = np.arange(T, dtype=np.uint64).reshape(1, T, 1, 1)
    h = np.arange(H, dtype=np.uint64).reshape(1, 1, H, 1)
    w = np.arange(W, dtype=np.uint64).reshape(1, 1, 1, W)
    element = (c * np.uint64(H) + h) * np.uint64(W) + w
    frame = (np.uint64(f0) + t).astype(np.uint32)
    return noise(seed, timeline, frame, element + np.zeros_like(t))


KAT = [  # Random123 tests/kat_vectors, philox4x32 10: counter, key, expected
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]

if __name__ == "__main__":
    for ctr, key, want in KAT:
        got = tuple(int(v) for v in philox4x32_10(ctr, key))
        assert got == want, (ctr, key, [hex(v) for v in got])
    z = noise(42, 0, np.zeros(100000, np.uint32), np.arange(100000))
    print("KAT ok; 100000 normals: mean %.4f std %.4f" % (z.mean(), z.std()))
