/* test_ops_cuda.c - every op of the CUDA backend against the CPU backend (test-backend-ops).
 *
 * Each case builds the same random inputs on both backends, runs the op on each and
 * compares the CUDA output with the CPU output by NMSE, with a bound per op: bf16 tensor
 * core paths (linear, fused attention) get a loose bound, f32 ops a tight one (nvcc fuses
 * multiply-adds into FMAs, so last-bit differences are allowed), pure data movement and
 * single adds/multiplies must match exactly. Outputs sit between guard bytes filled with 0xFF (a NaN
 * pattern) and start as NaN, so a write out of bounds breaks a guard and an element the
 * op forgot stays NaN (rf_test_nmse returns infinity on NaN). Without a GPU (or in a build
 * without CUDA) the GPU tests are skipped with the reason; the test that asking for cuda
 * fails clearly always runs.
 */
#include "rf_test.h"

#include "arena.h"
#include "backend.h"
#include "cpu/cpu.h"
#include "dtype.h"
#include "ops.h"
#include "registry.h"
#ifdef RF_HAVE_CUDA
#include "cuda/backend_cuda.h"
#endif

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GUARD 256 /* bytes of 0xFF on each side of every output */

static uint64_t s_rng = 0x243F6A8885A308D3ull;

static float s_rand(void)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return (float)((double)(s_rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static float *s_randv(size_t n, float amp)
{
    float *p = malloc(sizeof(float) * (n ? n : 1));
    RF_CHECK(p);
    for (size_t i = 0; i < n; i++)
        p[i] = s_rand() * amp;
    return p;
}

typedef struct {
    rf_backend *be;
    rf_arena *a;
} s_side;

static s_side s_cpu, s_gpu;
static char s_why[512];
static int s_tried;

/* Opens both sides once; skips the calling test when there is no usable GPU. */
static void s_need_gpu(void)
{
    if (!s_tried) {
        s_tried = 1;
        rf_error err = {0};
        s_gpu.be = rf_backend_open("cuda", 0, 0, &err);
        if (!s_gpu.be) {
            snprintf(s_why, sizeof(s_why), "%s", err.msg);
        } else {
            s_gpu.a = rf_arena_new(s_gpu.be, (size_t)1 << 30, &err);
            s_cpu.be = rf_backend_cpu_new(0, &err);
            s_cpu.a = s_cpu.be ? rf_arena_new(s_cpu.be, (size_t)1 << 30, &err) : NULL;
            if (!s_gpu.a || !s_cpu.be || !s_cpu.a) {
                snprintf(s_why, sizeof(s_why), "setup failed: %s", err.msg);
                rf_backend_destroy(&s_gpu.be);
            }
        }
    }
    if (!s_gpu.be)
        RF_SKIP("%s", s_why);
    rf_arena_reset(s_gpu.a, 0);
    rf_arena_reset(s_cpu.a, 0);
}

/* An input tensor holding a copy of host (dtype dt). */
static rf_tensor s_in(s_side *s, rf_dtype dt, int nd, const int64_t *sh, const void *host)
{
    rf_tensor t;
    rf_error err = {0};
    RF_CHECK_MSG(rf_arena_tensor(s->a, &t, dt, nd, sh, "input", &err) == 0, "%s", err.msg);
    if (host)
        RF_CHECK_MSG(rf_tensor_upload(s->be, &t, host, rf_tensor_nbytes(&t), &err) == 0, "%s",
                     err.msg);
    return t;
}

/* An output tensor between guards; its elements start as init (NULL: all NaN). */
static rf_tensor s_out(s_side *s, rf_dtype dt, int nd, const int64_t *sh, const void *init)
{
    rf_tensor t;
    rf_tensor_init(&t, dt, nd, sh, NULL, NULL);
    size_t n = rf_tensor_nbytes(&t);
    char *raw = rf_arena_alloc(s->a, n + 2 * GUARD);
    RF_CHECK(raw);
    unsigned char *ff = malloc(n + 2 * GUARD);
    RF_CHECK(ff);
    memset(ff, 0xFF, n + 2 * GUARD);
    if (init)
        memcpy(ff + GUARD, init, n);
    rf_error err = {0};
    RF_CHECK_MSG(s->be->ops->upload(s->be->ctx, raw, ff, n + 2 * GUARD, &err) == 0, "%s", err.msg);
    free(ff);
    t.data = raw + GUARD;
    return t;
}

/* Downloads an output (F32 into host) and checks both guards are intact. */
static void s_fetch(s_side *s, const rf_tensor *t, void *host, const char *what)
{
    size_t n = rf_tensor_nbytes(t);
    unsigned char *raw = malloc(n + 2 * GUARD);
    RF_CHECK(raw);
    rf_error err = {0};
    RF_CHECK_MSG(s->be->ops->synchronize(s->be->ctx, &err) == 0, "%s: %s", what, err.msg);
    RF_CHECK_MSG(
        s->be->ops->download(s->be->ctx, raw, (char *)t->data - GUARD, n + 2 * GUARD, &err) == 0,
        "%s: %s", what, err.msg);
    for (size_t i = 0; i < GUARD; i++) {
        RF_CHECK_MSG(raw[i] == 0xFF, "%s on %s: wrote %zu bytes before its output", what,
                     rf_backend_name(s->be), GUARD - i);
        RF_CHECK_MSG(raw[GUARD + n + i] == 0xFF, "%s on %s: wrote past the end of its output", what,
                     rf_backend_name(s->be));
    }
    memcpy(host, raw + GUARD, n);
    free(raw);
}

static void s_compare(const char *what, const float *gpu, const float *cpu, size_t n, double bound)
{
    double e = rf_test_nmse(gpu, cpu, n);
    size_t bad = 0;
    while (bad < n && isfinite(gpu[bad]))
        bad++;
    RF_CHECK_MSG(bad == n || isfinite(cpu[bad]), "%s: cpu output %zu is not finite", what, bad);
    RF_CHECK_MSG(bad == n, "%s: cuda output element %zu of %zu is %g (never written?)", what, bad,
                 n, (double)gpu[bad]);
    RF_CHECK_MSG(e <= bound, "%s: NMSE %.3g above the bound %.1g", what, e, bound);
}

static void s_ok(int rc, const rf_error *err, const char *what, const s_side *s)
{
    RF_CHECK_MSG(rc == 0, "%s on %s: %s", what, rf_backend_name(s->be), err->msg);
}

/* ---- linear ---- */

static void s_linear_side(s_side *s, rf_dtype wdt, int64_t m, int64_t n, int64_t k, const float *x,
                          const void *w, const float *b, float *y)
{
    rf_error err = {0};
    rf_tensor tx = s_in(s, RF_DTYPE_F32, 2, (int64_t[]){m, k}, x);
    rf_tensor tw = s_in(s, wdt, 2, (int64_t[]){n, k}, w);
    rf_tensor tb = b ? s_in(s, RF_DTYPE_F32, 1, (int64_t[]){n}, b) : tx;
    rf_tensor ty = s_out(s, RF_DTYPE_F32, 2, (int64_t[]){m, n}, NULL);
    s_ok(rf_op_linear(s->be, &ty, &tx, &tw, b ? &tb : NULL, s->a, &err), &err, "linear", s);
    s_fetch(s, &ty, y, "linear");
}

static void s_linear_case(rf_dtype wdt, int64_t m, int64_t n, int64_t k, int bias)
{
    float *x = s_randv((size_t)(m * k), 1.0f), *w = s_randv((size_t)(n * k), 0.5f);
    float *b = s_randv((size_t)n, 1.0f);
    float *yc = malloc(sizeof(float) * (size_t)(m * n)),
          *yg = malloc(sizeof(float) * (size_t)(m * n));
    void *wh = w;
    uint16_t *w16 = malloc(sizeof(uint16_t) * (size_t)(n * k));
    if (wdt != RF_DTYPE_F32) {
        for (int64_t i = 0; i < n * k; i++)
            w16[i] = wdt == RF_DTYPE_BF16 ? rf_f32_to_bf16(w[i]) : rf_f32_to_f16(w[i]);
        wh = w16;
    }
    s_linear_side(&s_cpu, wdt, m, n, k, x, wh, bias ? b : NULL, yc);
    s_linear_side(&s_gpu, wdt, m, n, k, x, wh, bias ? b : NULL, yg);
    char what[96];
    snprintf(what, sizeof(what), "linear %s M=%lld N=%lld K=%lld%s", rf_dtype_name(wdt),
             (long long)m, (long long)n, (long long)k, bias ? " +bias" : "");
    s_compare(what, yg, yc, (size_t)(m * n), 1e-4);
    free(x), free(w), free(b), free(yc), free(yg), free(w16);
}

RF_TEST(linear_bf16_f32_f16_weights_with_and_without_bias)
{
    s_need_gpu();
    s_linear_case(RF_DTYPE_BF16, 67, 96, 160, 1);
    s_linear_case(RF_DTYPE_BF16, 1, 8, 16, 0);
    s_linear_case(RF_DTYPE_F32, 130, 72, 48, 1);
    s_linear_case(RF_DTYPE_F16, 33, 40, 24, 0);
    s_linear_case(RF_DTYPE_BF16, 2, 1536, 256, 1); /* time-embedding shaped: 2 rows */
    s_linear_case(RF_DTYPE_BF16, 515, 300, 1536, 1);
}

/* ---- attention ---- */

static void s_att_side(s_side *s, int64_t B, int64_t lq, int64_t lk, int64_t H, int64_t D,
                       const float *q, const float *k, const float *v, const uint8_t *mask,
                       float scale, float *out)
{
    rf_error err = {0};
    rf_tensor tq = s_in(s, RF_DTYPE_F32, 4, (int64_t[]){B, lq, H, D}, q);
    rf_tensor tk = s_in(s, RF_DTYPE_F32, 4, (int64_t[]){B, lk, H, D}, k);
    rf_tensor tv = s_in(s, RF_DTYPE_F32, 4, (int64_t[]){B, lk, H, D}, v);
    rf_tensor tm = mask ? s_in(s, RF_DTYPE_U8, 2, (int64_t[]){B, lk}, mask) : tq;
    rf_tensor to = s_out(s, RF_DTYPE_F32, 4, (int64_t[]){B, lq, H, D}, NULL);
    s_ok(rf_op_attention(s->be, &to, &tq, &tk, &tv, mask ? &tm : NULL, scale, s->a, &err), &err,
         "attention", s);
    s_fetch(s, &to, out, "attention");
}

/* mask_kind: 0 none, 1 random keys off, 2 random + batch 0 entirely masked. */
static void s_att_case(int64_t B, int64_t lq, int64_t lk, int64_t H, int64_t D, int mask_kind,
                       float amp)
{
    size_t nq = (size_t)(B * lq * H * D), nk = (size_t)(B * lk * H * D);
    float *q = s_randv(nq, amp), *k = s_randv(nk, amp), *v = s_randv(nk, 1.0f);
    float *oc = malloc(sizeof(float) * nq), *og = malloc(sizeof(float) * nq);
    uint8_t *mask = NULL;
    if (mask_kind) {
        mask = malloc((size_t)(B * lk));
        for (int64_t i = 0; i < B * lk; i++)
            mask[i] = s_rand() > -0.4f;
        if (mask_kind == 2)
            memset(mask, 0, (size_t)lk);
    }
    float scale = 1.0f / sqrtf((float)D);
    s_att_side(&s_cpu, B, lq, lk, H, D, q, k, v, mask, scale, oc);
    s_att_side(&s_gpu, B, lq, lk, H, D, q, k, v, mask, scale, og);
    char what[128];
    snprintf(what, sizeof(what), "attention B=%lld Lq=%lld Lk=%lld H=%lld D=%lld mask=%d",
             (long long)B, (long long)lq, (long long)lk, (long long)H, (long long)D, mask_kind);
    /* bf16 tensor cores for D 64/128, f32 fallback otherwise */
    s_compare(what, og, oc, nq, (D == 64 || D == 128) ? 5e-4 : 1e-9);
    if (mask_kind == 2)
        for (size_t i = 0; i < (size_t)(lq * H * D); i++)
            RF_CHECK_MSG(og[i] == 0.0f, "%s: a query with every key masked must get zeros", what);
    free(q), free(k), free(v), free(oc), free(og), free(mask);
}

RF_TEST(attention_fused_head_dims_64_128_odd_lengths_masks)
{
    s_need_gpu();
    s_att_case(1, 33, 77, 2, 64, 0, 1.0f);
    s_att_case(2, 130, 200, 3, 128, 1, 1.0f);
    s_att_case(2, 64, 64, 1, 128, 2, 1.0f);
    s_att_case(1, 1, 1, 1, 64, 0, 1.0f);
    s_att_case(1, 300, 512, 2, 128, 0, 1.0f); /* text cross-attention: 512 context tokens */
    s_att_case(1, 257, 5, 2, 64, 1, 1.0f);    /* a short context */
    s_att_case(1, 96, 1000, 2, 128, 0, 4.0f); /* peaky softmax: large logits */
}

RF_TEST(attention_fallback_other_head_dims)
{
    s_need_gpu();
    s_att_case(2, 19, 23, 3, 40, 1, 1.0f);
    s_att_case(1, 7, 70, 2, 16, 0, 1.0f);
    s_att_case(1, 5, 9, 1, 256, 2, 1.0f);
}

/* Long sequences (32,760 and 75,600 tokens, the Wan 480p and 720p lengths): the GPU runs
 * the whole self-attention, the CPU checks sampled query rows (first, middle, last). */
static void s_att_long(int64_t T, int64_t H, int64_t D)
{
    size_t n = (size_t)(T * H * D);
    float *q = s_randv(n, 1.0f), *k = s_randv(n, 1.0f), *v = s_randv(n, 1.0f);
    float *og = malloc(sizeof(float) * n);
    RF_CHECK(og);
    float scale = 1.0f / sqrtf((float)D);
    s_att_side(&s_gpu, 1, T, T, H, D, q, k, v, NULL, scale, og);
    int64_t starts[3] = {0, T / 2 - 16, T - 32}, rows = 32;
    for (int s = 0; s < 3; s++) {
        rf_arena_reset(s_cpu.a, 0);
        float *oc = malloc(sizeof(float) * (size_t)(rows * H * D));
        s_att_side(&s_cpu, 1, rows, T, H, D, q + starts[s] * H * D, k, v, NULL, scale, oc);
        char what[96];
        snprintf(what, sizeof(what), "attention T=%lld rows %lld..%lld", (long long)T,
                 (long long)starts[s], (long long)(starts[s] + rows - 1));
        s_compare(what, og + starts[s] * H * D, oc, (size_t)(rows * H * D), 5e-4);
        free(oc);
    }
    free(q), free(k), free(v), free(og);
}

RF_TEST(attention_32760_and_75600_tokens)
{
    s_need_gpu();
    s_att_long(32760, 2, 128);
    s_att_long(75600, 1, 128);
}

/* ---- norms ---- */

static void s_norm_side(s_side *s, int kind, int64_t rows, int64_t c, const float *x,
                        const float *w, const float *b, float *y)
{
    rf_error err = {0};
    int64_t sh[2] = {rows, c};
    rf_tensor tx = s_in(s, RF_DTYPE_F32, 2, sh, x);
    rf_tensor tw = w ? s_in(s, RF_DTYPE_F32, 1, &c, w) : tx;
    rf_tensor tb = b ? s_in(s, RF_DTYPE_F32, 1, &c, b) : tx;
    rf_tensor ty = s_out(s, RF_DTYPE_F32, 2, sh, kind == 2 ? x : NULL);
    int rc;
    if (kind == 0) {
        rc = rf_op_layer_norm(s->be, &ty, &tx, w ? &tw : NULL, b ? &tb : NULL, 1e-6f, &err);
    } else {
        rf_tensor ss = s_out(s, RF_DTYPE_F32, 1, &rows, NULL);
        /* kind 1: out of place; kind 2: in place on y (holding x) */
        rc = rf_op_rms_norm(s->be, &ty, kind == 2 ? &ty : &tx, &ss, w ? &tw : NULL, 1e-6f, &err);
    }
    s_ok(rc, &err, "norm", s);
    s_fetch(s, &ty, y, "norm");
}

RF_TEST(layer_norm_and_rms_norm)
{
    s_need_gpu();
    int64_t shapes[][2] = {{1, 1}, {7, 33}, {130, 1536}, {3, 5120}};
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++)
        for (int kind = 0; kind < 3; kind++)
            for (int affine = 0; affine < 2; affine++) {
                int64_t r = shapes[i][0], c = shapes[i][1];
                float *x = s_randv((size_t)(r * c), 3.0f), *w = s_randv((size_t)c, 1.0f);
                float *b = s_randv((size_t)c, 1.0f);
                for (int64_t j = 0; j < r * c; j++)
                    x[j] += 0.5f; /* a nonzero mean */
                float *yc = malloc(sizeof(float) * (size_t)(r * c)),
                      *yg = malloc(sizeof(float) * (size_t)(r * c));
                s_norm_side(&s_cpu, kind, r, c, x, affine ? w : NULL, affine ? b : NULL, yc);
                s_norm_side(&s_gpu, kind, r, c, x, affine ? w : NULL, affine ? b : NULL, yg);
                char what[80];
                snprintf(what, sizeof(what), "%s [%lld,%lld] affine=%d",
                         kind == 0 ? "layer_norm" : "rms_norm", (long long)r, (long long)c, affine);
                s_compare(what, yg, yc, (size_t)(r * c), 1e-11);
                free(x), free(w), free(b), free(yc), free(yg);
            }
}

/* ---- rope ---- */

static void s_rope_side(s_side *s, rf_dtype tdt, int64_t B, int64_t T, int64_t H, int64_t D,
                        const float *x, const void *ct, const void *st, int inplace, float *y)
{
    rf_error err = {0};
    int64_t sh[4] = {B, T, H, D}, tsh[2] = {T, D / 2};
    rf_tensor tx = s_in(s, RF_DTYPE_F32, 4, sh, x);
    rf_tensor tc = s_in(s, tdt, 2, tsh, ct), ts = s_in(s, tdt, 2, tsh, st);
    rf_tensor ty = s_out(s, RF_DTYPE_F32, 4, sh, inplace ? x : NULL);
    s_ok(rf_op_rope(s->be, &ty, inplace ? &ty : &tx, &tc, &ts, &err), &err, "rope", s);
    s_fetch(s, &ty, y, "rope");
}

RF_TEST(rope_3d_tables_f64_and_f32_in_place)
{
    s_need_gpu();
    int64_t B = 2, f = 3, h = 4, w = 5, T = f * h * w, H = 3, D = 128;
    double *c64 = malloc(sizeof(double) * (size_t)(T * D / 2)),
           *s64 = malloc(sizeof(double) * (size_t)(T * D / 2));
    float *c32 = malloc(sizeof(float) * (size_t)(T * D / 2)),
          *s32 = malloc(sizeof(float) * (size_t)(T * D / 2));
    rf_rope3d_tables(c64, s64, f, h, w, D, 10000.0);
    for (int64_t i = 0; i < T * D / 2; i++)
        c32[i] = (float)c64[i], s32[i] = (float)s64[i];
    float *x = s_randv((size_t)(B * T * H * D), 2.0f);
    float *yc = malloc(sizeof(float) * (size_t)(B * T * H * D)),
          *yg = malloc(sizeof(float) * (size_t)(B * T * H * D));
    for (int f64 = 0; f64 < 2; f64++)
        for (int inplace = 0; inplace < 2; inplace++) {
            rf_dtype dt = f64 ? RF_DTYPE_F64 : RF_DTYPE_F32;
            const void *ct = f64 ? (const void *)c64 : c32, *st = f64 ? (const void *)s64 : s32;
            s_rope_side(&s_cpu, dt, B, T, H, D, x, ct, st, inplace, yc);
            s_rope_side(&s_gpu, dt, B, T, H, D, x, ct, st, inplace, yg);
            s_compare("rope", yg, yc, (size_t)(B * T * H * D), 1e-13);
        }
    free(c64), free(s64), free(c32), free(s32), free(x), free(yc), free(yg);
}

/* ---- elementwise ---- */

RF_TEST(unary_binary_scale_fill)
{
    s_need_gpu();
    int64_t n = 100003, sh[2] = {7, 100003 / 7 + 1};
    (void)sh;
    float *x = s_randv((size_t)n, 6.0f), *b = s_randv((size_t)n, 2.0f);
    float *yc = malloc(sizeof(float) * (size_t)n), *yg = malloc(sizeof(float) * (size_t)n);
    rf_error err = {0};
    for (int op = 0; op < RF_UNARY_COUNT; op++) {
        s_side *sides[2] = {&s_cpu, &s_gpu};
        float *outs[2] = {yc, yg};
        for (int i = 0; i < 2; i++) {
            rf_tensor tx = s_in(sides[i], RF_DTYPE_F32, 1, &n, x);
            rf_tensor ty = s_out(sides[i], RF_DTYPE_F32, 1, &n, NULL);
            s_ok(rf_op_unary(sides[i]->be, &ty, &tx, (rf_unary_op)op, &err), &err, "unary",
                 sides[i]);
            s_fetch(sides[i], &ty, outs[i], "unary");
        }
        s_compare(op == RF_UNARY_GELU_TANH ? "gelu_tanh"
                  : op == RF_UNARY_SILU    ? "silu"
                                           : "gelu_erf",
                  yg, yc, (size_t)n, 1e-11);
    }
    /* binary: full shape and trailing broadcast ([rows, 301] (op) [301]) */
    int64_t rows = 211, cols = 301, ash[2] = {rows, cols};
    for (int op = 0; op < RF_BINARY_COUNT; op++)
        for (int bc = 0; bc < 2; bc++) {
            s_side *sides[2] = {&s_cpu, &s_gpu};
            float *outs[2] = {yc, yg};
            for (int i = 0; i < 2; i++) {
                rf_arena_reset(sides[i]->a, 0);
                rf_tensor ta = s_in(sides[i], RF_DTYPE_F32, 2, ash, x);
                rf_tensor tb = bc ? s_in(sides[i], RF_DTYPE_F32, 1, &cols, b)
                                  : s_in(sides[i], RF_DTYPE_F32, 2, ash, b);
                rf_tensor ty = s_out(sides[i], RF_DTYPE_F32, 2, ash, NULL);
                s_ok(rf_op_binary(sides[i]->be, &ty, &ta, &tb, (rf_binary_op)op, &err), &err,
                     "binary", sides[i]);
                s_fetch(sides[i], &ty, outs[i], "binary");
            }
            s_compare("binary", yg, yc, (size_t)(rows * cols), 0.0);
        }
    /* scale and fill */
    s_side *sides[2] = {&s_cpu, &s_gpu};
    float *outs[2] = {yc, yg};
    for (int i = 0; i < 2; i++) {
        rf_arena_reset(sides[i]->a, 0);
        rf_tensor tx = s_in(sides[i], RF_DTYPE_F32, 1, &n, x);
        rf_tensor ty = s_out(sides[i], RF_DTYPE_F32, 1, &n, NULL);
        s_ok(rf_op_scale(sides[i]->be, &ty, &tx, -1.75f, 0.25f, &err), &err, "scale", sides[i]);
        s_fetch(sides[i], &ty, outs[i], "scale");
    }
    s_compare("scale", yg, yc, (size_t)n, 1e-12); /* nvcc may fuse a*x+b into one FMA */
    rf_tensor tf = s_out(&s_gpu, RF_DTYPE_F32, 1, &n, NULL);
    s_ok(rf_op_fill(s_gpu.be, &tf, 0.5f, &err), &err, "fill", &s_gpu);
    s_fetch(&s_gpu, &tf, yg, "fill");
    for (int64_t i = 0; i < n; i++)
        RF_CHECK_MSG(yg[i] == 0.5f, "fill: element %lld is %g", (long long)i, (double)yg[i]);
    free(x), free(b), free(yc), free(yg);
}

RF_TEST(copy_between_f32_bf16_f16)
{
    s_need_gpu();
    int64_t n = 4099;
    float *x = s_randv((size_t)n, 100.0f);
    rf_dtype pairs[][2] = {
        {RF_DTYPE_F32, RF_DTYPE_BF16}, {RF_DTYPE_F32, RF_DTYPE_F16}, {RF_DTYPE_F32, RF_DTYPE_F32}};
    rf_error err = {0};
    for (size_t p = 0; p < sizeof(pairs) / sizeof(pairs[0]); p++) {
        unsigned char res[2][4099 * 4];
        float back[2][4099];
        s_side *sides[2] = {&s_cpu, &s_gpu};
        for (int i = 0; i < 2; i++) {
            rf_arena_reset(sides[i]->a, 0);
            rf_tensor tx = s_in(sides[i], pairs[p][0], 1, &n, x);
            rf_tensor ty = s_out(sides[i], pairs[p][1], 1, &n, NULL);
            rf_tensor tz = s_out(sides[i], RF_DTYPE_F32, 1, &n, NULL);
            s_ok(rf_op_copy(sides[i]->be, &ty, &tx, &err), &err, "copy", sides[i]);
            s_ok(rf_op_copy(sides[i]->be, &tz, &ty, &err), &err, "copy back", sides[i]);
            s_fetch(sides[i], &ty, res[i], "copy");
            s_fetch(sides[i], &tz, back[i], "copy back");
        }
        RF_CHECK_MSG(!memcmp(res[0], res[1], (size_t)n * rf_dtype_size(pairs[p][1])),
                     "copy F32 -> %s: cuda rounds differently from the cpu",
                     rf_dtype_name(pairs[p][1]));
        s_compare("copy back to F32", back[1], back[0], (size_t)n, 0.0);
    }
    free(x);
}

/* ---- modulation, gated residual ---- */

RF_TEST(modulate_and_gated_add)
{
    s_need_gpu();
    int64_t B = 2, T = 37, C = 96, M = 6;
    int64_t sh[3] = {B, T, C}, msh[3] = {B, M, C};
    float *x = s_randv((size_t)(B * T * C), 2.0f), *y = s_randv((size_t)(B * T * C), 1.0f);
    float *mod = s_randv((size_t)(B * M * C), 1.0f);
    float *oc = malloc(sizeof(float) * (size_t)(B * T * C)),
          *og = malloc(sizeof(float) * (size_t)(B * T * C));
    rf_error err = {0};
    s_side *sides[2] = {&s_cpu, &s_gpu};
    float *outs[2] = {oc, og};
    for (int i = 0; i < 2; i++) {
        rf_tensor tx = s_in(sides[i], RF_DTYPE_F32, 3, sh, x);
        rf_tensor tm = s_in(sides[i], RF_DTYPE_F32, 3, msh, mod);
        rf_tensor ty = s_out(sides[i], RF_DTYPE_F32, 3, sh, NULL);
        s_ok(rf_op_modulate(sides[i]->be, &ty, &tx, &tm, 3, 4, &err), &err, "modulate", sides[i]);
        s_fetch(sides[i], &ty, outs[i], "modulate");
    }
    s_compare("modulate", og, oc, (size_t)(B * T * C), 1e-12); /* FMA contraction */
    for (int i = 0; i < 2; i++) {
        rf_arena_reset(sides[i]->a, 0);
        rf_tensor ty = s_in(sides[i], RF_DTYPE_F32, 3, sh, y);
        rf_tensor tm = s_in(sides[i], RF_DTYPE_F32, 3, msh, mod);
        rf_tensor tx = s_out(sides[i], RF_DTYPE_F32, 3, sh, x);
        s_ok(rf_op_gated_add(sides[i]->be, &tx, &ty, &tm, 5, &err), &err, "gated_add", sides[i]);
        s_fetch(sides[i], &tx, outs[i], "gated_add");
    }
    s_compare("gated_add", og, oc, (size_t)(B * T * C), 1e-12);
    free(x), free(y), free(mod), free(oc), free(og);
}

/* ---- patchify / unpatchify ---- */

RF_TEST(patchify_and_unpatchify_exact)
{
    s_need_gpu();
    int64_t B = 2, C = 3, F = 4, H = 6, W = 10;
    int pt = 1, ph = 2, pw = 2;
    int64_t T = (F / pt) * (H / ph) * (W / pw), vec = C * pt * ph * pw;
    int64_t vsh[5] = {B, C, F, H, W}, tsh[3] = {B, T, vec};
    size_t n = (size_t)(B * C * F * H * W);
    float *x = s_randv(n, 1.0f), *oc = malloc(sizeof(float) * n), *og = malloc(sizeof(float) * n);
    rf_error err = {0};
    s_side *sides[2] = {&s_cpu, &s_gpu};
    float *outs[2] = {oc, og};
    for (int i = 0; i < 2; i++) {
        rf_tensor tv = s_in(sides[i], RF_DTYPE_F32, 5, vsh, x);
        rf_tensor tt = s_out(sides[i], RF_DTYPE_F32, 3, tsh, NULL);
        s_ok(rf_op_patchify(sides[i]->be, &tt, &tv, pt, ph, pw, &err), &err, "patchify", sides[i]);
        s_fetch(sides[i], &tt, outs[i], "patchify");
    }
    s_compare("patchify", og, oc, n, 0.0);
    for (int i = 0; i < 2; i++) {
        rf_arena_reset(sides[i]->a, 0);
        rf_tensor tt = s_in(sides[i], RF_DTYPE_F32, 3, tsh, x);
        rf_tensor tv = s_out(sides[i], RF_DTYPE_F32, 5, vsh, NULL);
        s_ok(rf_op_unpatchify(sides[i]->be, &tv, &tt, pt, ph, pw, &err), &err, "unpatchify",
             sides[i]);
        s_fetch(sides[i], &tv, outs[i], "unpatchify");
    }
    s_compare("unpatchify", og, oc, n, 0.0);
    free(x), free(oc), free(og);
}

/* ---- no GPU: a clear error ---- */

RF_TEST(asking_for_cuda_without_a_gpu_says_so)
{
    rf_error err = {0};
    rf_backend *be = NULL;
    if (!rf_backend_have_cuda()) {
        be = rf_backend_open("cuda", 0, 0, &err);
        RF_CHECK(be == NULL);
        RF_CHECK_CONTAINS(err.msg, "no CUDA backend");
        RF_CHECK_CONTAINS(err.msg, "CUDA=on");
        return;
    }
#ifdef RF_HAVE_CUDA
    char why[256];
    int n = rf_cuda_device_count(why, sizeof(why));
    if (n == 0) {
        be = rf_backend_open("cuda", 0, 0, &err);
        RF_CHECK(be == NULL);
        RF_CHECK_CONTAINS(err.msg, "no CUDA GPU available");
        RF_CHECK_CONTAINS(err.msg, "--backend cpu");
    } else {
        be = rf_backend_open("cuda", 0, n + 3, &err);
        RF_CHECK(be == NULL);
        RF_CHECK_CONTAINS(err.msg, "does not exist");
    }
#endif
    be = rf_backend_open("tpu", 0, 0, &err);
    RF_CHECK(be == NULL);
    RF_CHECK_CONTAINS(err.msg, "unknown backend");
}
