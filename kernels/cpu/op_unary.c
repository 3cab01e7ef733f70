/* op_unary.c - GELU (tanh and erf forms) and SiLU on the CPU.
 *
 * GELU-tanh uses 0.5 x (1 + tanh u) = x sigmoid(2u), u = sqrt(2/pi)(x + 0.044715 x^3),
 * which is the same function and runs on the vectorized exp. GELU-erf is scalar erff.
 */
#include "cpu.h"

#include <math.h>

typedef struct {
    float *y;
    const float *x;
    rf_unary_op op;
} s_un;

static void s_range(void *p, int64_t r0, int64_t r1)
{
    const s_un *U = p;
    const float k = 2.0f * 0.7978845608028654f; /* 2 sqrt(2/pi) */
    switch (U->op) {
    case RF_UNARY_GELU_TANH:
        rf_cpu_sigmoid_mul(U->y + r0, U->x + r0, k, k * 0.044715f, r1 - r0);
        break;
    case RF_UNARY_SILU: rf_cpu_sigmoid_mul(U->y + r0, U->x + r0, 1.0f, 0.0f, r1 - r0); break;
    case RF_UNARY_GELU_ERF:
        for (int64_t i = r0; i < r1; i++)
            U->y[i] = 0.5f * U->x[i] * (1.0f + erff(U->x[i] * 0.70710678118654752f));
        break;
    default: break;
    }
}

int rf_cpu_unary(void *ctx, rf_tensor *y, const rf_tensor *x, rf_unary_op op, rf_error *err)
{
    (void)err;
    s_un U = {y->data, x->data, op};
    rf_cpu_parallel_range(ctx, (int64_t)rf_tensor_numel(x), 4096, s_range, &U);
    return 0;
}
