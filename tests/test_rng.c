/* test_rng.c - Philox4x32-10 against Random123's known answers, the noise function's
 * purity and layout, and agreement with the numpy mirror (tests/fixtures/rng/noise.json,
 * made by tools/reference/make_rng_fixtures.py).
 */
#include "rf_test.h"
#include "rng.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

RF_TEST(philox_random123_known_answers)
{
    /* Random123 tests/kat_vectors, "philox4x32 10" lines: counter, key, output */
    static const uint32_t kat[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d,
         0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09,
         0x94fdcceb, 0x5001e420, 0x24126ea1},
    };
    for (int i = 0; i < 3; i++) {
        uint32_t out[4];
        rf_philox4x32_10(kat[i], kat[i] + 4, out);
        for (int j = 0; j < 4; j++)
            RF_CHECK_MSG(out[j] == kat[i][6 + j], "vector %d word %d: %08x != %08x", i, j, out[j],
                         kat[i][6 + j]);
    }
    /* out may alias the counter */
    uint32_t c[4] = {0, 0, 0, 0}, k[2] = {0, 0};
    rf_philox4x32_10(c, k, c);
    RF_CHECK(c[0] == 0x6627e8d5 && c[3] == 0x9b00dbd8);
}

RF_TEST(unit_mapping_and_box_muller)
{
    RF_CHECK(rf_u32_to_unit(0) == 0x1p-32);
    RF_CHECK(rf_u32_to_unit(0xffffffffu) == 1.0);
    RF_CHECK(rf_box_muller(1.0, 0.25) == 0.0);                /* log 1 = 0 */
    RF_CHECK_NEAR(rf_box_muller(exp(-0.5), 1.0), 1.0, 1e-15); /* r = 1, cos 2pi = 1 */
    RF_CHECK_NEAR(rf_box_muller(0x1p-32, 1.0), 6.660436894,
                  1e-8); /* sqrt(64 ln 2), the largest |z| */
}

RF_TEST(noise_is_pure_and_standard_normal)
{
    /* each input changes the value */
    float z = rf_noise(7, 1, 2, 3);
    RF_CHECK(z == rf_noise(7, 1, 2, 3));
    RF_CHECK(z != rf_noise(8, 1, 2, 3));
    RF_CHECK(z != rf_noise(7 + (1ull << 32), 1, 2, 3));
    RF_CHECK(z != rf_noise(7, 0, 2, 3));
    RF_CHECK(z != rf_noise(7, 1, 3, 3));
    RF_CHECK(z != rf_noise(7, 1, 2, 4));
    RF_CHECK(z != rf_noise(7, 1, 2, 3 + (1ull << 32)));
    RF_CHECK(z == (float)rf_noise_f64(7, 1, 2, 3));

    /* moments of 200000 values (fixed inputs, so this cannot flake) */
    size_t n = 200000;
    float *v = malloc(n * sizeof(float));
    RF_CHECK(v != NULL);
    rf_noise_fill(99, 0, 5, 1000, v, n);
    double s = 0, s2 = 0, s4 = 0;
    size_t beyond2 = 0;
    for (size_t i = 0; i < n; i++) {
        s += v[i];
        s2 += (double)v[i] * v[i];
        s4 += (double)v[i] * v[i] * v[i] * v[i];
        beyond2 += fabsf(v[i]) > 2.0f;
        RF_CHECK(fabsf(v[i]) <= 6.6605f);
    }
    double mean = s / n, var = s2 / n - mean * mean;
    RF_CHECK_NEAR(mean, 0.0, 0.01);                    /* sd of the mean: 0.0022 */
    RF_CHECK_NEAR(var, 1.0, 0.015);                    /* sd: 0.0032 */
    RF_CHECK_NEAR(s4 / n, 3.0, 0.08);                  /* kurtosis of a normal; sd ~0.02 */
    RF_CHECK_NEAR((double)beyond2 / n, 0.0455, 0.003); /* P(|z| > 2) */
    free(v);
}

RF_TEST(fill_equals_per_element)
{
    float v[300];
    uint64_t e0 = (1ull << 32) - 150; /* crosses into the counter's high word */
    rf_noise_fill(0xDEADBEEFCAFEBABEull, 3, 77, e0, v, 300);
    for (size_t i = 0; i < 300; i++)
        RF_CHECK(v[i] == rf_noise(0xDEADBEEFCAFEBABEull, 3, 77, e0 + i));
    rf_noise_fill(1, 0, 0, 0, v, 0); /* n = 0 writes nothing */
}

RF_TEST(latent_layout_and_overlapping_windows)
{
    enum { C = 3, T = 7, H = 4, W = 5 };
    static float full[C * T * H * W], win[C * 3 * H * W];
    rf_error err = {0};
    RF_CHECK_EQ_INT(rf_noise_latent(5, 1, 10, C, T, H, W, full, &err), 0);
    for (int c = 0; c < C; c++)
        for (int t = 0; t < T; t++)
            for (int h = 0; h < H; h++)
                for (int w = 0; w < W; w++)
                    RF_CHECK(full[((c * T + t) * H + h) * W + w] ==
                             rf_noise(5, 1, 10 + t, (uint64_t)((c * H + h) * W + w)));
    /* a chunk covering global frames [14, 17) sees exactly the same noise */
    RF_CHECK_EQ_INT(rf_noise_latent(5, 1, 14, C, 3, H, W, win, &err), 0);
    for (int c = 0; c < C; c++)
        for (int t = 0; t < 3; t++)
            RF_CHECK(memcmp(&win[(c * 3 + t) * H * W], &full[(c * T + t + 4) * H * W],
                            H * W * sizeof(float)) == 0);
    /* refusals */
    RF_CHECK_EQ_INT(rf_noise_latent(5, 1, 0, 0, 1, 1, 1, win, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "C=0");
    RF_CHECK_EQ_INT(rf_noise_latent(5, 1, 0xfffffffeu, 1, 3, 1, 1, win, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "2^32");
    RF_CHECK_EQ_INT(rf_noise_latent(5, 1, 0xfffffffeu, 1, 2, 1, 1, win, &err), 0);
    RF_CHECK_EQ_INT(rf_noise_latent(5, 1, 0, INT64_MAX, 1, INT64_MAX, 4, win, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "overflows");
}

static uint32_t s_hex32(const json_t *v)
{
    RF_CHECK(json_is_string(v));
    return (uint32_t)strtoul(json_string_value(v), NULL, 16);
}

static uint64_t s_u64(const json_t *v)
{
    RF_CHECK(json_is_string(v));
    return strtoull(json_string_value(v), NULL, 10);
}

/* Distance in float ulps between two finite floats of the same sign. */
static long s_ulps(float a, uint32_t bits_b)
{
    uint32_t ua;
    memcpy(&ua, &a, 4);
    if ((ua ^ bits_b) & 0x80000000u)
        return ua == bits_b ? 0 : 1000000;
    return labs((long)ua - (long)bits_b);
}

RF_TEST(agrees_with_numpy_mirror)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/rng/noise.json", rf_test_fixtures());
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr);
    RF_CHECK_MSG(doc != NULL, "%s: %s", path, jerr.text);
    const json_t *cases = json_object_get(doc, "cases");
    RF_CHECK(json_array_size(cases) >= 300);
    size_t i;
    const json_t *cs;
    long worst = 0;
    json_array_foreach(cases, i, cs)
    {
        uint64_t seed = s_u64(json_object_get(cs, "seed"));
        uint32_t tl = (uint32_t)json_integer_value(json_object_get(cs, "timeline"));
        uint32_t fr = (uint32_t)json_integer_value(json_object_get(cs, "frame"));
        uint64_t el = s_u64(json_object_get(cs, "element"));
        const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
        const uint32_t ctr[4] = {tl, fr, (uint32_t)el, (uint32_t)(el >> 32)};
        uint32_t x[4];
        rf_philox4x32_10(ctr, key, x);
        const json_t *words = json_object_get(cs, "words");
        for (size_t j = 0; j < 4; j++)
            RF_CHECK_MSG(x[j] == s_hex32(json_array_get(words, j)), "case %zu word %zu", i, j);
        long u = s_ulps(rf_noise(seed, tl, fr, el), s_hex32(json_object_get(cs, "noise")));
        worst = u > worst ? u : worst;
        RF_CHECK_MSG(u <= 1, "case %zu: noise differs by %ld ulps", i, u);
    }
    const json_t *lat = json_object_get(doc, "latent");
    int64_t C = json_integer_value(json_object_get(lat, "C"));
    int64_t T = json_integer_value(json_object_get(lat, "T"));
    int64_t H = json_integer_value(json_object_get(lat, "H"));
    int64_t W = json_integer_value(json_object_get(lat, "W"));
    const json_t *vals = json_object_get(lat, "noise");
    RF_CHECK_EQ_INT(json_array_size(vals), C * T * H * W);
    RF_CHECK(C * T * H * W <= 1024);
    float out[1024];
    rf_error err = {0};
    RF_CHECK_EQ_INT(rf_noise_latent(s_u64(json_object_get(lat, "seed")),
                                    (uint32_t)json_integer_value(json_object_get(lat, "timeline")),
                                    (uint32_t)json_integer_value(json_object_get(lat, "f0")), C, T,
                                    H, W, out, &err),
                    0);
    for (i = 0; i < json_array_size(vals); i++)
        RF_CHECK_MSG(s_ulps(out[i], s_hex32(json_array_get(vals, i))) <= 1, "latent value %zu", i);
    json_decref(doc);
}
