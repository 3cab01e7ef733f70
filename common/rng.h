/* rng.h - Philox4x32-10 counter-based RNG and the project's initial-noise function.
 *
 * Philox4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy as
 * 1, 2, 3", SC 2011; the Random123 library): a pure function of a 128-bit counter and
 * a 64-bit key, so any element of the noise can be drawn independently, in any order,
 * on any machine. This is what makes overlapping chunks start from identical noise
 * (ARCHITECTURE.md §2.1). Nothing here keeps state; nothing here may read a clock.
 *
 * Noise convention (the contract with tools/reference/rng.py and every backend):
 *   key     = (seed & 0xffffffff, seed >> 32)
 *   counter = (timeline, frame, element & 0xffffffff, element >> 32)
 *   (x0, x1, x2, x3) = Philox4x32-10(counter, key)
 *   u1 = (x0 + 1) * 2^-32,  u2 = (x1 + 1) * 2^-32        (both in (0, 1], exact in double)
 *   z  = (float)( sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2) )   (all in double)
 *   x2 and x3 are not used.
 * The latent at GLOBAL latent frame f, channel c, position (h, w) of a [C, T, H, W]
 * latent with spatial size H x W uses frame = f and element = (c * H + h) * W + w, so
 * the value depends only on (seed, timeline, f, c, h, w, H, W), never on which chunk
 * asks. |z| <= sqrt(64 ln 2) ~ 6.66.
 *
 * Cross-machine determinism: Philox is exact integer arithmetic. The normal uses
 * libm's double log and cos, then rounds to float; every other step is a single
 * correctly rounded IEEE operation (no fused multiply-add is possible in it). libm
 * implementations differ by at most about one double ulp, which changes the float
 * result only when the double lands within that distance of a float rounding
 * boundary (about 1 value in 10^8). So f32 noise is equal across machines and libm
 * versions in practice and always within 1 f32 ulp; the f64 value is within a few
 * double ulps.
 */
#ifndef RF_RNG_H
#define RF_RNG_H

#include "error.h"

#include <stddef.h>
#include <stdint.h>

#define RF_PHILOX_M0 0xD2511F53u /* round multipliers */
#define RF_PHILOX_M1 0xCD9E8D57u
#define RF_PHILOX_W0 0x9E3779B9u /* Weyl key increments (golden ratio, sqrt(3)-1) */
#define RF_PHILOX_W1 0xBB67AE85u

/* Philox4x32 with 10 rounds: out = block(ctr, key). out may alias ctr. */
void rf_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* Maps a 32-bit word to (x + 1) * 2^-32, a double in (0, 1] (exact). */
double rf_u32_to_unit(uint32_t x);

/* Box-Muller, cosine branch, in double: sqrt(-2 log u1) * cos(2 pi u2), for u1, u2 in
 * (0, 1] as rf_u32_to_unit makes them. */
double rf_box_muller(double u1, double u2);

/* The standard normal for (seed, timeline, frame, element) by the convention above, in
 * double (before the rounding to float). Pure. */
double rf_noise_f64(uint64_t seed, uint32_t timeline, uint32_t frame, uint64_t element);

/* (float)rf_noise_f64(...): the project's initial noise. Pure. */
float rf_noise(uint64_t seed, uint32_t timeline, uint32_t frame, uint64_t element);

/* out[i] = rf_noise(seed, timeline, frame, element0 + i) for i < n (element0 + n must
 * not wrap past 2^64; asserted). */
void rf_noise_fill(uint64_t seed, uint32_t timeline, uint32_t frame, uint64_t element0, float *out,
                   size_t n);

/* Fills out, a [C, T, H, W] f32 latent, with the noise of global latent frames
 * [f0, f0 + T) of timeline: out[((c*T + t)*H + h)*W + w] =
 * rf_noise(seed, timeline, f0 + t, (c*H + h)*W + w). Returns RF_EINVAL (and writes
 * nothing) when a dimension is not positive, f0 + T exceeds 2^32 or C*T*H*W
 * overflows size_t. */
int rf_noise_latent(uint64_t seed, uint32_t timeline, uint32_t f0, int64_t C, int64_t T, int64_t H,
                    int64_t W, float *out, rf_error *err);

#endif
