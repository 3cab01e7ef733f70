/* op_rope.c - rotary position embedding on the CPU, computed in double.
 *
 * x [B, T, H, D]: each pair (2i, 2i+1) of token t is rotated by the angle whose cos/sin
 * are table[t, i] (the same for every head). Tables may be F64 (Wan computes them in
 * float64) or F32. Tokens split across the pool; in place is fine.
 */
#include "cpu.h"

typedef struct {
    float *y;
    const float *x;
    const void *c, *s;
    int f64;
    int64_t t, h, d;
} s_rope;

static void s_rows(void *p, int64_t r0, int64_t r1)
{
    const s_rope *R = p;
    int64_t half = R->d / 2;
    for (int64_t r = r0; r < r1; r++) { /* r = b * T + t */
        int64_t t = r % R->t;
        for (int64_t hh = 0; hh < R->h; hh++) {
            const float *x = R->x + (r * R->h + hh) * R->d;
            float *y = R->y + (r * R->h + hh) * R->d;
            for (int64_t i = 0; i < half; i++) {
                double c, s;
                if (R->f64) {
                    c = ((const double *)R->c)[t * half + i];
                    s = ((const double *)R->s)[t * half + i];
                } else {
                    c = ((const float *)R->c)[t * half + i];
                    s = ((const float *)R->s)[t * half + i];
                }
                double a = x[2 * i], b = x[2 * i + 1];
                y[2 * i] = (float)(a * c - b * s);
                y[2 * i + 1] = (float)(a * s + b * c);
            }
        }
    }
}

int rf_cpu_rope(void *ctx, rf_tensor *y, const rf_tensor *x, const rf_tensor *cos_t,
                const rf_tensor *sin_t, rf_error *err)
{
    (void)err;
    s_rope R = {y->data,  x->data,  cos_t->data, sin_t->data, cos_t->dtype == RF_DTYPE_F64,
                x->ne[1], x->ne[2], x->ne[3]};
    rf_cpu_parallel_range(ctx, x->ne[0] * x->ne[1], 16, s_rows, &R);
    return 0;
}
