/* ops.c - argument checks for every op, then dispatch through the backend table.
 *
 * The checks live here, once, so every backend gets the same error messages and may
 * assume valid arguments. A NULL table entry is RF_EUNSUPPORTED naming the backend.
 * Nothing here touches tensor data or allocates.
 */
#include "ops.h"

#include <math.h>
#include <stdio.h>

#define SHAPE_CAP 96

static int s_unsupported(rf_backend *be, const char *op, rf_error *err)
{
    return rf_error_set(err, RF_EUNSUPPORTED, "%s: the %s backend does not implement this op", op,
                        rf_backend_name(be));
}

static int s_dtype(const char *op, const char *name, const rf_tensor *t, rf_dtype want,
                   rf_error *err)
{
    if (t->dtype == want)
        return 0;
    char s[SHAPE_CAP];
    return rf_error_set(err, RF_ESHAPE, "%s: %s is %s, expected dtype %s", op, name,
                        rf_tensor_shape_str(t, s, sizeof(s)), rf_dtype_name(want));
}

static int s_ndim(const char *op, const char *name, const rf_tensor *t, int ndim, rf_error *err)
{
    if (t->ndim == ndim)
        return 0;
    char s[SHAPE_CAP];
    return rf_error_set(err, RF_ESHAPE, "%s: %s is %s, expected %d dims", op, name,
                        rf_tensor_shape_str(t, s, sizeof(s)), ndim);
}

static int s_same(const char *op, const char *an, const rf_tensor *a, const char *bn,
                  const rf_tensor *b, rf_error *err)
{
    if (rf_tensor_same_shape(a, b))
        return 0;
    char s1[SHAPE_CAP], s2[SHAPE_CAP];
    return rf_error_set(err, RF_ESHAPE, "%s: %s is %s but %s is %s (shapes must match)", op, an,
                        rf_tensor_shape_str(a, s1, sizeof(s1)), bn,
                        rf_tensor_shape_str(b, s2, sizeof(s2)));
}

static int s_same_numel(const char *op, const rf_tensor *y, const rf_tensor *x, rf_error *err)
{
    if (rf_tensor_numel(y) == rf_tensor_numel(x))
        return 0;
    char s1[SHAPE_CAP], s2[SHAPE_CAP];
    return rf_error_set(err, RF_ESHAPE, "%s: y is %s but x is %s (element counts differ)", op,
                        rf_tensor_shape_str(y, s1, sizeof(s1)),
                        rf_tensor_shape_str(x, s2, sizeof(s2)));
}

static int s_vec(const char *op, const char *name, const rf_tensor *t, int64_t n, rf_error *err)
{
    if (!t)
        return 0;
    if (t->dtype == RF_DTYPE_F32 && rf_tensor_numel(t) == (size_t)n)
        return 0;
    char s[SHAPE_CAP];
    return rf_error_set(err, RF_ESHAPE, "%s: %s is %s, expected [%lld] F32", op, name,
                        rf_tensor_shape_str(t, s, sizeof(s)), (long long)n);
}

static int s_overlap(const rf_tensor *a, const rf_tensor *b)
{
    const char *a0 = a->data, *a1 = a0 + rf_tensor_nbytes(a);
    const char *b0 = b->data, *b1 = b0 + rf_tensor_nbytes(b);
    return a0 < b1 && b0 < a1;
}

static int s_float(rf_dtype dt)
{
    return dt == RF_DTYPE_F32 || dt == RF_DTYPE_BF16 || dt == RF_DTYPE_F16;
}

static int64_t s_last(const rf_tensor *t)
{
    return t->ne[t->ndim - 1];
}

int rf_op_linear(rf_backend *be, rf_tensor *y, const rf_tensor *x, const rf_tensor *w,
                 const rf_tensor *b, rf_arena *scratch, rf_error *err)
{
    const char *op = "linear";
    char s1[SHAPE_CAP], s2[SHAPE_CAP];
    int rc;
    if ((rc = s_dtype(op, "x", x, RF_DTYPE_F32, err)) ||
        (rc = s_dtype(op, "y", y, RF_DTYPE_F32, err)) || (rc = s_ndim(op, "w", w, 2, err)))
        return rc;
    if (!s_float(w->dtype))
        return rf_error_set(err, RF_ESHAPE, "linear: w is %s; weights must be F32, BF16 or F16",
                            rf_tensor_shape_str(w, s1, sizeof(s1)));
    if (w->ne[1] != s_last(x))
        return rf_error_set(
            err, RF_ESHAPE, "linear: w is %s but x is %s (w[1] must equal x's last dim)",
            rf_tensor_shape_str(w, s1, sizeof(s1)), rf_tensor_shape_str(x, s2, sizeof(s2)));
    if (s_last(y) != w->ne[0] || rf_tensor_rows(y) != rf_tensor_rows(x))
        return rf_error_set(err, RF_ESHAPE, "linear: y is %s but x is %s and w is [%lld,%lld]",
                            rf_tensor_shape_str(y, s1, sizeof(s1)),
                            rf_tensor_shape_str(x, s2, sizeof(s2)), (long long)w->ne[0],
                            (long long)w->ne[1]);
    if ((rc = s_vec(op, "b", b, w->ne[0], err)))
        return rc;
    if (s_overlap(y, x))
        return rf_error_set(err, RF_EINVAL, "linear: y must not overlap x");
    if (!be->ops->linear)
        return s_unsupported(be, op, err);
    return be->ops->linear(be->ctx, y, x, w, b, scratch, err);
}

size_t rf_op_linear_scratch(rf_backend *be, const rf_tensor *x, const rf_tensor *w)
{
    return be->ops->scratch_linear ? be->ops->scratch_linear(be->ctx, x, w) : 0;
}

int rf_op_layer_norm(rf_backend *be, rf_tensor *y, const rf_tensor *x, const rf_tensor *w,
                     const rf_tensor *b, float eps, rf_error *err)
{
    const char *op = "layer_norm";
    int rc;
    if ((rc = s_dtype(op, "x", x, RF_DTYPE_F32, err)) ||
        (rc = s_dtype(op, "y", y, RF_DTYPE_F32, err)) || (rc = s_same(op, "y", y, "x", x, err)) ||
        (rc = s_vec(op, "w", w, s_last(x), err)) || (rc = s_vec(op, "b", b, s_last(x), err)))
        return rc;
    if (!be->ops->layer_norm)
        return s_unsupported(be, op, err);
    return be->ops->layer_norm(be->ctx, y, x, w, b, eps, err);
}

int rf_op_sumsq_rows(rf_backend *be, rf_tensor *out, const rf_tensor *x, rf_error *err)
{
    const char *op = "sumsq_rows";
    int rc;
    if ((rc = s_dtype(op, "x", x, RF_DTYPE_F32, err)) ||
        (rc = s_vec(op, "out", out, (int64_t)rf_tensor_rows(x), err)))
        return rc;
    if (!be->ops->sumsq_rows)
        return s_unsupported(be, op, err);
    return be->ops->sumsq_rows(be->ctx, out, x, err);
}

int rf_op_rms_apply(rf_backend *be, rf_tensor *y, const rf_tensor *x, const rf_tensor *sumsq,
                    int64_t count, const rf_tensor *w, float eps, rf_error *err)
{
    const char *op = "rms_apply";
    int rc;
    if ((rc = s_dtype(op, "x", x, RF_DTYPE_F32, err)) ||
        (rc = s_dtype(op, "y", y, RF_DTYPE_F32, err)) || (rc = s_same(op, "y", y, "x", x, err)) ||
        (rc = s_vec(op, "sumsq", sumsq, (int64_t)rf_tensor_rows(x), err)) ||
        (rc = s_vec(op, "w", w, s_last(x), err)))
        return rc;
    if (count < s_last(x))
        return rf_error_set(err, RF_EINVAL, "rms_apply: count %lld is below the row length %lld",
                            (long long)count, (long long)s_last(x));
    if (!be->ops->rms_apply)
        return s_unsupported(be, op, err);
    return be->ops->rms_apply(be->ctx, y, x, sumsq, count, w, eps, err);
}

int rf_op_rms_norm(rf_backend *be, rf_tensor *y, const rf_tensor *x, rf_tensor *sumsq,
                   const rf_tensor *w, float eps, rf_error *err)
{
    int rc = rf_op_sumsq_rows(be, sumsq, x, err);
    if (rc)
        return rc;
    return rf_op_rms_apply(be, y, x, sumsq, s_last(x), w, eps, err);
}

int rf_op_rope(rf_backend *be, rf_tensor *y, const rf_tensor *x, const rf_tensor *cos_t,
               const rf_tensor *sin_t, rf_error *err)
{
    const char *op = "rope";
    char s1[SHAPE_CAP], s2[SHAPE_CAP];
    int rc;
    if ((rc = s_dtype(op, "x", x, RF_DTYPE_F32, err)) || (rc = s_ndim(op, "x", x, 4, err)) ||
        (rc = s_same(op, "y", y, "x", x, err)) || (rc = s_dtype(op, "y", y, RF_DTYPE_F32, err)) ||
        (rc = s_same(op, "cos", cos_t, "sin", sin_t, err)) ||
        (rc = s_ndim(op, "cos", cos_t, 2, err)))
        return rc;
    if (x->ne[3] % 2 || cos_t->ne[0] != x->ne[1] || cos_t->ne[1] != x->ne[3] / 2 ||
        (cos_t->dtype != RF_DTYPE_F64 && cos_t->dtype != RF_DTYPE_F32) ||
        cos_t->dtype != sin_t->dtype)
        return rf_error_set(
            err, RF_ESHAPE,
            "rope: tables are %s for x %s; expected [T, D/2] F64 or F32 with D even",
            rf_tensor_shape_str(cos_t, s1, sizeof(s1)), rf_tensor_shape_str(x, s2, sizeof(s2)));
    if (!be->ops->rope)
        return s_unsupported(be, op, err);
    return be->ops->rope(be->ctx, y, x, cos_t, sin_t, err);
}

int rf_op_attention(rf_backend *be, rf_tensor *out, const rf_tensor *q, const rf_tensor *k,
                    const rf_tensor *v, const rf_tensor *key_mask, float scale, rf_arena *scratch,
                    rf_error *err)
{
    const char *op = "attention";
    char s1[SHAPE_CAP], s2[SHAPE_CAP];
    int rc;
    if ((rc = s_dtype(op, "q", q, RF_DTYPE_F32, err)) ||
        (rc = s_dtype(op, "k", k, RF_DTYPE_F32, err)) ||
        (rc = s_dtype(op, "v", v, RF_DTYPE_F32, err)) ||
        (rc = s_dtype(op, "out", out, RF_DTYPE_F32, err)) || (rc = s_ndim(op, "q", q, 4, err)) ||
        (rc = s_same(op, "k", k, "v", v, err)) || (rc = s_same(op, "out", out, "q", q, err)) ||
        (rc = s_ndim(op, "k", k, 4, err)))
        return rc;
    if (k->ne[0] != q->ne[0] || k->ne[2] != q->ne[2] || k->ne[3] != q->ne[3])
        return rf_error_set(
            err, RF_ESHAPE, "attention: q is %s and k is %s; batch, heads and head_dim must match",
            rf_tensor_shape_str(q, s1, sizeof(s1)), rf_tensor_shape_str(k, s2, sizeof(s2)));
    if (key_mask && (key_mask->dtype != RF_DTYPE_U8 ||
                     rf_tensor_numel(key_mask) != (size_t)(k->ne[0] * k->ne[1])))
        return rf_error_set(err, RF_ESHAPE, "attention: key_mask is %s, expected [%lld,%lld] U8",
                            rf_tensor_shape_str(key_mask, s1, sizeof(s1)), (long long)k->ne[0],
                            (long long)k->ne[1]);
    if (s_overlap(out, q) || s_overlap(out, k) || s_overlap(out, v))
        return rf_error_set(err, RF_EINVAL, "attention: out must not overlap q, k or v");
    if (!isfinite(scale))
        return rf_error_set(err, RF_EINVAL, "attention: scale is not finite");
    if (!be->ops->attention)
        return s_unsupported(be, op, err);
    return be->ops->attention(be->ctx, out, q, k, v, key_mask, scale, scratch, err);
}

size_t rf_op_attention_scratch(rf_backend *be, int64_t batch, int64_t lq, int64_t lk, int64_t heads,
                               int64_t head_dim)
{
    return be->ops->scratch_attention
               ? be->ops->scratch_attention(be->ctx, batch, lq, lk, heads, head_dim)
               : 0;
}

int rf_op_unary(rf_backend *be, rf_tensor *y, const rf_tensor *x, rf_unary_op op_kind,
                rf_error *err)
{
    const char *op = "unary";
    int rc;
    if ((rc = s_dtype(op, "x", x, RF_DTYPE_F32, err)) ||
        (rc = s_dtype(op, "y", y, RF_DTYPE_F32, err)) || (rc = s_same_numel(op, y, x, err)))
        return rc;
    if ((int)op_kind < 0 || op_kind >= RF_UNARY_COUNT)
        return rf_error_set(err, RF_EINVAL, "unary: unknown op %d", (int)op_kind);
    if (!be->ops->unary)
        return s_unsupported(be, op, err);
    return be->ops->unary(be->ctx, y, x, op_kind, err);
}

int rf_op_binary(rf_backend *be, rf_tensor *y, const rf_tensor *a, const rf_tensor *b,
                 rf_binary_op op_kind, rf_error *err)
{
    const char *op = "binary";
    char s1[SHAPE_CAP], s2[SHAPE_CAP];
    int rc;
    if ((rc = s_dtype(op, "a", a, RF_DTYPE_F32, err)) ||
        (rc = s_dtype(op, "b", b, RF_DTYPE_F32, err)) ||
        (rc = s_dtype(op, "y", y, RF_DTYPE_F32, err)) || (rc = s_same(op, "y", y, "a", a, err)))
        return rc;
    int ok = b->ndim <= a->ndim;
    for (int i = 0; ok && i < b->ndim; i++)
        ok = b->ne[b->ndim - 1 - i] == a->ne[a->ndim - 1 - i];
    if (!ok)
        return rf_error_set(
            err, RF_ESHAPE, "binary: b is %s but a is %s; b must equal a's trailing dims",
            rf_tensor_shape_str(b, s1, sizeof(s1)), rf_tensor_shape_str(a, s2, sizeof(s2)));
    if ((int)op_kind < 0 || op_kind >= RF_BINARY_COUNT)
        return rf_error_set(err, RF_EINVAL, "binary: unknown op %d", (int)op_kind);
    if (!be->ops->binary)
        return s_unsupported(be, op, err);
    return be->ops->binary(be->ctx, y, a, b, op_kind, err);
}

int rf_op_scale(rf_backend *be, rf_tensor *y, const rf_tensor *x, float alpha, float beta,
                rf_error *err)
{
    const char *op = "scale";
    int rc;
    if ((rc = s_dtype(op, "x", x, RF_DTYPE_F32, err)) ||
        (rc = s_dtype(op, "y", y, RF_DTYPE_F32, err)) || (rc = s_same_numel(op, y, x, err)))
        return rc;
    if (!be->ops->scale)
        return s_unsupported(be, op, err);
    return be->ops->scale(be->ctx, y, x, alpha, beta, err);
}

int rf_op_fill(rf_backend *be, rf_tensor *y, float value, rf_error *err)
{
    int rc = s_dtype("fill", "y", y, RF_DTYPE_F32, err);
    if (rc)
        return rc;
    if (!be->ops->fill)
        return s_unsupported(be, "fill", err);
    return be->ops->fill(be->ctx, y, value, err);
}

int rf_op_copy(rf_backend *be, rf_tensor *dst, const rf_tensor *src, rf_error *err)
{
    char s1[SHAPE_CAP], s2[SHAPE_CAP];
    if (!s_float(dst->dtype) || !s_float(src->dtype) ||
        rf_tensor_numel(dst) != rf_tensor_numel(src))
        return rf_error_set(
            err, RF_ESHAPE, "copy: dst is %s and src is %s; same element count, F32/BF16/F16",
            rf_tensor_shape_str(dst, s1, sizeof(s1)), rf_tensor_shape_str(src, s2, sizeof(s2)));
    if (!be->ops->copy)
        return s_unsupported(be, "copy", err);
    return be->ops->copy(be->ctx, dst, src, err);
}

static int s_check_mod(const char *op, const rf_tensor *x, const rf_tensor *mod, int i0, int i1,
                       rf_error *err)
{
    char s1[SHAPE_CAP], s2[SHAPE_CAP];
    int rc;
    if ((rc = s_dtype(op, "x", x, RF_DTYPE_F32, err)) || (rc = s_ndim(op, "x", x, 3, err)) ||
        (rc = s_dtype(op, "mod", mod, RF_DTYPE_F32, err)) || (rc = s_ndim(op, "mod", mod, 3, err)))
        return rc;
    if (mod->ne[0] != x->ne[0] || mod->ne[2] != x->ne[2] || i0 < 0 || i1 < 0 || i0 >= mod->ne[1] ||
        i1 >= mod->ne[1])
        return rf_error_set(err, RF_ESHAPE,
                            "%s: mod is %s for x %s (indices %d, %d); expected [B, M, C] with "
                            "indices below M",
                            op, rf_tensor_shape_str(mod, s1, sizeof(s1)),
                            rf_tensor_shape_str(x, s2, sizeof(s2)), i0, i1);
    return 0;
}

int rf_op_modulate(rf_backend *be, rf_tensor *y, const rf_tensor *x, const rf_tensor *mod,
                   int shift_idx, int scale_idx, rf_error *err)
{
    int rc;
    if ((rc = s_check_mod("modulate", x, mod, shift_idx, scale_idx, err)) ||
        (rc = s_same("modulate", "y", y, "x", x, err)) ||
        (rc = s_dtype("modulate", "y", y, RF_DTYPE_F32, err)))
        return rc;
    if (!be->ops->modulate)
        return s_unsupported(be, "modulate", err);
    return be->ops->modulate(be->ctx, y, x, mod, shift_idx, scale_idx, err);
}

int rf_op_gated_add(rf_backend *be, rf_tensor *x, const rf_tensor *y, const rf_tensor *mod,
                    int gate_idx, rf_error *err)
{
    int rc;
    if ((rc = s_check_mod("gated_add", x, mod, gate_idx, gate_idx, err)) ||
        (rc = s_same("gated_add", "y", y, "x", x, err)) ||
        (rc = s_dtype("gated_add", "y", y, RF_DTYPE_F32, err)))
        return rc;
    if (!be->ops->gated_add)
        return s_unsupported(be, "gated_add", err);
    return be->ops->gated_add(be->ctx, x, y, mod, gate_idx, err);
}

static int s_check_patch(const char *op, const rf_tensor *vol, const rf_tensor *tok, int pt, int ph,
                         int pw, rf_error *err)
{
    char s1[SHAPE_CAP], s2[SHAPE_CAP];
    int rc;
    if ((rc = s_dtype(op, "volume", vol, RF_DTYPE_F32, err)) ||
        (rc = s_dtype(op, "tokens", tok, RF_DTYPE_F32, err)) ||
        (rc = s_ndim(op, "volume", vol, 5, err)) || (rc = s_ndim(op, "tokens", tok, 3, err)))
        return rc;
    if (pt < 1 || ph < 1 || pw < 1 || vol->ne[2] % pt || vol->ne[3] % ph || vol->ne[4] % pw ||
        tok->ne[0] != vol->ne[0] ||
        tok->ne[1] != (vol->ne[2] / pt) * (vol->ne[3] / ph) * (vol->ne[4] / pw) ||
        tok->ne[2] != vol->ne[1] * pt * ph * pw)
        return rf_error_set(err, RF_ESHAPE,
                            "%s: volume %s and tokens %s do not match patch (%d,%d,%d); F, H, W "
                            "must be multiples of the patch",
                            op, rf_tensor_shape_str(vol, s1, sizeof(s1)),
                            rf_tensor_shape_str(tok, s2, sizeof(s2)), pt, ph, pw);
    return 0;
}

int rf_op_patchify(rf_backend *be, rf_tensor *y, const rf_tensor *x, int pt, int ph, int pw,
                   rf_error *err)
{
    int rc = s_check_patch("patchify", x, y, pt, ph, pw, err);
    if (rc)
        return rc;
    if (!be->ops->patchify)
        return s_unsupported(be, "patchify", err);
    return be->ops->patchify(be->ctx, y, x, pt, ph, pw, err);
}

int rf_op_unpatchify(rf_backend *be, rf_tensor *y, const rf_tensor *x, int pt, int ph, int pw,
                     rf_error *err)
{
    int rc = s_check_patch("unpatchify", y, x, pt, ph, pw, err);
    if (rc)
        return rc;
    if (!be->ops->unpatchify)
        return s_unsupported(be, "unpatchify", err);
    return be->ops->unpatchify(be->ctx, y, x, pt, ph, pw, err);
}

void rf_rope3d_tables(double *cos_t, double *sin_t, int64_t f, int64_t h, int64_t w,
                      int64_t head_dim, double theta)
{
    int64_t half = head_dim / 2;
    int64_t p1 = half / 3, p0 = half - 2 * p1;
    int64_t t = 0;
    for (int64_t fi = 0; fi < f; fi++)
        for (int64_t hi = 0; hi < h; hi++)
            for (int64_t wi = 0; wi < w; wi++, t++)
                for (int64_t i = 0; i < half; i++) {
                    int64_t pos, j, da;
                    if (i < p0) {
                        pos = fi, j = i, da = 2 * p0;
                    } else if (i < p0 + p1) {
                        pos = hi, j = i - p0, da = 2 * p1;
                    } else {
                        pos = wi, j = i - p0 - p1, da = 2 * p1;
                    }
                    double freq = pow(theta, -(double)(2 * j) / (double)da);
                    double ang = (double)pos * freq;
                    cos_t[t * half + i] = cos(ang);
                    sin_t[t * half + i] = sin(ang);
                }
}

size_t rf_op_conv3d_scratch(rf_backend *be, const rf_tensor *y, const rf_tensor *w,
                            const rf_conv3d_params *p)
{
    return be->ops->scratch_conv3d ? be->ops->scratch_conv3d(be->ctx, y, w, p) : 0;
}

int rf_op_conv3d(rf_backend *be, rf_tensor *y, const rf_tensor *prev, const rf_tensor *x,
                 const rf_tensor *w, const rf_tensor *b, const rf_conv3d_params *p,
                 rf_arena *scratch, rf_error *err)
{
    const char *op = "conv3d";
    char s1[SHAPE_CAP], s2[SHAPE_CAP], s3[SHAPE_CAP];
    int rc;
    if ((rc = s_dtype(op, "x", x, RF_DTYPE_F32, err)) || (rc = s_ndim(op, "x", x, 4, err)) ||
        (rc = s_dtype(op, "y", y, RF_DTYPE_F32, err)) || (rc = s_ndim(op, "y", y, 4, err)) ||
        (rc = s_dtype(op, "w", w, RF_DTYPE_F32, err)) || (rc = s_ndim(op, "w", w, 5, err)))
        return rc;
    if (p->st < 1 || p->sh < 1 || p->sw < 1 || p->pad_top < 0 || p->pad_bottom < 0 ||
        p->pad_left < 0 || p->pad_right < 0 || (p->up2 != 0 && p->up2 != 1))
        return rf_error_set(err, RF_EINVAL, "conv3d: strides must be >= 1, pads >= 0, up2 0 or 1");
    int64_t tp = 0;
    if (prev) {
        if ((rc = s_dtype(op, "prev", prev, RF_DTYPE_F32, err)) ||
            (rc = s_ndim(op, "prev", prev, 4, err)))
            return rc;
        if (prev->ne[1] != x->ne[1] || prev->ne[2] != x->ne[2] || prev->ne[3] != x->ne[3])
            return rf_error_set(err, RF_ESHAPE, "conv3d: prev %s does not match x %s frames",
                                rf_tensor_shape_str(prev, s1, sizeof(s1)),
                                rf_tensor_shape_str(x, s2, sizeof(s2)));
        tp = prev->ne[0];
    }
    int64_t kt = w->ne[1], kh = w->ne[2], kw = w->ne[3], up = p->up2 ? 2 : 1;
    int64_t hi = x->ne[1] * up + p->pad_top + p->pad_bottom,
            wi = x->ne[2] * up + p->pad_left + p->pad_right;
    int64_t tv = tp + x->ne[0];
    if (w->ne[4] != x->ne[3] || tv < kt || hi < kh || wi < kw || y->ne[3] != w->ne[0] ||
        y->ne[0] != (tv - kt) / p->st + 1 || y->ne[1] != (hi - kh) / p->sh + 1 ||
        y->ne[2] != (wi - kw) / p->sw + 1)
        return rf_error_set(err, RF_ESHAPE,
                            "conv3d: y %s, x %s (+%lld cached frames), w %s do not fit "
                            "(strides %d,%d,%d, pads %d,%d,%d,%d, up2 %d)",
                            rf_tensor_shape_str(y, s1, sizeof(s1)),
                            rf_tensor_shape_str(x, s2, sizeof(s2)), (long long)tp,
                            rf_tensor_shape_str(w, s3, sizeof(s3)), p->st, p->sh, p->sw, p->pad_top,
                            p->pad_bottom, p->pad_left, p->pad_right, p->up2);
    if (b && (rc = s_vec(op, "b", b, w->ne[0], err)))
        return rc;
    if (s_overlap(y, x) || (prev && s_overlap(y, prev)))
        return rf_error_set(err, RF_EINVAL, "conv3d: y must not alias x or prev");
    if (!be->ops->conv3d)
        return s_unsupported(be, op, err);
    return be->ops->conv3d(be->ctx, y, prev, x, w, b, p, scratch, err);
}
