/* rng.c - Philox4x32-10 and the Box-Muller normal behind rf_noise.
 *
 * Written from the Philox description in Salmon et al. (SC 2011): each round takes
 * the 32x32->64 products of the multipliers with counter words 0 and 2, mixes the
 * high halves with words 1 and 3 and the key, and the key takes a Weyl step between
 * rounds. Checked against Random123's known-answer vectors in tests/test_rng.c. It
 * must never depend on state, threads or time: the same inputs give the same bits.
 */
#include "rng.h"

#include <assert.h>
#include <math.h>

static void s_round(uint32_t c[4], const uint32_t k[2])
{
    uint64_t p0 = (uint64_t)RF_PHILOX_M0 * c[0];
    uint64_t p1 = (uint64_t)RF_PHILOX_M1 * c[2];
    uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
    uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    uint32_t n0 = hi1 ^ c[1] ^ k[0];
    uint32_t n2 = hi0 ^ c[3] ^ k[1];
    c[0] = n0;
    c[1] = lo1;
    c[2] = n2;
    c[3] = lo0;
}

void rf_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t c[4] = {ctr[0], ctr[1], ctr[2], ctr[3]};
    uint32_t k[2] = {key[0], key[1]};
    for (int r = 0; r < 10; r++) {
        if (r > 0) {
            k[0] += RF_PHILOX_W0;
            k[1] += RF_PHILOX_W1;
        }
        s_round(c, k);
    }
    out[0] = c[0];
    out[1] = c[1];
    out[2] = c[2];
    out[3] = c[3];
}

double rf_u32_to_unit(uint32_t x)
{
    return ((double)x + 1.0) * 0x1p-32;
}

double rf_box_muller(double u1, double u2)
{
    double r = sqrt(-2.0 * log(u1));
    double theta = 6.283185307179586 * u2;
    return r * cos(theta);
}

double rf_noise_f64(uint64_t seed, uint32_t timeline, uint32_t frame, uint64_t element)
{
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    const uint32_t ctr[4] = {timeline, frame, (uint32_t)element, (uint32_t)(element >> 32)};
    uint32_t x[4];
    rf_philox4x32_10(ctr, key, x);
    return rf_box_muller(rf_u32_to_unit(x[0]), rf_u32_to_unit(x[1]));
}

float rf_noise(uint64_t seed, uint32_t timeline, uint32_t frame, uint64_t element)
{
    return (float)rf_noise_f64(seed, timeline, frame, element);
}

void rf_noise_fill(uint64_t seed, uint32_t timeline, uint32_t frame, uint64_t element0, float *out,
                   size_t n)
{
    assert(n == 0 || element0 + (n - 1) >= element0);
    for (size_t i = 0; i < n; i++)
        out[i] = rf_noise(seed, timeline, frame, element0 + i);
}

int rf_noise_latent(uint64_t seed, uint32_t timeline, uint32_t f0, int64_t C, int64_t T, int64_t H,
                    int64_t W, float *out, rf_error *err)
{
    if (C <= 0 || T <= 0 || H <= 0 || W <= 0)
        return rf_error_set(err, RF_EINVAL,
                            "noise latent: dimensions must be positive, got C=%lld T=%lld "
                            "H=%lld W=%lld",
                            (long long)C, (long long)T, (long long)H, (long long)W);
    if ((uint64_t)f0 + (uint64_t)T > ((uint64_t)1 << 32))
        return rf_error_set(err, RF_EINVAL,
                            "noise latent: frames [%u, %u + %lld) run past 2^32 latent frames", f0,
                            f0, (long long)T);
    size_t hw, chw, total;
    if (__builtin_mul_overflow((size_t)H, (size_t)W, &hw) ||
        __builtin_mul_overflow(hw, (size_t)C, &chw) ||
        __builtin_mul_overflow(chw, (size_t)T, &total))
        return rf_error_set(err, RF_EINVAL, "noise latent: C*T*H*W overflows");
    for (int64_t c = 0; c < C; c++)
        for (int64_t t = 0; t < T; t++)
            rf_noise_fill(seed, timeline, f0 + (uint32_t)t, (uint64_t)c * hw,
                          out + ((size_t)c * (size_t)T + (size_t)t) * hw, hw);
    return 0;
}
