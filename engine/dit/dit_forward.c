/* dit_forward.c - the Wan DiT forward pass (WAN_SPEC.md §1), one rank of a TP group.
 *
 * Every intermediate comes from the model's arena: s_layout lays the activations out
 * for (batch, tokens), in "measure" mode (no arena) it only sums their sizes, which is
 * how rf_dit_reserve sizes the arena; the ops' own scratch is the rest of the arena.
 * The residual stream x [B, T, dim] is replicated on every rank; attention heads and the
 * FFN width are sharded, with one all-reduce after o, after FFN-down, after each
 * embedding's second layer, and on the q/k sums of squares (full-dim RMSNorm). With one
 * rank the collectives are no-ops. A forward allocates nothing.
 */
#include "dit_internal.h"

#include "ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    rf_tensor xv, patches, x, tsin, e1, e, se, e0l, e0, m, hm;
    rf_tensor ctxp, c1, ctx, rcos, rsin;
    rf_tensor h, q, k, v, a, o, ss, ck, cv, f, hout, vout;
    void *scratch_start;
} s_acts;

typedef struct {
    rf_arena *arena; /* NULL: measure only */
    size_t bytes;
} s_alloc;

static int s_take(s_alloc *al, rf_tensor *t, rf_dtype dt, int nd, const int64_t *sh,
                  const char *what, rf_error *err)
{
    if (!al->arena) {
        al->bytes += rf_arena_tensor_bytes(dt, nd, sh);
        rf_tensor_init(t, dt, nd, sh, NULL, NULL);
        return 0;
    }
    return rf_arena_tensor(al->arena, t, dt, nd, sh, what, err);
}

#define TAKE(t, dt, nd, ...)                                                       \
    do {                                                                           \
        int64_t sh_[] = {__VA_ARGS__};                                             \
        if ((rc = s_take(al, &A->t, dt, nd, sh_, "dit activation " #t, err)) != 0) \
            return rc;                                                             \
    } while (0)

static size_t s_op_scratch(const rf_dit *d, int64_t B, int64_t T)
{
    const rf_dit_config *c = &d->cfg;
    size_t s = rf_op_attention_scratch(d->be, B, T, T, d->heads_l, c->head_dim);
    size_t s2 = rf_op_attention_scratch(d->be, B, T, c->text_len, d->heads_l, c->head_dim);
    s = s2 > s ? s2 : s;
    const rf_tensor *ws[] = {&d->patch.w,          &d->text0.w,          &d->text2.w,
                             &d->time0.w,          &d->time2.w,          &d->tproj.w,
                             &d->head.w,           &d->blocks[0].sa_q.w, &d->blocks[0].sa_o.w,
                             &d->blocks[0].ffn1.w, &d->blocks[0].ffn2.w};
    for (size_t i = 0; i < sizeof(ws) / sizeof(ws[0]); i++) {
        size_t l = rf_op_linear_scratch(d->be, ws[i], ws[i]);
        s = l > s ? l : s;
    }
    return rf_arena_round(s) + RF_ARENA_ALIGN;
}

static int s_layout(const rf_dit *d, int64_t B, int64_t T, s_alloc *al, s_acts *A, rf_error *err)
{
    const rf_dit_config *c = &d->cfg;
    int64_t P = c->patch[0] * c->patch[1] * c->patch[2], dim = c->dim, Lt = c->text_len;
    int64_t dl = d->dim_l, hl = d->heads_l, dh = c->head_dim;
    int rc;
    TAKE(xv, RF_DTYPE_F32, 2, B, c->in_dim * T * P);
    TAKE(patches, RF_DTYPE_F32, 3, B, T, c->in_dim * P);
    TAKE(x, RF_DTYPE_F32, 3, B, T, dim);
    TAKE(tsin, RF_DTYPE_F32, 2, B, c->freq_dim);
    TAKE(e1, RF_DTYPE_F32, 2, B, dl);
    TAKE(e, RF_DTYPE_F32, 2, B, dim);
    TAKE(se, RF_DTYPE_F32, 2, B, dim);
    TAKE(e0l, RF_DTYPE_F32, 2, B, 6 * dl);
    TAKE(e0, RF_DTYPE_F32, 2, B, 6 * dim);
    TAKE(m, RF_DTYPE_F32, 3, B, 6, dim);
    TAKE(hm, RF_DTYPE_F32, 3, B, 2, dim);
    TAKE(ctxp, RF_DTYPE_F32, 3, B, Lt, c->text_dim);
    TAKE(c1, RF_DTYPE_F32, 3, B, Lt, dl);
    TAKE(ctx, RF_DTYPE_F32, 3, B, Lt, dim);
    TAKE(rcos, RF_DTYPE_F64, 2, T, dh / 2);
    TAKE(rsin, RF_DTYPE_F64, 2, T, dh / 2);
    TAKE(h, RF_DTYPE_F32, 3, B, T, dim);
    TAKE(q, RF_DTYPE_F32, 4, B, T, hl, dh);
    TAKE(k, RF_DTYPE_F32, 4, B, T, hl, dh);
    TAKE(v, RF_DTYPE_F32, 4, B, T, hl, dh);
    TAKE(a, RF_DTYPE_F32, 4, B, T, hl, dh);
    TAKE(o, RF_DTYPE_F32, 3, B, T, dim);
    TAKE(ss, RF_DTYPE_F32, 1, B * (T > Lt ? T : Lt));
    TAKE(ck, RF_DTYPE_F32, 4, B, Lt, hl, dh);
    TAKE(cv, RF_DTYPE_F32, 4, B, Lt, hl, dh);
    TAKE(f, RF_DTYPE_F32, 3, B, T, d->ffn_l);
    TAKE(hout, RF_DTYPE_F32, 3, B, T, c->out_dim * P);
    TAKE(vout, RF_DTYPE_F32, 2, B, c->out_dim * T * P);
    if (!al->arena)
        al->bytes += s_op_scratch(d, B, T);
    return 0;
}

size_t rf_dit_arena_bytes(const rf_dit *d, int64_t batch, int64_t tokens)
{
    s_alloc al = {NULL, 0};
    s_acts A;
    s_layout(d, batch, tokens, &al, &A, NULL);
    return al.bytes;
}

int rf_dit_reserve(rf_dit *d, int64_t max_batch, int64_t max_tokens, rf_error *err)
{
    if (max_batch < 1 || max_tokens < 1)
        return rf_error_set(err, RF_EINVAL, "dit: reserve needs batch >= 1 and tokens >= 1");
    rf_arena_destroy(&d->arena);
    free(d->rope_host);
    free(d->tsin_host);
    d->rope_host = NULL;
    d->tsin_host = NULL;
    d->max_batch = d->max_tokens = 0;
    size_t bytes = rf_dit_arena_bytes(d, max_batch, max_tokens);
    d->arena = rf_arena_new(d->be, bytes, err);
    if (!d->arena)
        return rf_error_prefix(err, "dit: scratch for batch %lld x %lld tokens",
                               (long long)max_batch, (long long)max_tokens);
    d->rope_host = malloc(sizeof(double) * 2 * (size_t)max_tokens * (size_t)(d->cfg.head_dim / 2));
    d->tsin_host = malloc(sizeof(float) * (size_t)max_batch * (size_t)d->cfg.freq_dim);
    if (!d->rope_host || !d->tsin_host)
        return rf_error_set(err, RF_ENOMEM, "dit: out of host memory for the rotary tables");
    d->max_batch = max_batch;
    d->max_tokens = max_tokens;
    return 0;
}

#define CK(call)                \
    do {                        \
        if ((rc = (call)) != 0) \
            return rc;          \
    } while (0)

static rf_tensor s_view2(const rf_tensor *t, int64_t a, int64_t b)
{
    int64_t sh[2] = {a, b};
    return rf_tensor_view(t, 2, sh);
}

static rf_tensor s_view3(const rf_tensor *t, int64_t a, int64_t b, int64_t c)
{
    int64_t sh[3] = {a, b, c};
    return rf_tensor_view(t, 3, sh);
}

static int s_linear(rf_dit *d, rf_tensor *y, const rf_tensor *x, const rf_dit_lin *l, rf_error *err)
{
    return rf_op_linear(d->be, y, x, &l->w, l->b.data ? &l->b : NULL, d->arena, err);
}

/* Full-dim RMSNorm of x [rows, dim_l] (this rank's slice of each row), in place. */
static int s_rms(rf_dit *d, rf_tensor *x, const rf_tensor *w, rf_tensor *ss, rf_error *err)
{
    int rc;
    int64_t rows = (int64_t)rf_tensor_rows(x);
    rf_tensor x2 = s_view2(x, rows, (int64_t)(rf_tensor_numel(x) / (size_t)rows));
    rf_tensor s = *ss;
    s.ne[0] = rows;
    CK(rf_op_sumsq_rows(d->be, &s, &x2, err));
    CK(rf_comm_all_reduce_sum(d->comm, &s, err));
    return rf_op_rms_apply(d->be, &x2, &x2, &s, d->cfg.dim, w, (float)d->cfg.eps, err);
}

static int s_forward(rf_dit *d, int64_t B, int64_t F, int64_t H, int64_t W, const float *x,
                     const float *t, const float *context, int64_t Lc, float *v, rf_error *err)
{
    const rf_dit_config *c = &d->cfg;
    rf_backend *be = d->be;
    int rc;
    int64_t pt = c->patch[0], ph = c->patch[1], pw = c->patch[2];
    if (B < 1 || F < 1 || H < 1 || W < 1 || F % pt || H % ph || W % pw)
        return rf_error_set(err, RF_ESHAPE,
                            "dit: latent [%lld,%lld,%lld,%lld,%lld]: frames, height and width must "
                            "be positive multiples of the patch (%lld,%lld,%lld)",
                            (long long)B, (long long)c->in_dim, (long long)F, (long long)H,
                            (long long)W, (long long)pt, (long long)ph, (long long)pw);
    int64_t gf = F / pt, gh = H / ph, gw = W / pw, T = gf * gh * gw;
    int64_t dim = c->dim, Lt = c->text_len, dh = c->head_dim;
    float eps = (float)c->eps;
    if (!d->arena || B > d->max_batch || T > d->max_tokens)
        return rf_error_set(err, RF_EINVAL,
                            "dit: batch %lld x %lld tokens exceeds what rf_dit_reserve sized "
                            "(batch %lld x %lld tokens)",
                            (long long)B, (long long)T, (long long)d->max_batch,
                            (long long)d->max_tokens);
    if (Lc < 0 || Lc > Lt)
        return rf_error_set(err, RF_ESHAPE,
                            "dit: context has %lld tokens; the model takes at most text_len = %lld",
                            (long long)Lc, (long long)Lt);
    size_t mark = rf_arena_mark(d->arena);
    s_alloc al = {d->arena, 0};
    s_acts A;
    CK(s_layout(d, B, T, &al, &A, err));

    /* Patch embedding. */
    CK(rf_tensor_upload(be, &A.xv, x, rf_tensor_nbytes(&A.xv), err));
    rf_tensor xv5;
    rf_tensor_init(&xv5, RF_DTYPE_F32, 5, (int64_t[]){B, c->in_dim, F, H, W}, A.xv.data, A.xv.buf);
    CK(rf_op_patchify(be, &A.patches, &xv5, (int)pt, (int)ph, (int)pw, err));
    CK(s_linear(d, &A.x, &A.patches, &d->patch, err));

    /* Time: sinusoid (float64) -> e -> e0. */
    int64_t half = c->freq_dim / 2;
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < half; i++) {
            double ang = (double)t[b] * pow(10000.0, -(double)i / (double)half);
            d->tsin_host[b * c->freq_dim + i] = (float)cos(ang);
            d->tsin_host[b * c->freq_dim + half + i] = (float)sin(ang);
        }
    CK(rf_tensor_upload(be, &A.tsin, d->tsin_host, rf_tensor_nbytes(&A.tsin), err));
    CK(s_linear(d, &A.e1, &A.tsin, &d->time0, err));
    CK(rf_op_unary(be, &A.e1, &A.e1, RF_UNARY_SILU, err));
    CK(s_linear(d, &A.e, &A.e1, &d->time2, err));
    CK(rf_comm_all_reduce_sum(d->comm, &A.e, err));
    CK(rf_op_unary(be, &A.se, &A.e, RF_UNARY_SILU, err));
    CK(s_linear(d, &A.e0l, &A.se, &d->tproj, err));
    if (!d->comm) /* a group of one: a backend copy (the data may live on a GPU) */
        CK(rf_op_copy(be, &A.e0, &A.e0l, err));
    for (int64_t b = 0; d->comm && b < B; b++) {
        rf_tensor row = rf_tensor_slice0(&A.e0, b, 1), part = rf_tensor_slice0(&A.e0l, b, 1);
        CK(rf_comm_all_gather(d->comm, &row, &part, err));
    }

    /* Text: zero-pad to text_len, then two linears with GELU-tanh. */
    CK(rf_op_fill(be, &A.ctxp, 0.0f, err));
    for (int64_t b = 0; b < B && Lc > 0; b++) {
        rf_tensor rows = s_view2(&A.ctxp, B * Lt, c->text_dim);
        rows = rf_tensor_slice0(&rows, b * Lt, Lc);
        CK(rf_tensor_upload(be, &rows, context + (size_t)(b * Lc * c->text_dim),
                            rf_tensor_nbytes(&rows), err));
    }
    CK(s_linear(d, &A.c1, &A.ctxp, &d->text0, err));
    CK(rf_op_unary(be, &A.c1, &A.c1, RF_UNARY_GELU_TANH, err));
    CK(s_linear(d, &A.ctx, &A.c1, &d->text2, err));
    CK(rf_comm_all_reduce_sum(d->comm, &A.ctx, err));

    /* Rotary tables for this grid (float64). */
    double *rc_host = d->rope_host, *rs_host = d->rope_host + (size_t)T * (size_t)(dh / 2);
    rf_rope3d_tables(rc_host, rs_host, gf, gh, gw, dh, c->rope_theta);
    CK(rf_tensor_upload(be, &A.rcos, rc_host, rf_tensor_nbytes(&A.rcos), err));
    CK(rf_tensor_upload(be, &A.rsin, rs_host, rf_tensor_nbytes(&A.rsin), err));

    float scale = (float)(1.0 / sqrt((double)dh));
    rf_tensor m2 = s_view2(&A.m, B, 6 * dim);
    rf_tensor q3 = s_view3(&A.q, B, T, d->dim_l), k3 = s_view3(&A.k, B, T, d->dim_l);
    rf_tensor v3 = s_view3(&A.v, B, T, d->dim_l), a3 = s_view3(&A.a, B, T, d->dim_l);
    rf_tensor ck3 = s_view3(&A.ck, B, Lt, d->dim_l), cv3 = s_view3(&A.cv, B, Lt, d->dim_l);
    for (int64_t l = 0; l < c->num_layers; l++) {
        const rf_dit_block *bl = &d->blocks[l];
        /* 1. modulation vectors m0..m5 = block table + e0 */
        CK(rf_op_binary(be, &m2, &A.e0, &bl->mod, RF_BINARY_ADD, err));
        /* 2-5. self-attention */
        CK(rf_op_layer_norm(be, &A.h, &A.x, NULL, NULL, eps, err));
        CK(rf_op_modulate(be, &A.h, &A.h, &A.m, 0, 1, err));
        CK(s_linear(d, &q3, &A.h, &bl->sa_q, err));
        CK(s_rms(d, &q3, &bl->sa_nq, &A.ss, err));
        CK(s_linear(d, &k3, &A.h, &bl->sa_k, err));
        CK(s_rms(d, &k3, &bl->sa_nk, &A.ss, err));
        CK(s_linear(d, &v3, &A.h, &bl->sa_v, err));
        CK(rf_op_rope(be, &A.q, &A.q, &A.rcos, &A.rsin, err));
        CK(rf_op_rope(be, &A.k, &A.k, &A.rcos, &A.rsin, err));
        CK(rf_op_attention(be, &A.a, &A.q, &A.k, &A.v, NULL, scale, d->arena, err));
        CK(s_linear(d, &A.o, &a3, &bl->sa_o, err));
        CK(rf_comm_all_reduce_sum(d->comm, &A.o, err));
        CK(rf_op_gated_add(be, &A.x, &A.o, &A.m, 2, err));
        /* 6. cross-attention over the text context */
        CK(rf_op_layer_norm(be, &A.h, &A.x, &bl->n3_w, &bl->n3_b, eps, err));
        CK(s_linear(d, &q3, &A.h, &bl->ca_q, err));
        CK(s_rms(d, &q3, &bl->ca_nq, &A.ss, err));
        CK(s_linear(d, &ck3, &A.ctx, &bl->ca_k, err));
        CK(s_rms(d, &ck3, &bl->ca_nk, &A.ss, err));
        CK(s_linear(d, &cv3, &A.ctx, &bl->ca_v, err));
        CK(rf_op_attention(be, &A.a, &A.q, &A.ck, &A.cv, NULL, scale, d->arena, err));
        CK(s_linear(d, &A.o, &a3, &bl->ca_o, err));
        CK(rf_comm_all_reduce_sum(d->comm, &A.o, err));
        CK(rf_op_binary(be, &A.x, &A.x, &A.o, RF_BINARY_ADD, err));
        /* 7-8. feed-forward */
        CK(rf_op_layer_norm(be, &A.h, &A.x, NULL, NULL, eps, err));
        CK(rf_op_modulate(be, &A.h, &A.h, &A.m, 3, 4, err));
        CK(s_linear(d, &A.f, &A.h, &bl->ffn1, err));
        CK(rf_op_unary(be, &A.f, &A.f, RF_UNARY_GELU_TANH, err));
        CK(s_linear(d, &A.o, &A.f, &bl->ffn2, err));
        CK(rf_comm_all_reduce_sum(d->comm, &A.o, err));
        CK(rf_op_gated_add(be, &A.x, &A.o, &A.m, 5, err));
    }

    /* Head: (shift, scale) = head table + e; LN; modulate; linear; unpatchify. */
    rf_tensor hmod = s_view2(&d->head_mod, 2, dim);
    for (int64_t b = 0; b < B; b++) {
        rf_tensor hb = rf_tensor_slice0(&A.hm, b, 1), eb = rf_tensor_slice0(&A.e, b, 1);
        hb = s_view2(&hb, 2, dim);
        eb = rf_tensor_view(&eb, 1, &dim);
        CK(rf_op_binary(be, &hb, &hmod, &eb, RF_BINARY_ADD, err));
    }
    CK(rf_op_layer_norm(be, &A.h, &A.x, NULL, NULL, eps, err));
    CK(rf_op_modulate(be, &A.h, &A.h, &A.hm, 0, 1, err));
    CK(s_linear(d, &A.hout, &A.h, &d->head, err));
    rf_tensor vo5;
    rf_tensor_init(&vo5, RF_DTYPE_F32, 5, (int64_t[]){B, c->out_dim, F, H, W}, A.vout.data,
                   A.vout.buf);
    CK(rf_op_unpatchify(be, &vo5, &A.hout, (int)pt, (int)ph, (int)pw, err));
    if (v)
        CK(rf_tensor_download(be, &vo5, v, rf_tensor_nbytes(&vo5), err));
    rf_arena_reset(d->arena, mark);
    return 0;
}

int rf_dit_forward(rf_dit *d, int64_t batch, int64_t frames, int64_t height, int64_t width,
                   const float *x, const float *t, const float *context, int64_t ctx_len, float *v,
                   rf_error *err)
{
    size_t mark = d->arena ? rf_arena_mark(d->arena) : 0;
    int rc = s_forward(d, batch, frames, height, width, x, t, context, ctx_len, v, err);
    if (rc) {
        if (d->arena)
            rf_arena_reset(d->arena, mark);
        rf_comm_abort(d->comm);
    }
    return rc;
}
