/* op_conv3d.c - channel-last 3D convolution on the CPU: im2col tiles + OpenBLAS sgemm.
 *
 * The input is the time concatenation of `prev` (cached frames, may be absent) and `x`,
 * so a causal conv never copies its input to prepend its cache. Each task owns one
 * output frame and a tile of output pixels: it gathers the tile's receptive fields
 * (optionally through a nearest x2 spatial upsample, zero outside the padding) into its
 * worker's scratch rows [pixels, kt*kh*kw*Cin] and multiplies by the repacked weight
 * [Cout, kt*kh*kw*Cin]. 1x1x1 stride-1 convs skip the gather. Never allocates.
 */
#include "cpu.h"

#include <cblas.h>
#include <string.h>

#define RF_CONV_TILE_FLOATS (1 << 20) /* im2col floats per worker */

typedef struct {
    float *y;
    const float *prev, *x, *w, *b;
    int64_t tp, tx;           /* frames in prev and x */
    int64_t h, w_in, cin;     /* input frame (before the optional upsample) */
    int64_t ho, wo, cout, to; /* output */
    int64_t kt, kh, kw, k;    /* kernel; k = kt*kh*kw*cin */
    rf_conv3d_params p;
    int64_t tile, ntiles; /* output pixels per task */
    float *scratch;       /* per worker: tile * k floats */
} s_conv;

static int64_t s_tile(int64_t k, int64_t npix)
{
    int64_t t = RF_CONV_TILE_FLOATS / (k > 0 ? k : 1);
    if (t < 16)
        t = 16;
    if (t > 1024)
        t = 1024;
    return t < npix ? t : npix;
}

static int s_pointwise(const rf_tensor *w, const rf_conv3d_params *p)
{
    return w->ne[1] == 1 && w->ne[2] == 1 && w->ne[3] == 1 && p->st == 1 && p->sh == 1 &&
           p->sw == 1 && !p->pad_top && !p->pad_bottom && !p->pad_left && !p->pad_right && !p->up2;
}

static const float *s_frame(const s_conv *C, int64_t t)
{
    size_t fsz = (size_t)(C->h * C->w_in * C->cin);
    if (t < C->tp)
        return C->prev + (size_t)t * fsz;
    return C->x + (size_t)(t - C->tp) * fsz;
}

static void s_task(void *arg, int64_t task, int worker)
{
    const s_conv *C = arg;
    int64_t t = task / C->ntiles, p0 = (task % C->ntiles) * C->tile;
    int64_t p1 = p0 + C->tile < C->ho * C->wo ? p0 + C->tile : C->ho * C->wo;
    int64_t np = p1 - p0;
    int up = C->p.up2 ? 1 : 0;
    int64_t hv = C->h << up, wv = C->w_in << up; /* virtual (upsampled) input size */
    const float *a;
    if (C->scratch == NULL) { /* pointwise: the input rows are the im2col rows */
        a = s_frame(C, t) + (size_t)p0 * (size_t)C->cin;
    } else {
        float *rows = C->scratch + (size_t)worker * (size_t)(C->tile * C->k);
        size_t cb = (size_t)C->cin * sizeof(float);
        for (int64_t p = p0; p < p1; p++) {
            int64_t oy = p / C->wo, ox = p % C->wo;
            float *dst = rows + (size_t)((p - p0) * C->k);
            for (int64_t dt = 0; dt < C->kt; dt++) {
                const float *fr = s_frame(C, t * C->p.st + dt);
                for (int64_t dy = 0; dy < C->kh; dy++) {
                    int64_t iy = oy * C->p.sh + dy - C->p.pad_top;
                    for (int64_t dx = 0; dx < C->kw; dx++, dst += C->cin) {
                        int64_t ix = ox * C->p.sw + dx - C->p.pad_left;
                        if (iy < 0 || iy >= hv || ix < 0 || ix >= wv)
                            memset(dst, 0, cb);
                        else
                            memcpy(dst, fr + ((iy >> up) * C->w_in + (ix >> up)) * C->cin, cb);
                    }
                }
            }
        }
        a = rows;
    }
    float *yt = C->y + (size_t)((t * C->ho * C->wo + p0) * C->cout);
    float beta = 0.0f;
    if (C->b) {
        for (int64_t i = 0; i < np; i++)
            memcpy(yt + i * C->cout, C->b, (size_t)C->cout * sizeof(float));
        beta = 1.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)np, (int)C->cout, (int)C->k, 1.0f, a,
                (int)C->k, C->w, (int)C->k, beta, yt, (int)C->cout);
}

size_t rf_cpu_scratch_conv3d(void *ctx, const rf_tensor *y, const rf_tensor *w,
                             const rf_conv3d_params *p)
{
    if (s_pointwise(w, p))
        return 0;
    int64_t k = w->ne[1] * w->ne[2] * w->ne[3] * w->ne[4];
    int64_t tile = s_tile(k, y->ne[1] * y->ne[2]);
    return (size_t)rf_cpu_nthreads(ctx) * (size_t)(tile * k) * sizeof(float) + 64;
}

int rf_cpu_conv3d(void *ctx, rf_tensor *y, const rf_tensor *prev, const rf_tensor *x,
                  const rf_tensor *w, const rf_tensor *b, const rf_conv3d_params *p,
                  rf_arena *scratch, rf_error *err)
{
    s_conv C;
    memset(&C, 0, sizeof(C));
    C.y = y->data;
    C.prev = prev ? prev->data : NULL;
    C.tp = prev ? prev->ne[0] : 0;
    C.x = x->data;
    C.tx = x->ne[0];
    C.w = w->data;
    C.b = b ? b->data : NULL;
    C.h = x->ne[1];
    C.w_in = x->ne[2];
    C.cin = x->ne[3];
    C.to = y->ne[0];
    C.ho = y->ne[1];
    C.wo = y->ne[2];
    C.cout = y->ne[3];
    C.kt = w->ne[1];
    C.kh = w->ne[2];
    C.kw = w->ne[3];
    C.k = C.kt * C.kh * C.kw * C.cin;
    C.p = *p;
    C.tile = s_tile(C.k, C.ho * C.wo);
    C.ntiles = (C.ho * C.wo + C.tile - 1) / C.tile;
    size_t mark = scratch ? rf_arena_mark(scratch) : 0;
    if (!s_pointwise(w, p)) {
        size_t need = rf_cpu_scratch_conv3d(ctx, y, w, p);
        C.scratch = scratch ? rf_arena_alloc(scratch, need) : NULL;
        if (!C.scratch)
            return rf_error_set(err, RF_ENOMEM,
                                "conv3d: scratch arena lacks %zu bytes (size it with "
                                "rf_op_conv3d_scratch)",
                                need);
    }
    rf_cpu_parallel(ctx, C.to * C.ntiles, s_task, &C);
    if (scratch)
        rf_arena_reset(scratch, mark);
    return 0;
}
