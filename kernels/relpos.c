/* relpos.c - T5 relative position ops: the bucket helper and the checked op wrappers.
 *
 * (The wrappers of rf_op_rel_pos_bias and rf_op_attention_relbias live here rather than
 * in ops.c to keep this op family in one place; they follow ops.c's pattern: check
 * shapes and dtypes, then dispatch through the backend table.) Offsets (key - query) map to num_buckets buckets: half per direction when
 * bidirectional; exact buckets for small distances, then logarithmic ones up to
 * max_distance, then the last bucket. T5 (and Wan's umT5) compute the log bucket in
 * float32 as max_exact + trunc(log(n / max_exact) / log(max_distance / max_exact) *
 * (nb - max_exact)); that quotient is an exact integer at n = max_exact * r^k, where
 * float32 happens to be exact too. We compute in double and nudge by 1e-9 so those
 * points land on the integer, as exact arithmetic (and PyTorch) give; other n are
 * at least ~1e-3 away from an integer. Pure function, no state.
 */
#include "ops.h"

#include <math.h>
#include <stdio.h>

#define SHAPE_CAP 96

int64_t rf_rel_pos_bucket(int64_t rel, int64_t num_buckets, int bidirectional, int64_t max_distance)
{
    int64_t base = 0, n;
    if (bidirectional) {
        num_buckets /= 2;
        base = rel > 0 ? num_buckets : 0;
        n = rel < 0 ? -rel : rel;
    } else {
        n = rel < 0 ? -rel : 0;
    }
    const int64_t max_exact = num_buckets / 2;
    if (n < max_exact)
        return base + n;
    double v = log((double)n / (double)max_exact) / log((double)max_distance / (double)max_exact) *
               (double)(num_buckets - max_exact);
    double k = floor(v + 1e-9);
    int64_t large = max_exact + (k > (double)num_buckets ? num_buckets : (int64_t)k);
    if (large > num_buckets - 1)
        large = num_buckets - 1;
    return base + large;
}

static int s_unsupported(rf_backend *be, const char *op, rf_error *err)
{
    return rf_error_set(err, RF_EUNSUPPORTED, "%s: the %s backend does not implement this op", op,
                        rf_backend_name(be));
}

static int s_overlap(const rf_tensor *a, const rf_tensor *b)
{
    const char *a0 = a->data, *a1 = a0 + rf_tensor_nbytes(a);
    const char *b0 = b->data, *b1 = b0 + rf_tensor_nbytes(b);
    return a0 < b1 && b0 < a1;
}

int rf_op_rel_pos_bias(rf_backend *be, rf_tensor *y, const rf_tensor *table, int64_t lq,
                       int bidirectional, int64_t max_distance, rf_error *err)
{
    char s1[SHAPE_CAP], s2[SHAPE_CAP];
    if (y->dtype != RF_DTYPE_F32 || table->dtype != RF_DTYPE_F32 || y->ndim != 2 ||
        table->ndim != 2 || table->ne[1] != y->ne[0])
        return rf_error_set(err, RF_ESHAPE,
                            "rel_pos_bias: y is %s and table is %s; expected y [H, Lq+Lk-1] F32 "
                            "and table [buckets, H] F32",
                            rf_tensor_shape_str(y, s1, sizeof(s1)),
                            rf_tensor_shape_str(table, s2, sizeof(s2)));
    if (lq < 1 || y->ne[1] < lq)
        return rf_error_set(err, RF_ESHAPE, "rel_pos_bias: lq %lld does not fit y %s",
                            (long long)lq, rf_tensor_shape_str(y, s1, sizeof(s1)));
    int64_t nb = table->ne[0], exact = bidirectional ? nb / 4 : nb / 2;
    if (exact < 1 || max_distance <= exact)
        return rf_error_set(err, RF_EINVAL,
                            "rel_pos_bias: %lld buckets with max_distance %lld leave no exact "
                            "or no logarithmic range",
                            (long long)nb, (long long)max_distance);
    if (!be->ops->rel_pos_bias)
        return s_unsupported(be, "rel_pos_bias", err);
    return be->ops->rel_pos_bias(be->ctx, y, table, lq, bidirectional, max_distance, err);
}

int rf_op_attention_relbias(rf_backend *be, rf_tensor *out, const rf_tensor *q, const rf_tensor *k,
                            const rf_tensor *v, const rf_tensor *key_mask, const rf_tensor *rel,
                            float scale, rf_arena *scratch, rf_error *err)
{
    char s1[SHAPE_CAP], s2[SHAPE_CAP];
    const char *op = "attention_relbias";
    if (q->dtype != RF_DTYPE_F32 || k->dtype != RF_DTYPE_F32 || v->dtype != RF_DTYPE_F32 ||
        out->dtype != RF_DTYPE_F32 || q->ndim != 4 || k->ndim != 4 || !rf_tensor_same_shape(k, v) ||
        !rf_tensor_same_shape(out, q) || k->ne[0] != q->ne[0] || k->ne[2] != q->ne[2] ||
        k->ne[3] != q->ne[3])
        return rf_error_set(err, RF_ESHAPE,
                            "%s: q is %s and k is %s; expected F32 q, out [B,Lq,H,D] and k, v "
                            "[B,Lk,H,D]",
                            op, rf_tensor_shape_str(q, s1, sizeof(s1)),
                            rf_tensor_shape_str(k, s2, sizeof(s2)));
    if (rel->dtype != RF_DTYPE_F32 || rel->ndim != 2 || rel->ne[0] != q->ne[2] ||
        rel->ne[1] != q->ne[1] + k->ne[1] - 1)
        return rf_error_set(err, RF_ESHAPE, "%s: rel is %s, expected [%lld,%lld] F32", op,
                            rf_tensor_shape_str(rel, s1, sizeof(s1)), (long long)q->ne[2],
                            (long long)(q->ne[1] + k->ne[1] - 1));
    if (key_mask && (key_mask->dtype != RF_DTYPE_U8 ||
                     rf_tensor_numel(key_mask) != (size_t)(k->ne[0] * k->ne[1])))
        return rf_error_set(err, RF_ESHAPE, "%s: key_mask is %s, expected [%lld,%lld] U8", op,
                            rf_tensor_shape_str(key_mask, s1, sizeof(s1)), (long long)k->ne[0],
                            (long long)k->ne[1]);
    if (s_overlap(out, q) || s_overlap(out, k) || s_overlap(out, v) || s_overlap(out, rel))
        return rf_error_set(err, RF_EINVAL, "%s: out must not overlap q, k, v or rel", op);
    if (!isfinite(scale))
        return rf_error_set(err, RF_EINVAL, "%s: scale is not finite", op);
    if (!be->ops->attention_relbias)
        return s_unsupported(be, op, err);
    return be->ops->attention_relbias(be->ctx, out, q, k, v, key_mask, rel, scale, scratch, err);
}

size_t rf_op_attention_relbias_scratch(rf_backend *be, int64_t head_dim)
{
    return be->ops->scratch_attention_relbias
               ? be->ops->scratch_attention_relbias(be->ctx, head_dim)
               : 0;
}
