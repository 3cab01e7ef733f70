/* op_layer_norm.c - LayerNorm over the last dim on the CPU, with or without affine.
 *
 * Mean and variance are accumulated in double per row (two passes), so the result does
 * not depend on the row length's rounding; rows are split across the pool.
 */
#include "cpu.h"

#include <math.h>

typedef struct {
    float *y;
    const float *x, *w, *b;
    int64_t c;
    float eps;
} s_ln;

static void s_rows(void *p, int64_t r0, int64_t r1)
{
    const s_ln *L = p;
    for (int64_t r = r0; r < r1; r++) {
        const float *x = L->x + r * L->c;
        float *y = L->y + r * L->c;
        double mean = 0.0, var = 0.0;
        for (int64_t i = 0; i < L->c; i++)
            mean += x[i];
        mean /= (double)L->c;
        for (int64_t i = 0; i < L->c; i++) {
            double d = x[i] - mean;
            var += d * d;
        }
        var /= (double)L->c;
        float inv = (float)(1.0 / sqrt(var + (double)L->eps));
        float mu = (float)mean;
        for (int64_t i = 0; i < L->c; i++) {
            float v = (x[i] - mu) * inv;
            if (L->w)
                v *= L->w[i];
            if (L->b)
                v += L->b[i];
            y[i] = v;
        }
    }
}

int rf_cpu_layer_norm(void *ctx, rf_tensor *y, const rf_tensor *x, const rf_tensor *w,
                      const rf_tensor *b, float eps, rf_error *err)
{
    (void)err;
    s_ln L = {y->data, x->data, w ? w->data : NULL, b ? b->data : NULL, x->ne[x->ndim - 1], eps};
    rf_cpu_parallel_range(ctx, (int64_t)rf_tensor_rows(x), 16, s_rows, &L);
    return 0;
}
