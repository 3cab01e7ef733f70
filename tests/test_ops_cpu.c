/* test_ops_cpu.c - every op of the CPU backend against a plain double-precision reference.
 *
 * Shapes are deliberately awkward (odd sizes, 1-sized dims, more keys than one attention
 * block, a partial query block), weights come in F32, BF16 and F16, and the argument
 * checks are exercised with wrong shapes. The attention memory test runs 4096 tokens in
 * an arena far smaller than one 4096 x 4096 score matrix.
 */
#include "rf_test.h"

#include "arena.h"
#include "backend.h"
#include "cpu/cpu.h"
#include "dtype.h"
#include "ops.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t s_rng = 0x9E3779B97F4A7C15ull;

static float s_rand(void)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return (float)((double)(s_rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static void s_fill_rand(float *p, size_t n, float amp)
{
    for (size_t i = 0; i < n; i++)
        p[i] = s_rand() * amp;
}

typedef struct {
    rf_backend *be;
    rf_arena *arena;
} s_env;

static s_env s_env_new(int threads, size_t arena_bytes)
{
    s_env e;
    rf_error err = {0};
    e.be = rf_backend_cpu_new(threads, &err);
    RF_CHECK_MSG(e.be, "backend: %s", err.msg);
    e.arena = rf_arena_new(e.be, arena_bytes, &err);
    RF_CHECK_MSG(e.arena, "arena: %s", err.msg);
    return e;
}

static void s_env_free(s_env *e)
{
    rf_arena_destroy(&e->arena);
    rf_backend_destroy(&e->be);
}

/* A tensor from the arena holding a copy of host data (NULL data: uninitialised). */
static rf_tensor s_tensor(s_env *e, rf_dtype dt, int ndim, const int64_t *shape, const void *host)
{
    rf_tensor t;
    rf_error err = {0};
    int rc = rf_arena_tensor(e->arena, &t, dt, ndim, shape, "test", &err);
    RF_CHECK_MSG(rc == 0, "%s", err.msg);
    if (host) {
        rc = rf_tensor_upload(e->be, &t, host, rf_tensor_nbytes(&t), &err);
        RF_CHECK_MSG(rc == 0, "%s", err.msg);
    }
    return t;
}

static void s_linear_case(int threads, rf_dtype wdt, int64_t m, int64_t n, int64_t k, int bias)
{
    s_env e = s_env_new(threads, 64u << 20);
    float *x = malloc(sizeof(float) * (size_t)(m * k)),
          *w = malloc(sizeof(float) * (size_t)(n * k));
    float *b = malloc(sizeof(float) * (size_t)n), *y = malloc(sizeof(float) * (size_t)(m * n));
    float *ref = malloc(sizeof(float) * (size_t)(m * n));
    uint16_t *wh = malloc(sizeof(uint16_t) * (size_t)(n * k));
    s_fill_rand(x, (size_t)(m * k), 1.0f);
    s_fill_rand(w, (size_t)(n * k), 0.5f);
    s_fill_rand(b, (size_t)n, 0.5f);
    for (int64_t i = 0; i < n * k; i++) { /* the reference sees the rounded weights */
        if (wdt == RF_DTYPE_BF16) {
            wh[i] = rf_f32_to_bf16(w[i]);
            w[i] = rf_bf16_to_f32(wh[i]);
        } else if (wdt == RF_DTYPE_F16) {
            wh[i] = rf_f32_to_f16(w[i]);
            w[i] = rf_f16_to_f32(wh[i]);
        }
    }
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = bias ? b[j] : 0.0;
            for (int64_t c = 0; c < k; c++)
                s += (double)x[i * k + c] * w[j * k + c];
            ref[i * n + j] = (float)s;
        }
    int64_t xs[2] = {m, k}, ws[2] = {n, k}, ys[2] = {m, n};
    rf_tensor tx = s_tensor(&e, RF_DTYPE_F32, 2, xs, x);
    rf_tensor tw = s_tensor(&e, wdt, 2, ws, wdt == RF_DTYPE_F32 ? (void *)w : (void *)wh);
    rf_tensor tb = s_tensor(&e, RF_DTYPE_F32, 1, &n, b);
    rf_tensor ty = s_tensor(&e, RF_DTYPE_F32, 2, ys, NULL);
    rf_error err = {0};
    size_t mark = rf_arena_mark(e.arena);
    int rc = rf_op_linear(e.be, &ty, &tx, &tw, bias ? &tb : NULL, e.arena, &err);
    RF_CHECK_MSG(rc == 0, "%s", err.msg);
    RF_CHECK_EQ_INT(rf_arena_mark(e.arena), mark); /* scratch given back */
    rf_tensor_download(e.be, &ty, y, sizeof(float) * (size_t)(m * n), &err);
    double nmse = rf_test_nmse(y, ref, (size_t)(m * n));
    RF_CHECK_MSG(nmse < 1e-12, "linear %lldx%lldx%lld %s: nmse %g", (long long)m, (long long)n,
                 (long long)k, rf_dtype_name(wdt), nmse);
    free(x), free(w), free(b), free(y), free(ref), free(wh);
    s_env_free(&e);
}

RF_TEST(linear_f32_bf16_f16_weights_odd_and_parallel_shapes)
{
    s_linear_case(1, RF_DTYPE_F32, 7, 5, 3, 1);
    s_linear_case(3, RF_DTYPE_F32, 37, 19, 23, 1);
    s_linear_case(3, RF_DTYPE_F32, 301, 200, 64, 0);
    s_linear_case(2, RF_DTYPE_F32, 1000, 24, 40, 1); /* row split */
    s_linear_case(2, RF_DTYPE_BF16, 130, 150, 96, 1);
    s_linear_case(3, RF_DTYPE_F16, 65, 130, 33, 1);
    s_linear_case(2, RF_DTYPE_BF16, 1, 300, 17, 1);
}

RF_TEST(linear_rejects_bad_shapes_with_a_message_naming_them)
{
    s_env e = s_env_new(1, 1u << 20);
    int64_t xs[2] = {4, 8}, ws[2] = {6, 7}, ys[2] = {4, 6};
    rf_tensor x = s_tensor(&e, RF_DTYPE_F32, 2, xs, NULL),
              w = s_tensor(&e, RF_DTYPE_F32, 2, ws, NULL);
    rf_tensor y = s_tensor(&e, RF_DTYPE_F32, 2, ys, NULL);
    rf_error err = {0};
    RF_CHECK_EQ_INT(rf_op_linear(e.be, &y, &x, &w, NULL, NULL, &err), RF_ESHAPE);
    RF_CHECK_CONTAINS(err.msg, "[6,7]");
    RF_CHECK_CONTAINS(err.msg, "[4,8]");
    /* BF16 weights without scratch is an error, not a crash */
    int64_t ws2[2] = {6, 8};
    rf_tensor w2 = s_tensor(&e, RF_DTYPE_BF16, 2, ws2, NULL);
    RF_CHECK_EQ_INT(rf_op_linear(e.be, &y, &x, &w2, NULL, NULL, &err), RF_ENOMEM);
    RF_CHECK_CONTAINS(err.msg, "scratch");
    /* y overlapping x is refused */
    rf_tensor alias = rf_tensor_view(&x, 2, (int64_t[]){4, 8});
    rf_tensor w3 = s_tensor(&e, RF_DTYPE_F32, 2, (int64_t[]){8, 8}, NULL);
    RF_CHECK_EQ_INT(rf_op_linear(e.be, &alias, &x, &w3, NULL, NULL, &err), RF_EINVAL);
    s_env_free(&e);
}

RF_TEST(layer_norm_with_and_without_affine)
{
    s_env e = s_env_new(2, 8u << 20);
    int64_t r = 33, c = 45, sh[2] = {r, c};
    float x[33 * 45], w[45], b[45], y[33 * 45], ref[33 * 45];
    s_fill_rand(x, (size_t)(r * c), 3.0f);
    for (int i = 0; i < r * c; i++)
        x[i] += 5.0f; /* a large mean */
    s_fill_rand(w, 45, 1.0f);
    s_fill_rand(b, 45, 1.0f);
    rf_tensor tx = s_tensor(&e, RF_DTYPE_F32, 2, sh, x),
              ty = s_tensor(&e, RF_DTYPE_F32, 2, sh, NULL);
    rf_tensor tw = s_tensor(&e, RF_DTYPE_F32, 1, &c, w), tb = s_tensor(&e, RF_DTYPE_F32, 1, &c, b);
    rf_error err = {0};
    for (int affine = 0; affine < 2; affine++) {
        for (int i = 0; i < r; i++) {
            double mu = 0, var = 0;
            for (int j = 0; j < c; j++)
                mu += x[i * c + j];
            mu /= c;
            for (int j = 0; j < c; j++)
                var += (x[i * c + j] - mu) * (x[i * c + j] - mu);
            var /= c;
            for (int j = 0; j < c; j++) {
                double v = (x[i * c + j] - mu) / sqrt(var + 1e-6);
                ref[i * c + j] = (float)(affine ? v * w[j] + b[j] : v);
            }
        }
        int rc =
            rf_op_layer_norm(e.be, &ty, &tx, affine ? &tw : NULL, affine ? &tb : NULL, 1e-6f, &err);
        RF_CHECK_MSG(rc == 0, "%s", err.msg);
        rf_tensor_download(e.be, &ty, y, sizeof(y), &err);
        RF_CHECK(rf_test_nmse(y, ref, (size_t)(r * c)) < 1e-12);
    }
    s_env_free(&e);
}

RF_TEST(rms_norm_full_and_split_rows)
{
    s_env e = s_env_new(2, 8u << 20);
    int64_t r = 17, c = 24, sh[2] = {r, c};
    float x[17 * 24], w[24], y[17 * 24], ref[17 * 24];
    s_fill_rand(x, sizeof(x) / 4, 2.0f);
    s_fill_rand(w, 24, 1.0f);
    for (int i = 0; i < r; i++) {
        double s = 0;
        for (int j = 0; j < c; j++)
            s += (double)x[i * c + j] * x[i * c + j];
        for (int j = 0; j < c; j++)
            ref[i * c + j] = (float)(x[i * c + j] / sqrt(s / c + 1e-6) * w[j]);
    }
    rf_tensor tx = s_tensor(&e, RF_DTYPE_F32, 2, sh, x),
              ty = s_tensor(&e, RF_DTYPE_F32, 2, sh, NULL);
    rf_tensor tw = s_tensor(&e, RF_DTYPE_F32, 1, &c, w),
              ss = s_tensor(&e, RF_DTYPE_F32, 1, &r, NULL);
    rf_error err = {0};
    RF_CHECK(rf_op_rms_norm(e.be, &ty, &tx, &ss, &tw, 1e-6f, &err) == 0);
    rf_tensor_download(e.be, &ty, y, sizeof(y), &err);
    RF_CHECK(rf_test_nmse(y, ref, sizeof(y) / 4) < 1e-12);
    /* in place */
    RF_CHECK(rf_op_rms_norm(e.be, &tx, &tx, &ss, &tw, 1e-6f, &err) == 0);
    rf_tensor_download(e.be, &tx, y, sizeof(y), &err);
    RF_CHECK(rf_test_nmse(y, ref, sizeof(y) / 4) < 1e-12);
    /* a count below the row length is refused */
    RF_CHECK_EQ_INT(rf_op_rms_apply(e.be, &ty, &tx, &ss, 3, &tw, 1e-6f, &err), RF_EINVAL);
    s_env_free(&e);
}

RF_TEST(rope3d_tables_follow_the_wan_axis_split)
{
    /* head_dim 128: pairs 0..21 frame (d=44), 22..42 row (d=42), 43..63 column (d=42) */
    int64_t f = 2, h = 3, w = 4, T = f * h * w;
    double *c = malloc(sizeof(double) * (size_t)(T * 64)),
           *s = malloc(sizeof(double) * (size_t)(T * 64));
    rf_rope3d_tables(c, s, f, h, w, 128, 10000.0);
    int64_t t = (1 * h + 2) * w + 3; /* f=1, h=2, w=3 */
    RF_CHECK_NEAR(c[t * 64 + 0], cos(1.0), 1e-15);
    RF_CHECK_NEAR(s[t * 64 + 1], sin(1.0 * pow(10000.0, -2.0 / 44.0)), 1e-15);
    RF_CHECK_NEAR(s[t * 64 + 21], sin(1.0 * pow(10000.0, -42.0 / 44.0)), 1e-15);
    RF_CHECK_NEAR(s[t * 64 + 22], sin(2.0), 1e-15);
    RF_CHECK_NEAR(s[t * 64 + 23], sin(2.0 * pow(10000.0, -2.0 / 42.0)), 1e-15);
    RF_CHECK_NEAR(s[t * 64 + 43], sin(3.0), 1e-15);
    RF_CHECK_NEAR(c[t * 64 + 63], cos(3.0 * pow(10000.0, -40.0 / 42.0)), 1e-15);
    free(c), free(s);
}

RF_TEST(rope_rotates_pairs_in_double)
{
    s_env e = s_env_new(2, 8u << 20);
    int64_t B = 2, T = 6, H = 3, D = 12, half = D / 2;
    int64_t sh[4] = {B, T, H, D}, ts[2] = {T, half};
    size_t n = (size_t)(B * T * H * D);
    float *x = malloc(n * 4), *y = malloc(n * 4), *ref = malloc(n * 4);
    double c[6 * 6], s[6 * 6];
    s_fill_rand(x, n, 1.0f);
    rf_rope3d_tables(c, s, 1, 2, 3, D, 10000.0);
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++)
            for (int64_t hh = 0; hh < H; hh++)
                for (int64_t i = 0; i < half; i++) {
                    size_t o = (size_t)(((b * T + t) * H + hh) * D + 2 * i);
                    double a = x[o], bb = x[o + 1], cc = c[t * half + i], ss = s[t * half + i];
                    ref[o] = (float)(a * cc - bb * ss);
                    ref[o + 1] = (float)(a * ss + bb * cc);
                }
    rf_tensor tx = s_tensor(&e, RF_DTYPE_F32, 4, sh, x);
    rf_tensor tc = s_tensor(&e, RF_DTYPE_F64, 2, ts, c), tsn = s_tensor(&e, RF_DTYPE_F64, 2, ts, s);
    rf_error err = {0};
    RF_CHECK(rf_op_rope(e.be, &tx, &tx, &tc, &tsn, &err) == 0);
    rf_tensor_download(e.be, &tx, y, n * 4, &err);
    RF_CHECK(rf_test_nmse(y, ref, n) < 1e-14);
    rf_tensor bad = s_tensor(&e, RF_DTYPE_F64, 2, (int64_t[]){T + 1, half}, NULL);
    RF_CHECK_EQ_INT(rf_op_rope(e.be, &tx, &tx, &bad, &bad, &err), RF_ESHAPE);
    free(x), free(y), free(ref);
    s_env_free(&e);
}

/* Naive attention for query row i of (b, h), in double. */
static void s_att_ref_row(float *out, const float *q, const float *k, const float *v,
                          const uint8_t *mask, int64_t lq, int64_t lk, int64_t H, int64_t D,
                          int64_t b, int64_t i, int64_t h, double scale)
{
    double mx = -INFINITY, l = 0;
    double *acc = calloc((size_t)D, sizeof(double));
    const float *qr = q + ((b * lq + i) * H + h) * D;
    for (int pass = 0; pass < 2; pass++)
        for (int64_t j = 0; j < lk; j++) {
            if (mask && !mask[b * lk + j])
                continue;
            const float *kr = k + ((b * lk + j) * H + h) * D;
            double s = 0;
            for (int64_t c = 0; c < D; c++)
                s += (double)qr[c] * kr[c];
            s *= scale;
            if (pass == 0) {
                mx = s > mx ? s : mx;
            } else {
                double p = exp(s - mx);
                l += p;
                for (int64_t c = 0; c < D; c++)
                    acc[c] += p * v[((b * lk + j) * H + h) * D + c];
            }
        }
    for (int64_t c = 0; c < D; c++)
        out[c] = l > 0 ? (float)(acc[c] / l) : 0.0f;
    free(acc);
}

static void s_att_case(int threads, int64_t B, int64_t lq, int64_t lk, int64_t H, int64_t D,
                       int use_mask)
{
    size_t nq = (size_t)(B * lq * H * D), nk = (size_t)(B * lk * H * D);
    float *q = malloc(nq * 4), *k = malloc(nk * 4), *v = malloc(nk * 4), *o = malloc(nq * 4),
          *ref = malloc(nq * 4);
    uint8_t *mask = malloc((size_t)(B * lk));
    s_fill_rand(q, nq, 2.0f);
    s_fill_rand(k, nk, 2.0f);
    s_fill_rand(v, nk, 1.0f);
    for (int64_t i = 0; i < B * lk; i++)
        mask[i] = (uint8_t)((i % 5) != 2);
    if (use_mask && B > 1)
        for (int64_t j = 0; j < lk; j++)
            mask[lk + j] = 0; /* batch 1 masks everything: zeros */
    double scale = 1.0 / sqrt((double)D);
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < lq; i++)
            for (int64_t h = 0; h < H; h++)
                s_att_ref_row(ref + ((b * lq + i) * H + h) * D, q, k, v, use_mask ? mask : NULL, lq,
                              lk, H, D, b, i, h, scale);
    s_env e = s_env_new(threads, 64u << 20);
    int64_t qs[4] = {B, lq, H, D}, ks[4] = {B, lk, H, D}, ms[2] = {B, lk};
    rf_tensor tq = s_tensor(&e, RF_DTYPE_F32, 4, qs, q), tk = s_tensor(&e, RF_DTYPE_F32, 4, ks, k);
    rf_tensor tv = s_tensor(&e, RF_DTYPE_F32, 4, ks, v),
              to = s_tensor(&e, RF_DTYPE_F32, 4, qs, NULL);
    rf_tensor tm = s_tensor(&e, RF_DTYPE_U8, 2, ms, mask);
    rf_error err = {0};
    int rc = rf_op_attention(e.be, &to, &tq, &tk, &tv, use_mask ? &tm : NULL, (float)scale, e.arena,
                             &err);
    RF_CHECK_MSG(rc == 0, "%s", err.msg);
    rf_tensor_download(e.be, &to, o, nq * 4, &err);
    double nmse = rf_test_nmse(o, ref, nq);
    RF_CHECK_MSG(nmse < 1e-11, "attention B%lld lq%lld lk%lld H%lld D%lld mask%d: nmse %g",
                 (long long)B, (long long)lq, (long long)lk, (long long)H, (long long)D, use_mask,
                 nmse);
    if (use_mask && B > 1)
        for (size_t i = nq / 2; i < nq; i++)
            RF_CHECK(o[i] == 0.0f);
    free(q), free(k), free(v), free(o), free(ref), free(mask);
    s_env_free(&e);
}

RF_TEST(attention_matches_naive_softmax_any_head_dim_and_mask)
{
    s_att_case(1, 1, 5, 3, 1, 7, 0);
    s_att_case(2, 2, 70, 600, 3, 16, 0); /* partial query block, two key blocks */
    s_att_case(3, 1, 129, 1025, 2, 128, 0);
    s_att_case(2, 2, 33, 700, 2, 5, 1); /* masked keys; batch 1 fully masked */
    s_att_case(1, 1, 1, 1, 1, 1, 0);
}

RF_TEST(attention_memory_is_bounded_at_4096_tokens)
{
    /* 4096 x 4096 F32 scores would be 64 MiB; the arena holds q, k, v, out (1 MiB each)
     * plus the reported scratch, which must be far below one T^2 buffer. */
    int64_t T = 4096, H = 1, D = 64;
    size_t n = (size_t)(T * H * D);
    rf_error err = {0};
    rf_backend *be = rf_backend_cpu_new(2, &err);
    size_t scratch = rf_op_attention_scratch(be, 1, T, T, H, D);
    size_t t2 = (size_t)T * (size_t)T * sizeof(float);
    RF_CHECK_MSG(scratch * 16 < t2, "scratch %zu is not far below T^2 bytes %zu", scratch, t2);
    size_t arena_bytes = 4 * rf_arena_round(n * 4) + rf_arena_round(scratch);
    RF_CHECK(arena_bytes < t2 / 4);
    s_env e = {be, rf_arena_new(be, arena_bytes, &err)};
    RF_CHECK(e.arena);
    float *q = malloc(n * 4), *k = malloc(n * 4), *v = malloc(n * 4), *o = malloc(n * 4);
    s_fill_rand(q, n, 1.0f);
    s_fill_rand(k, n, 1.0f);
    s_fill_rand(v, n, 1.0f);
    int64_t sh[4] = {1, T, H, D};
    rf_tensor tq = s_tensor(&e, RF_DTYPE_F32, 4, sh, q), tk = s_tensor(&e, RF_DTYPE_F32, 4, sh, k);
    rf_tensor tv = s_tensor(&e, RF_DTYPE_F32, 4, sh, v),
              to = s_tensor(&e, RF_DTYPE_F32, 4, sh, NULL);
    int rc = rf_op_attention(e.be, &to, &tq, &tk, &tv, NULL, 0.125f, e.arena, &err);
    RF_CHECK_MSG(rc == 0, "%s", err.msg);
    RF_CHECK(rf_arena_high_water(e.arena) <= arena_bytes);
    rf_tensor_download(e.be, &to, o, n * 4, &err);
    float ref[64];
    for (int64_t i = 0; i < T; i += 1021) {
        s_att_ref_row(ref, q, k, v, NULL, T, T, H, D, 0, i, 0, 0.125);
        RF_CHECK(rf_test_nmse(o + i * D, ref, (size_t)D) < 1e-11);
    }
    /* the same call with the scratch missing fails cleanly */
    rf_arena_reset(e.arena, rf_arena_mark(e.arena));
    s_env small = {be, rf_arena_new(be, 1024, &err)};
    RF_CHECK_EQ_INT(rf_op_attention(be, &to, &tq, &tk, &tv, NULL, 0.125f, small.arena, &err),
                    RF_ENOMEM);
    rf_arena_destroy(&small.arena);
    free(q), free(k), free(v), free(o);
    s_env_free(&e);
}

RF_TEST(unary_gelu_tanh_gelu_erf_silu)
{
    s_env e = s_env_new(2, 8u << 20);
    int64_t n = 10007;
    float *x = malloc((size_t)n * 4), *y = malloc((size_t)n * 4), *ref = malloc((size_t)n * 4);
    s_fill_rand(x, (size_t)n, 12.0f);
    x[0] = 0.0f, x[1] = -100.0f, x[2] = 100.0f, x[3] = 1e-30f;
    rf_tensor tx = s_tensor(&e, RF_DTYPE_F32, 1, &n, x),
              ty = s_tensor(&e, RF_DTYPE_F32, 1, &n, NULL);
    rf_error err = {0};
    for (int op = 0; op < RF_UNARY_COUNT; op++) {
        for (int64_t i = 0; i < n; i++) {
            double v = x[i];
            if (op == RF_UNARY_GELU_TANH)
                ref[i] = (float)(0.5 * v * (1 + tanh(sqrt(2 / M_PI) * (v + 0.044715 * v * v * v))));
            else if (op == RF_UNARY_GELU_ERF)
                ref[i] = (float)(0.5 * v * (1 + erf(v / sqrt(2.0))));
            else
                ref[i] = (float)(v / (1 + exp(-v)));
        }
        RF_CHECK(rf_op_unary(e.be, &ty, &tx, (rf_unary_op)op, &err) == 0);
        rf_tensor_download(e.be, &ty, y, (size_t)n * 4, &err);
        double nmse = rf_test_nmse(y, ref, (size_t)n);
        RF_CHECK_MSG(nmse < 1e-12, "unary %d: nmse %g", op, nmse);
        for (int64_t i = 0; i < n; i++)
            RF_CHECK_MSG(fabsf(y[i] - ref[i]) <= 1e-6f * (1.0f + fabsf(ref[i])),
                         "op %d x=%g: %g vs %g", op, x[i], y[i], ref[i]);
    }
    RF_CHECK_EQ_INT(rf_op_unary(e.be, &ty, &tx, RF_UNARY_COUNT, &err), RF_EINVAL);
    free(x), free(y), free(ref);
    s_env_free(&e);
}

RF_TEST(binary_scale_fill_copy)
{
    s_env e = s_env_new(2, 8u << 20);
    int64_t sa[3] = {3, 4, 5}, sb[1] = {5};
    float a[60], b[5], y[60];
    s_fill_rand(a, 60, 1.0f);
    s_fill_rand(b, 5, 1.0f);
    rf_tensor ta = s_tensor(&e, RF_DTYPE_F32, 3, sa, a), tb = s_tensor(&e, RF_DTYPE_F32, 1, sb, b);
    rf_tensor ty = s_tensor(&e, RF_DTYPE_F32, 3, sa, NULL);
    rf_error err = {0};
    RF_CHECK(rf_op_binary(e.be, &ty, &ta, &tb, RF_BINARY_MUL, &err) == 0);
    rf_tensor_download(e.be, &ty, y, sizeof(y), &err);
    for (int i = 0; i < 60; i++)
        RF_CHECK(y[i] == a[i] * b[i % 5]);
    RF_CHECK(rf_op_binary(e.be, &ty, &ta, &ta, RF_BINARY_SUB, &err) == 0);
    rf_tensor_download(e.be, &ty, y, sizeof(y), &err);
    for (int i = 0; i < 60; i++)
        RF_CHECK(y[i] == 0.0f);
    rf_tensor bad = s_tensor(&e, RF_DTYPE_F32, 1, (int64_t[]){4}, NULL);
    RF_CHECK_EQ_INT(rf_op_binary(e.be, &ty, &ta, &bad, RF_BINARY_ADD, &err), RF_ESHAPE);
    RF_CHECK(rf_op_scale(e.be, &ty, &ta, 2.0f, 1.0f, &err) == 0);
    rf_tensor_download(e.be, &ty, y, sizeof(y), &err);
    for (int i = 0; i < 60; i++)
        RF_CHECK(y[i] == 2.0f * a[i] + 1.0f);
    RF_CHECK(rf_op_fill(e.be, &ty, -3.5f, &err) == 0);
    rf_tensor_download(e.be, &ty, y, sizeof(y), &err);
    RF_CHECK(y[0] == -3.5f && y[59] == -3.5f);
    rf_tensor th = s_tensor(&e, RF_DTYPE_BF16, 3, sa, NULL);
    RF_CHECK(rf_op_copy(e.be, &th, &ta, &err) == 0);
    RF_CHECK(rf_op_copy(e.be, &ty, &th, &err) == 0);
    rf_tensor_download(e.be, &ty, y, sizeof(y), &err);
    for (int i = 0; i < 60; i++)
        RF_CHECK(y[i] == rf_bf16_to_f32(rf_f32_to_bf16(a[i])));
    s_env_free(&e);
}

RF_TEST(modulate_and_gated_add_per_batch)
{
    s_env e = s_env_new(2, 8u << 20);
    int64_t B = 2, T = 3, C = 4, M = 6;
    int64_t xs[3] = {B, T, C}, ms[3] = {B, M, C};
    float x[24], y[24], m[48], out[24];
    s_fill_rand(x, 24, 1.0f);
    s_fill_rand(y, 24, 1.0f);
    s_fill_rand(m, 48, 1.0f);
    rf_tensor tx = s_tensor(&e, RF_DTYPE_F32, 3, xs, x), ty = s_tensor(&e, RF_DTYPE_F32, 3, xs, y);
    rf_tensor tm = s_tensor(&e, RF_DTYPE_F32, 3, ms, m),
              to = s_tensor(&e, RF_DTYPE_F32, 3, xs, NULL);
    rf_error err = {0};
    RF_CHECK(rf_op_modulate(e.be, &to, &tx, &tm, 3, 4, &err) == 0);
    rf_tensor_download(e.be, &to, out, sizeof(out), &err);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int c = 0; c < C; c++) {
                int i = (b * T + t) * C + c;
                RF_CHECK(out[i] == x[i] * (1.0f + m[(b * M + 4) * C + c]) + m[(b * M + 3) * C + c]);
            }
    RF_CHECK(rf_op_gated_add(e.be, &tx, &ty, &tm, 5, &err) == 0);
    rf_tensor_download(e.be, &tx, out, sizeof(out), &err);
    for (int b = 0; b < B; b++)
        for (int i = 0; i < T * C; i++)
            RF_CHECK(out[b * T * C + i] ==
                     x[b * T * C + i] + y[b * T * C + i] * m[(b * M + 5) * C + i % C]);
    RF_CHECK_EQ_INT(rf_op_modulate(e.be, &to, &tx, &tm, 6, 0, &err), RF_ESHAPE);
    s_env_free(&e);
}

RF_TEST(patchify_orders_c_slowest_unpatchify_channel_fastest)
{
    s_env e = s_env_new(1, 8u << 20);
    int64_t B = 2, C = 3, F = 2, H = 4, W = 6, T = F * (H / 2) * (W / 2), V = C * 4;
    int64_t vs[5] = {B, C, F, H, W}, ts[3] = {B, T, V};
    size_t n = (size_t)(B * C * F * H * W);
    float *x = malloc(n * 4), *tok = malloc(n * 4), *back = malloc(n * 4);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)i;
    rf_tensor tx = s_tensor(&e, RF_DTYPE_F32, 5, vs, x),
              tt = s_tensor(&e, RF_DTYPE_F32, 3, ts, NULL);
    rf_error err = {0};
    RF_CHECK(rf_op_patchify(e.be, &tt, &tx, 1, 2, 2, &err) == 0);
    rf_tensor_download(e.be, &tt, tok, n * 4, &err);
    /* token (b=1, f=1, h=1, w=2), vector entry (c=2, kh=1, kw=0) */
    int64_t t = (1 * 2 + 1) * 3 + 2;
    RF_CHECK(tok[(1 * T + t) * V + 2 * 4 + 1 * 2 + 0] ==
             x[(((1 * C + 2) * F + 1) * H + 3) * W + 4]);
    /* unpatchify reads channel fastest: entry ((kh*2+kw)*C + c) */
    rf_tensor tv = s_tensor(&e, RF_DTYPE_F32, 5, vs, NULL);
    RF_CHECK(rf_op_unpatchify(e.be, &tv, &tt, 1, 2, 2, &err) == 0);
    rf_tensor_download(e.be, &tv, back, n * 4, &err);
    RF_CHECK(back[(((1 * C + 2) * F + 1) * H + 3) * W + 4] ==
             tok[(1 * T + t) * V + (1 * 2 + 0) * C + 2]);
    rf_tensor bad = s_tensor(&e, RF_DTYPE_F32, 5, (int64_t[]){B, C, F, 5, W}, NULL);
    RF_CHECK_EQ_INT(rf_op_patchify(e.be, &tt, &bad, 1, 2, 2, &err), RF_ESHAPE);
    free(x), free(tok), free(back);
    s_env_free(&e);
}

RF_TEST(arena_refuses_past_capacity_and_counts_allocations)
{
    rf_error err = {0};
    rf_backend *be = rf_backend_cpu_new(1, &err);
    uint64_t before = rf_kernels_alloc_count();
    rf_arena *a = rf_arena_new(be, 1000, &err);
    RF_CHECK(rf_kernels_alloc_count() == before + 1);
    rf_tensor t;
    RF_CHECK(rf_arena_tensor(a, &t, RF_DTYPE_F32, 1, (int64_t[]){100}, "small", &err) == 0);
    size_t mark = rf_arena_mark(a);
    RF_CHECK_EQ_INT(rf_arena_tensor(a, &t, RF_DTYPE_F32, 1, (int64_t[]){1000}, "big one", &err),
                    RF_ENOMEM);
    RF_CHECK_CONTAINS(err.msg, "big one");
    RF_CHECK_EQ_INT(rf_arena_mark(a), mark);
    RF_CHECK(rf_arena_tensor(a, &t, RF_DTYPE_F32, 1, (int64_t[]){120}, "fits", &err) == 0);
    rf_arena_reset(a, 0);
    RF_CHECK_EQ_INT(rf_arena_mark(a), 0);
    rf_arena_destroy(&a);
    rf_arena_destroy(&a); /* twice is safe */
    RF_CHECK(a == NULL);
    RF_CHECK(rf_backend_cpu_new(-1, &err) == NULL);
    RF_CHECK_CONTAINS(err.msg, "--threads");
    rf_backend_destroy(&be);
}

RF_TEST(blas_kernel_hint_respects_the_users_choice)
{
    const char *old = getenv("OPENBLAS_CORETYPE");
    char saved[64] = "";
    if (old)
        snprintf(saved, sizeof(saved), "%s", old);
    setenv("OPENBLAS_CORETYPE", "Haswell", 1);
    RF_CHECK(rf_cpu_blas_coretype_hint() == NULL);
    unsetenv("OPENBLAS_CORETYPE");
    const char *h = rf_cpu_blas_coretype_hint();
    RF_CHECK(h == NULL || !strcmp(h, "SkylakeX"));
    if (old)
        setenv("OPENBLAS_CORETYPE", saved, 1);
}
