/* test_ops_vae.c - the VAE's conv3d op against a plain double-precision reference.
 *
 * Hostile shapes: odd sizes, 1-sized dims, stride 2 in time and space, asymmetric pads,
 * the nearest x2 upsample, cached frames (prev) of 1 and 2 frames, the 1x1x1 fast path,
 * more pixels than one im2col tile, 1 and 3 threads. Output guards catch writes past y;
 * argument checks name the op.
 */
#include "cpu/cpu.h"
#include "ops.h"
#include "rf_test.h"

#include <stdlib.h>
#include <string.h>

static float s_rand(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((*s >> 40) & 0xFFFFFF) / 8388608.0f - 1.0f;
}

typedef struct {
    int64_t tp, tx, h, w, cin, cout, kt, kh, kw;
    rf_conv3d_params p;
    int bias;
} s_case;

static void s_ref(const s_case *c, const float *prev, const float *x, const float *w,
                  const float *b, double *y, int64_t to, int64_t ho, int64_t wo)
{
    int up = c->p.up2 ? 1 : 0;
    int64_t hv = c->h << up, wv = c->w << up, fsz = c->h * c->w * c->cin;
    for (int64_t t = 0; t < to; t++)
        for (int64_t oy = 0; oy < ho; oy++)
            for (int64_t ox = 0; ox < wo; ox++)
                for (int64_t o = 0; o < c->cout; o++) {
                    double acc = b ? b[o] : 0.0;
                    for (int64_t dt = 0; dt < c->kt; dt++) {
                        int64_t it = t * c->p.st + dt;
                        const float *fr = it < c->tp ? prev + it * fsz : x + (it - c->tp) * fsz;
                        for (int64_t dy = 0; dy < c->kh; dy++)
                            for (int64_t dx = 0; dx < c->kw; dx++) {
                                int64_t iy = oy * c->p.sh + dy - c->p.pad_top;
                                int64_t ix = ox * c->p.sw + dx - c->p.pad_left;
                                if (iy < 0 || ix < 0 || iy >= hv || ix >= wv)
                                    continue;
                                const float *px = fr + ((iy >> up) * c->w + (ix >> up)) * c->cin;
                                const float *wr =
                                    w + (((o * c->kt + dt) * c->kh + dy) * c->kw + dx) * c->cin;
                                for (int64_t i = 0; i < c->cin; i++)
                                    acc += (double)px[i] * wr[i];
                            }
                    }
                    y[((t * ho + oy) * wo + ox) * c->cout + o] = acc;
                }
}

static void s_run_case(const s_case *c, int threads)
{
    rf_error err = {0};
    rf_backend *be = rf_backend_cpu_new(threads, &err);
    RF_CHECK_MSG(be, "%s", err.msg);
    int up = c->p.up2 ? 2 : 1;
    int64_t to = (c->tp + c->tx - c->kt) / c->p.st + 1;
    int64_t ho = (c->h * up + c->p.pad_top + c->p.pad_bottom - c->kh) / c->p.sh + 1;
    int64_t wo = (c->w * up + c->p.pad_left + c->p.pad_right - c->kw) / c->p.sw + 1;
    int64_t fs = c->h * c->w * c->cin, nw = c->cout * c->kt * c->kh * c->kw * c->cin;
    int64_t ny = to * ho * wo * c->cout;
    uint64_t seed = 42;
    float *prev = malloc((size_t)(c->tp * fs + 1) * sizeof(float));
    float *x = malloc((size_t)(c->tx * fs) * sizeof(float));
    float *w = malloc((size_t)nw * sizeof(float)), *b = malloc((size_t)c->cout * sizeof(float));
    float *y = malloc((size_t)(ny + 16) * sizeof(float)), *yr = malloc((size_t)ny * sizeof(float));
    double *yd = malloc((size_t)ny * sizeof(double));
    for (int64_t i = 0; i < c->tp * fs; i++)
        prev[i] = s_rand(&seed);
    for (int64_t i = 0; i < c->tx * fs; i++)
        x[i] = s_rand(&seed);
    for (int64_t i = 0; i < nw; i++)
        w[i] = s_rand(&seed);
    for (int64_t i = 0; i < c->cout; i++)
        b[i] = s_rand(&seed);
    for (int64_t i = 0; i < ny + 16; i++)
        y[i] = 12345.0f; /* guards past the end stay untouched */
    rf_tensor tp, tx, tw, tb, ty;
    int64_t sp[4] = {c->tp, c->h, c->w, c->cin}, sx[4] = {c->tx, c->h, c->w, c->cin};
    int64_t sw[5] = {c->cout, c->kt, c->kh, c->kw, c->cin}, sb[1] = {c->cout};
    int64_t sy[4] = {to, ho, wo, c->cout};
    rf_tensor_init(&tp, RF_DTYPE_F32, 4, sp, prev, NULL);
    rf_tensor_init(&tx, RF_DTYPE_F32, 4, sx, x, NULL);
    rf_tensor_init(&tw, RF_DTYPE_F32, 5, sw, w, NULL);
    rf_tensor_init(&tb, RF_DTYPE_F32, 1, sb, b, NULL);
    rf_tensor_init(&ty, RF_DTYPE_F32, 4, sy, y, NULL);
    size_t need = rf_op_conv3d_scratch(be, &ty, &tw, &c->p);
    rf_arena *ar = rf_arena_new(be, need + 4096, &err);
    RF_CHECK_MSG(ar, "%s", err.msg);
    int rc =
        rf_op_conv3d(be, &ty, c->tp ? &tp : NULL, &tx, &tw, c->bias ? &tb : NULL, &c->p, ar, &err);
    RF_CHECK_MSG(rc == 0, "%s", err.msg);
    s_ref(c, prev, x, w, c->bias ? b : NULL, yd, to, ho, wo);
    for (int64_t i = 0; i < ny; i++)
        yr[i] = (float)yd[i];
    double nm = rf_test_nmse(y, yr, (size_t)ny);
    RF_CHECK_MSG(nm <= 1e-10, "conv3d NMSE %g (kt %lld kh %lld, st %d sh %d, up2 %d)", nm,
                 (long long)c->kt, (long long)c->kh, c->p.st, c->p.sh, c->p.up2);
    for (int i = 0; i < 16; i++)
        RF_CHECK(y[ny + i] == 12345.0f);
    rf_arena_destroy(&ar);
    rf_backend_destroy(&be);
    free(prev);
    free(x);
    free(w);
    free(b);
    free(y);
    free(yr);
    free(yd);
}

RF_TEST(conv3d_causal_3x3x3_with_cache)
{
    s_case c = {2, 3, 5, 7, 3, 4, 3, 3, 3, {1, 1, 1, 1, 1, 1, 1, 0}, 1};
    s_run_case(&c, 1);
    s_run_case(&c, 3);
    c.tp = 1; /* one cached frame */
    c.tx = 2;
    s_run_case(&c, 2);
    c.tp = 0; /* no cache: x alone */
    c.tx = 3;
    s_run_case(&c, 2);
}

RF_TEST(conv3d_time_stride_2_one_cached_frame)
{
    s_case c = {1, 4, 3, 2, 5, 5, 3, 1, 1, {2, 1, 1, 0, 0, 0, 0, 0}, 1};
    s_run_case(&c, 2);
    c.tx = 2;
    s_run_case(&c, 1);
}

RF_TEST(conv2d_down_stride_2_pad_right_bottom)
{
    s_case c = {0, 2, 6, 10, 3, 3, 1, 3, 3, {1, 2, 2, 0, 1, 0, 1, 0}, 1};
    s_run_case(&c, 2);
    c.h = 2; /* the smallest input, odd width */
    c.w = 3;
    s_run_case(&c, 1);
}

RF_TEST(conv2d_nearest_upsample_x2)
{
    s_case c = {0, 2, 3, 5, 4, 2, 1, 3, 3, {1, 1, 1, 1, 1, 1, 1, 1}, 1};
    s_run_case(&c, 2);
    c.h = 1;
    c.w = 1;
    s_run_case(&c, 1);
}

RF_TEST(conv_pointwise_and_big_tiles)
{
    s_case c = {0, 3, 9, 11, 7, 5, 1, 1, 1, {1, 1, 1, 0, 0, 0, 0, 0}, 0};
    s_run_case(&c, 2);
    c.tp = 2; /* a 1x1x1 conv over prev frames too */
    s_run_case(&c, 1);
    /* more output pixels than one im2col tile (2^20 / 27 floats -> 1024 pixels) */
    s_case big = {2, 1, 40, 36, 1, 2, 3, 3, 3, {1, 1, 1, 1, 1, 1, 1, 0}, 1};
    s_run_case(&big, 2);
}

RF_TEST(conv3d_refuses_bad_shapes)
{
    rf_error err = {0};
    rf_backend *be = rf_backend_cpu_new(1, &err);
    float buf[4096] = {0};
    rf_tensor x, w, y;
    int64_t sx[4] = {3, 4, 4, 2}, sw[5] = {3, 3, 3, 3, 2}, sy[4] = {1, 4, 4, 3};
    rf_tensor_init(&x, RF_DTYPE_F32, 4, sx, buf, NULL);
    rf_tensor_init(&w, RF_DTYPE_F32, 5, sw, buf + 1024, NULL);
    rf_tensor_init(&y, RF_DTYPE_F32, 4, sy, buf + 2048, NULL);
    rf_conv3d_params p = {1, 1, 1, 1, 1, 1, 1, 0};
    RF_CHECK(rf_op_conv3d(be, &y, NULL, &x, &w, NULL, &p, NULL, &err) != 0);
    RF_CHECK_CONTAINS(err.msg, "conv3d"); /* needs scratch */
    sy[0] = 2;                            /* wrong output frame count */
    rf_tensor_init(&y, RF_DTYPE_F32, 4, sy, buf + 2048, NULL);
    RF_CHECK(rf_op_conv3d(be, &y, NULL, &x, &w, NULL, &p, NULL, &err) != 0);
    RF_CHECK_CONTAINS(err.msg, "do not fit");
    sw[4] = 5; /* channel mismatch */
    sy[0] = 1;
    rf_tensor_init(&w, RF_DTYPE_F32, 5, sw, buf + 1024, NULL);
    rf_tensor_init(&y, RF_DTYPE_F32, 4, sy, buf + 2048, NULL);
    RF_CHECK(rf_op_conv3d(be, &y, NULL, &x, &w, NULL, &p, NULL, &err) != 0);
    sw[4] = 2;
    rf_tensor_init(&w, RF_DTYPE_F32, 5, sw, buf + 1024, NULL);
    p.st = 0;
    RF_CHECK(rf_op_conv3d(be, &y, NULL, &x, &w, NULL, &p, NULL, &err) != 0);
    RF_CHECK_CONTAINS(err.msg, "strides");
    p.st = 1;
    rf_tensor_init(&y, RF_DTYPE_F32, 4, sy, buf, NULL); /* aliases x */
    RF_CHECK(rf_op_conv3d(be, &y, NULL, &x, &w, NULL, &p, NULL, &err) != 0);
    RF_CHECK_CONTAINS(err.msg, "alias");
    rf_backend_destroy(&be);
}
