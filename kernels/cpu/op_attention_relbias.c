/* op_attention_relbias.c - attention with an additive relative-position bias (T5).
 *
 * Like op_attention.c (one task per batch, head and block of RF_ARB_BQ queries; keys in
 * blocks of RF_ARB_BK; S = scale Q K^T by sgemm; online softmax; O += P V by sgemm),
 * plus, before the softmax, S[i, j] += rel[h, j - i + Lq - 1]: the bias depends only on
 * the offset, so it is one [H, Lq + Lk - 1] band (op_rel_pos_bias.c) read as a sliding
 * window, never an [H, Lq, Lk] matrix. Masked keys (key_mask 0) get no weight at all.
 * Scratch per worker: BQ*BK + BQ*D + 2*BQ floats. Never allocates.
 */
#include "cpu.h"

#include <cblas.h>
#include <math.h>

#define RF_ARB_BQ 64
#define RF_ARB_BK 512

typedef struct {
    float *out;
    const float *q, *k, *v, *rel;
    const uint8_t *mask;
    float scale;
    int64_t b, lq, lk, h, d, nrel;
    int64_t nqb;
    float *scratch;
    size_t per_worker; /* floats */
} s_arb;

static void s_task(void *p, int64_t t, int worker)
{
    const s_arb *A = p;
    int64_t qb = t % A->nqb, hh = (t / A->nqb) % A->h, bb = t / (A->nqb * A->h);
    int64_t q0 = qb * RF_ARB_BQ, nq = A->lq - q0 < RF_ARB_BQ ? A->lq - q0 : RF_ARB_BQ;
    int64_t ld = A->h * A->d, d = A->d;
    float *S = A->scratch + (size_t)worker * A->per_worker;
    float *O = S + RF_ARB_BQ * RF_ARB_BK;
    float *m = O + RF_ARB_BQ * d;
    float *l = m + RF_ARB_BQ;
    const float *Q = A->q + (bb * A->lq + q0) * ld + hh * d;
    const float *K = A->k + bb * A->lk * ld + hh * d;
    const float *V = A->v + bb * A->lk * ld + hh * d;
    const float *rel = A->rel + hh * A->nrel;
    const uint8_t *mask = A->mask ? A->mask + bb * A->lk : NULL;
    for (int64_t i = 0; i < nq; i++) {
        m[i] = -INFINITY;
        l[i] = 0.0f;
    }
    for (int64_t i = 0; i < nq * d; i++)
        O[i] = 0.0f;
    for (int64_t k0 = 0; k0 < A->lk; k0 += RF_ARB_BK) {
        int64_t nk = A->lk - k0 < RF_ARB_BK ? A->lk - k0 : RF_ARB_BK;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq, (int)nk, (int)d, A->scale, Q,
                    (int)ld, K + k0 * ld, (int)ld, 0.0f, S, RF_ARB_BK);
        for (int64_t i = 0; i < nq; i++) {
            float *row = S + i * RF_ARB_BK;
            /* key k0 + j, query q0 + i: offset (k0 + j) - (q0 + i) */
            const float *band = rel + (k0 - (q0 + i) + A->lq - 1);
            for (int64_t j = 0; j < nk; j++)
                row[j] += band[j];
            if (mask)
                for (int64_t j = 0; j < nk; j++)
                    if (!mask[k0 + j])
                        row[j] = -INFINITY;
            float mx = rf_cpu_max(row, nk);
            float mnew = mx > m[i] ? mx : m[i];
            if (mnew == -INFINITY) { /* every key so far masked */
                for (int64_t j = 0; j < nk; j++)
                    row[j] = 0.0f;
                continue;
            }
            float corr = m[i] == -INFINITY ? 0.0f : expf(m[i] - mnew);
            float sum = rf_cpu_exp_shift_sum(row, row, mnew, nk);
            if (mask) {
                sum = 0.0f;
                for (int64_t j = 0; j < nk; j++) {
                    if (!mask[k0 + j])
                        row[j] = 0.0f;
                    sum += row[j];
                }
            }
            l[i] = l[i] * corr + sum;
            m[i] = mnew;
            if (corr != 1.0f) {
                float *o = O + i * d;
                for (int64_t c = 0; c < d; c++)
                    o[c] *= corr;
            }
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nq, (int)d, (int)nk, 1.0f, S,
                    RF_ARB_BK, V + k0 * ld, (int)ld, 1.0f, O, (int)d);
    }
    float *dst = A->out + (bb * A->lq + q0) * ld + hh * d;
    for (int64_t i = 0; i < nq; i++) {
        float inv = l[i] > 0.0f ? 1.0f / l[i] : 0.0f;
        for (int64_t c = 0; c < d; c++)
            dst[i * ld + c] = O[i * d + c] * inv;
    }
}

static size_t s_per_worker(int64_t d)
{
    size_t n = RF_ARB_BQ * RF_ARB_BK + (size_t)RF_ARB_BQ * (size_t)d + 2 * RF_ARB_BQ;
    return (n + 15) / 16 * 16; /* keep each worker's block 64-byte aligned */
}

size_t rf_cpu_scratch_attention_relbias(void *ctx, int64_t head_dim)
{
    return (size_t)rf_cpu_nthreads(ctx) * s_per_worker(head_dim) * sizeof(float) + 64;
}

int rf_cpu_attention_relbias(void *ctx, rf_tensor *out, const rf_tensor *q, const rf_tensor *k,
                             const rf_tensor *v, const rf_tensor *key_mask, const rf_tensor *rel,
                             float scale, rf_arena *scratch, rf_error *err)
{
    s_arb A = {0};
    A.out = out->data;
    A.q = q->data;
    A.k = k->data;
    A.v = v->data;
    A.rel = rel->data;
    A.mask = key_mask ? key_mask->data : NULL;
    A.scale = scale;
    A.b = q->ne[0];
    A.lq = q->ne[1];
    A.h = q->ne[2];
    A.d = q->ne[3];
    A.lk = k->ne[1];
    A.nrel = rel->ne[1];
    if (A.b == 0 || A.lq == 0 || A.h == 0 || A.d == 0)
        return 0;
    if (A.lk == 0) {
        for (size_t i = 0; i < rf_tensor_numel(out); i++)
            A.out[i] = 0.0f;
        return 0;
    }
    A.per_worker = s_per_worker(A.d);
    size_t need = rf_cpu_scratch_attention_relbias(ctx, A.d);
    size_t mark = scratch ? rf_arena_mark(scratch) : 0;
    A.scratch = scratch ? rf_arena_alloc(scratch, need) : NULL;
    if (!A.scratch)
        return rf_error_set(err, RF_ENOMEM,
                            "attention_relbias: needs %zu bytes of scratch and the arena has "
                            "less; size it with rf_op_attention_relbias_scratch",
                            need);
    A.nqb = (A.lq + RF_ARB_BQ - 1) / RF_ARB_BQ;
    rf_cpu_parallel(ctx, A.b * A.h * A.nqb, s_task, &A);
    rf_arena_reset(scratch, mark);
    return 0;
}
