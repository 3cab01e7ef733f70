/* test_ops_relpos.c - T5 relative position ops of the CPU backend.
 *
 * rf_rel_pos_bucket against PyTorch's buckets (tests/fixtures/t5_relpos, written by
 * tools/t5/make_bucket_fixture.py with Wan's float32 formula) for umT5's settings and
 * others; rf_op_rel_pos_bias against a direct gather; rf_op_attention_relbias against a
 * plain double-precision softmax with the bias, masks (one batch padded, one fully
 * masked), more keys than one key block, several query blocks and Lq != Lk; wrong shapes
 * refused with messages naming them.
 */
#include "rf_test.h"

#include "arena.h"
#include "backend.h"
#include "cpu/cpu.h"
#include "ops.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static uint64_t s_rng = 0x2545F4914F6CDD1Dull;

static float s_rand(void)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return (float)((double)(s_rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

RF_TEST(buckets_match_pytorch)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/t5_relpos/buckets.txt", rf_test_fixtures());
    FILE *f = fopen(path, "r");
    RF_CHECK_MSG(f, "%s missing", path);
    long nb, md, bi;
    int sets = 0;
    while (fscanf(f, "%ld %ld %ld", &nb, &md, &bi) == 3) {
        for (int64_t rel = -600; rel <= 600; rel++) {
            long want;
            RF_CHECK(fscanf(f, "%ld", &want) == 1);
            int64_t got = rf_rel_pos_bucket(rel, nb, (int)bi, md);
            RF_CHECK_MSG(got == want, "nb %ld md %ld bidir %ld rel %lld: got %lld want %ld", nb, md,
                         bi, (long long)rel, (long long)got, want);
        }
        sets++;
    }
    fclose(f);
    RF_CHECK_EQ_INT(sets, 5);
}

typedef struct {
    rf_backend *be;
    rf_arena *arena;
} s_env;

static s_env s_env_new(int threads, size_t bytes)
{
    s_env e;
    rf_error err = {0};
    e.be = rf_backend_cpu_new(threads, &err);
    RF_CHECK_MSG(e.be, "%s", err.msg);
    e.arena = rf_arena_new(e.be, bytes, &err);
    RF_CHECK_MSG(e.arena, "%s", err.msg);
    return e;
}

static rf_tensor s_tensor(s_env *e, rf_dtype dt, int ndim, const int64_t *shape, const void *host)
{
    rf_tensor t;
    rf_error err = {0};
    RF_CHECK_MSG(rf_arena_tensor(e->arena, &t, dt, ndim, shape, "test", &err) == 0, "%s", err.msg);
    if (host)
        RF_CHECK(rf_tensor_upload(e->be, &t, host, rf_tensor_nbytes(&t), &err) == 0);
    return t;
}

RF_TEST(rel_pos_bias_gathers_the_table_by_bucket)
{
    s_env e = s_env_new(2, 8u << 20);
    const int64_t nb = 32, H = 5, lq = 150, lk = 170, n = lq + lk - 1;
    float *table = malloc(sizeof(float) * nb * H), *got = malloc(sizeof(float) * H * n);
    for (int64_t i = 0; i < nb * H; i++)
        table[i] = s_rand();
    int64_t ts[2] = {nb, H}, ys[2] = {H, n};
    rf_tensor tt = s_tensor(&e, RF_DTYPE_F32, 2, ts, table);
    rf_tensor y = s_tensor(&e, RF_DTYPE_F32, 2, ys, NULL);
    rf_error err = {0};
    RF_CHECK_MSG(rf_op_rel_pos_bias(e.be, &y, &tt, lq, 1, 128, &err) == 0, "%s", err.msg);
    RF_CHECK(rf_tensor_download(e.be, &y, got, sizeof(float) * H * n, &err) == 0);
    for (int64_t i = 0; i < lq; i += 7)
        for (int64_t j = 0; j < lk; j += 5)
            for (int64_t h = 0; h < H; h++) {
                int64_t b = rf_rel_pos_bucket(j - i, nb, 1, 128);
                RF_CHECK(got[h * n + (j - i + lq - 1)] == table[b * H + h]);
            }
    /* hostile: table heads != y rows, too few buckets, lq past the band */
    int64_t bad_s[2] = {H + 1, n};
    rf_tensor bad = s_tensor(&e, RF_DTYPE_F32, 2, bad_s, NULL);
    RF_CHECK_EQ_INT(rf_op_rel_pos_bias(e.be, &bad, &tt, lq, 1, 128, &err), RF_ESHAPE);
    RF_CHECK_CONTAINS(err.msg, "rel_pos_bias");
    RF_CHECK_EQ_INT(rf_op_rel_pos_bias(e.be, &y, &tt, n + 1, 1, 128, &err), RF_ESHAPE);
    int64_t small_s[2] = {3, H};
    rf_tensor small = s_tensor(&e, RF_DTYPE_F32, 2, small_s, NULL);
    RF_CHECK_EQ_INT(rf_op_rel_pos_bias(e.be, &y, &small, lq, 1, 128, &err), RF_EINVAL);
    free(table);
    free(got);
    rf_arena_destroy(&e.arena);
    rf_backend_destroy(&e.be);
}

/* out [B,Lq,H,D] by a plain double softmax(scale q.k + rel, masked). */
static void s_naive(float *out, const float *q, const float *k, const float *v, const float *rel,
                    const uint8_t *mask, float scale, int64_t B, int64_t Lq, int64_t Lk, int64_t H,
                    int64_t D)
{
    double *p = malloc(sizeof(double) * (size_t)Lk);
    const int64_t nrel = Lq + Lk - 1;
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < Lq; i++) {
                double mx = -INFINITY, sum = 0;
                for (int64_t j = 0; j < Lk; j++) {
                    if (mask && !mask[b * Lk + j]) {
                        p[j] = -INFINITY;
                        continue;
                    }
                    double s = 0;
                    for (int64_t c = 0; c < D; c++)
                        s += (double)q[((b * Lq + i) * H + h) * D + c] *
                             (double)k[((b * Lk + j) * H + h) * D + c];
                    p[j] = scale * s + rel[h * nrel + (j - i + Lq - 1)];
                    if (p[j] > mx)
                        mx = p[j];
                }
                for (int64_t j = 0; j < Lk; j++) {
                    p[j] = isinf(p[j]) ? 0.0 : exp(p[j] - mx);
                    sum += p[j];
                }
                for (int64_t c = 0; c < D; c++) {
                    double o = 0;
                    for (int64_t j = 0; j < Lk; j++)
                        o += p[j] * (double)v[((b * Lk + j) * H + h) * D + c];
                    out[((b * Lq + i) * H + h) * D + c] = sum > 0 ? (float)(o / sum) : 0.0f;
                }
            }
    free(p);
}

static void s_attention_case(int threads, int64_t B, int64_t Lq, int64_t Lk, int64_t H, int64_t D,
                             float scale, int masked)
{
    s_env e = s_env_new(threads, 64u << 20);
    size_t nq = (size_t)(B * Lq * H * D), nk = (size_t)(B * Lk * H * D);
    size_t nrel = (size_t)(H * (Lq + Lk - 1));
    float *q = malloc(sizeof(float) * nq), *k = malloc(sizeof(float) * nk);
    float *v = malloc(sizeof(float) * nk), *rel = malloc(sizeof(float) * nrel);
    float *got = malloc(sizeof(float) * nq), *want = malloc(sizeof(float) * nq);
    uint8_t *mask = malloc((size_t)(B * Lk));
    for (size_t i = 0; i < nq; i++)
        q[i] = s_rand();
    for (size_t i = 0; i < nk; i++) {
        k[i] = s_rand();
        v[i] = s_rand();
    }
    for (size_t i = 0; i < nrel; i++)
        rel[i] = 3.0f * s_rand();
    for (int64_t b = 0; b < B; b++)
        for (int64_t j = 0; j < Lk; j++) /* batch 0 real, 1 padded past 60%, 2 all masked */
            mask[b * Lk + j] = b == 0 || (b == 1 && j < Lk * 6 / 10);
    int64_t qs[4] = {B, Lq, H, D}, ks[4] = {B, Lk, H, D}, rs[2] = {H, Lq + Lk - 1}, ms[2] = {B, Lk};
    rf_tensor tq = s_tensor(&e, RF_DTYPE_F32, 4, qs, q), tk = s_tensor(&e, RF_DTYPE_F32, 4, ks, k);
    rf_tensor tv = s_tensor(&e, RF_DTYPE_F32, 4, ks, v),
              tr = s_tensor(&e, RF_DTYPE_F32, 2, rs, rel);
    rf_tensor tm = s_tensor(&e, RF_DTYPE_U8, 2, ms, mask),
              to = s_tensor(&e, RF_DTYPE_F32, 4, qs, NULL);
    rf_error err = {0};
    int rc = rf_op_attention_relbias(e.be, &to, &tq, &tk, &tv, masked ? &tm : NULL, &tr, scale,
                                     e.arena, &err);
    RF_CHECK_MSG(rc == 0, "%s", err.msg);
    RF_CHECK(rf_tensor_download(e.be, &to, got, sizeof(float) * nq, &err) == 0);
    s_naive(want, q, k, v, rel, masked ? mask : NULL, scale, B, Lq, Lk, H, D);
    double nmse = rf_test_nmse(got, want, nq);
    RF_CHECK_MSG(nmse < 1e-10, "B%lld Lq%lld Lk%lld H%lld D%lld: nmse %g", (long long)B,
                 (long long)Lq, (long long)Lk, (long long)H, (long long)D, nmse);
    if (masked && B > 2)
        for (size_t i = (size_t)(2 * Lq * H * D); i < nq; i++)
            RF_CHECK(got[i] == 0.0f); /* every key masked: zeros */
    free(q);
    free(k);
    free(v);
    free(rel);
    free(got);
    free(want);
    free(mask);
    rf_arena_destroy(&e.arena);
    rf_backend_destroy(&e.be);
}

RF_TEST(attention_relbias_matches_naive_softmax)
{
    s_attention_case(1, 1, 7, 7, 2, 16, 1.0f, 0);
    s_attention_case(2, 3, 70, 70, 3, 8, 1.0f, 1);   /* two query blocks, masks */
    s_attention_case(2, 3, 33, 600, 2, 5, 0.25f, 1); /* keys past one block, odd D */
    s_attention_case(2, 1, 130, 1, 1, 64, 1.0f, 0);  /* one key */
}

RF_TEST(attention_relbias_rejects_bad_shapes)
{
    s_env e = s_env_new(1, 8u << 20);
    int64_t qs[4] = {1, 4, 2, 8}, ks[4] = {1, 6, 2, 8}, rs[2] = {2, 9}, bad_rs[2] = {2, 8};
    rf_tensor q = s_tensor(&e, RF_DTYPE_F32, 4, qs, NULL),
              k = s_tensor(&e, RF_DTYPE_F32, 4, ks, NULL);
    rf_tensor v = s_tensor(&e, RF_DTYPE_F32, 4, ks, NULL),
              o = s_tensor(&e, RF_DTYPE_F32, 4, qs, NULL);
    rf_tensor r = s_tensor(&e, RF_DTYPE_F32, 2, rs, NULL);
    rf_tensor rb = s_tensor(&e, RF_DTYPE_F32, 2, bad_rs, NULL);
    rf_error err = {0};
    RF_CHECK_EQ_INT(rf_op_attention_relbias(e.be, &o, &q, &k, &v, NULL, &rb, 1.0f, e.arena, &err),
                    RF_ESHAPE);
    RF_CHECK_CONTAINS(err.msg, "rel is [2,8]");
    RF_CHECK_EQ_INT(rf_op_attention_relbias(e.be, &o, &q, &q, &v, NULL, &r, 1.0f, e.arena, &err),
                    RF_ESHAPE);
    RF_CHECK_EQ_INT(rf_op_attention_relbias(e.be, &q, &q, &k, &v, NULL, &r, 1.0f, e.arena, &err),
                    RF_EINVAL); /* out aliases q */
    RF_CHECK_EQ_INT(
        rf_op_attention_relbias(e.be, &o, &q, &k, &v, NULL, &r, INFINITY, e.arena, &err),
        RF_EINVAL);
    rf_arena_destroy(&e.arena);
    rf_backend_destroy(&e.be);
}
