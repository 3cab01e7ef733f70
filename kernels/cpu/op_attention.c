/* op_attention.c - blocked attention with an online softmax (flash-attention style),
 * plain (the DiT) or with an additive relative-position bias (T5).
 *
 * One task per (batch, head, block of RF_ATT_BQ queries). A task walks the keys in
 * blocks of RF_ATT_BK: S = scale Q K^T (sgemm), for the biased form S[i, j] +=
 * rel[h, j - i + Lq - 1] (the bias depends only on the offset, so it is one
 * [H, Lq + Lk - 1] band from op_rel_pos_bias.c read as a sliding window, never an
 * [H, Lq, Lk] matrix), masked keys (key_mask 0) set to -inf, running row max m and sum l,
 * rescale the partial output by exp(m_old - m_new), then O += P V (sgemm). Per worker it
 * needs BQ*BK + BQ*D + 2*BQ floats of scratch, whatever the token count: memory is
 * O(tokens x D) for q, k, v, out and O(threads) for the rest, never O(Lq x Lk).
 * Q, K, V are read in place from [B, L, H, D] (row stride H*D). Never allocates.
 */
#include "cpu.h"

#include <cblas.h>
#include <math.h>

#ifndef RF_ATT_BQ
#define RF_ATT_BQ 64
#endif
#ifndef RF_ATT_BK
#define RF_ATT_BK 512
#endif

typedef struct {
    float *out;
    const float *q, *k, *v;
    const float *rel; /* [H, nrel] bias band, or NULL */
    const uint8_t *mask;
    float scale;
    int64_t b, lq, lk, h, d, nrel;
    int64_t nqb;
    float *scratch;
    size_t per_worker; /* floats */
} s_att;

static void s_task(void *p, int64_t t, int worker)
{
    const s_att *A = p;
    int64_t qb = t % A->nqb, hh = (t / A->nqb) % A->h, bb = t / (A->nqb * A->h);
    int64_t q0 = qb * RF_ATT_BQ, nq = A->lq - q0 < RF_ATT_BQ ? A->lq - q0 : RF_ATT_BQ;
    int64_t ld = A->h * A->d, d = A->d;
    float *S = A->scratch + (size_t)worker * A->per_worker;
    float *O = S + RF_ATT_BQ * RF_ATT_BK;
    float *m = O + RF_ATT_BQ * d;
    float *l = m + RF_ATT_BQ;
    const float *Q = A->q + (bb * A->lq + q0) * ld + hh * d;
    const float *K = A->k + bb * A->lk * ld + hh * d;
    const float *V = A->v + bb * A->lk * ld + hh * d;
    const float *rel = A->rel ? A->rel + hh * A->nrel : NULL;
    const uint8_t *mask = A->mask ? A->mask + bb * A->lk : NULL;
    for (int64_t i = 0; i < nq; i++) {
        m[i] = -INFINITY;
        l[i] = 0.0f;
    }
    for (int64_t i = 0; i < nq * d; i++)
        O[i] = 0.0f;
    for (int64_t k0 = 0; k0 < A->lk; k0 += RF_ATT_BK) {
        int64_t nk = A->lk - k0 < RF_ATT_BK ? A->lk - k0 : RF_ATT_BK;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq, (int)nk, (int)d, A->scale, Q,
                    (int)ld, K + k0 * ld, (int)ld, 0.0f, S, RF_ATT_BK);
        for (int64_t i = 0; i < nq; i++) {
            float *row = S + i * RF_ATT_BK;
            if (rel) {
                /* key k0 + j, query q0 + i: offset (k0 + j) - (q0 + i) */
                const float *band = rel + (k0 - (q0 + i) + A->lq - 1);
                for (int64_t j = 0; j < nk; j++)
                    row[j] += band[j];
            }
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
                    RF_ATT_BK, V + k0 * ld, (int)ld, 1.0f, O, (int)d);
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
    size_t n = RF_ATT_BQ * RF_ATT_BK + (size_t)RF_ATT_BQ * (size_t)d + 2 * RF_ATT_BQ;
    return (n + 15) / 16 * 16; /* keep each worker's block 64-byte aligned */
}

size_t rf_cpu_scratch_attention(void *ctx, int64_t batch, int64_t lq, int64_t lk, int64_t heads,
                                int64_t head_dim)
{
    (void)batch;
    (void)lq;
    (void)lk;
    (void)heads;
    return (size_t)rf_cpu_nthreads(ctx) * s_per_worker(head_dim) * sizeof(float) + 64;
}

/* Both public forms: rel NULL for plain attention. op names the op in errors. */
static int s_attention(void *ctx, rf_tensor *out, const rf_tensor *q, const rf_tensor *k,
                       const rf_tensor *v, const rf_tensor *key_mask, const rf_tensor *rel,
                       float scale, rf_arena *scratch, const char *op, rf_error *err)
{
    s_att A = {0};
    A.out = out->data;
    A.q = q->data;
    A.k = k->data;
    A.v = v->data;
    A.rel = rel ? rel->data : NULL;
    A.nrel = rel ? rel->ne[1] : 0;
    A.mask = key_mask ? key_mask->data : NULL;
    A.scale = scale;
    A.b = q->ne[0];
    A.lq = q->ne[1];
    A.h = q->ne[2];
    A.d = q->ne[3];
    A.lk = k->ne[1];
    if (A.b == 0 || A.lq == 0 || A.h == 0 || A.d == 0)
        return 0;
    if (A.lk == 0) {
        for (size_t i = 0; i < rf_tensor_numel(out); i++)
            A.out[i] = 0.0f;
        return 0;
    }
    A.per_worker = s_per_worker(A.d);
    size_t need = rf_cpu_scratch_attention(ctx, A.b, A.lq, A.lk, A.h, A.d);
    size_t mark = scratch ? rf_arena_mark(scratch) : 0;
    A.scratch = scratch ? rf_arena_alloc(scratch, need) : NULL;
    if (!A.scratch)
        return rf_error_set(err, RF_ENOMEM,
                            "%s: needs %zu bytes of scratch and the arena has less; size it "
                            "with rf_op_%s_scratch",
                            op, need, op);
    A.nqb = (A.lq + RF_ATT_BQ - 1) / RF_ATT_BQ;
    rf_cpu_parallel(ctx, A.b * A.h * A.nqb, s_task, &A);
    rf_arena_reset(scratch, mark);
    return 0;
}

int rf_cpu_attention(void *ctx, rf_tensor *out, const rf_tensor *q, const rf_tensor *k,
                     const rf_tensor *v, const rf_tensor *key_mask, float scale, rf_arena *scratch,
                     rf_error *err)
{
    return s_attention(ctx, out, q, k, v, key_mask, NULL, scale, scratch, "attention", err);
}

size_t rf_cpu_scratch_attention_relbias(void *ctx, int64_t head_dim)
{
    return rf_cpu_scratch_attention(ctx, 0, 0, 0, 0, head_dim);
}

int rf_cpu_attention_relbias(void *ctx, rf_tensor *out, const rf_tensor *q, const rf_tensor *k,
                             const rf_tensor *v, const rf_tensor *key_mask, const rf_tensor *rel,
                             float scale, rf_arena *scratch, rf_error *err)
{
    return s_attention(ctx, out, q, k, v, key_mask, rel, scale, scratch, "attention_relbias", err);
}
