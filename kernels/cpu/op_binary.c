/* op_binary.c - y = a (+,-,*) b on the CPU, b either a's shape or its trailing dims.
 *
 * Broadcasting is "b repeats over a's leading dims": element i of a pairs with element
 * i mod numel(b) of b. Split across the pool by element ranges.
 */
#include "cpu.h"

typedef struct {
    float *y;
    const float *a, *b;
    int64_t nb;
    rf_binary_op op;
} s_bin;

static void s_range(void *p, int64_t r0, int64_t r1)
{
    const s_bin *B = p;
    int64_t j = r0 % B->nb;
    for (int64_t i = r0; i < r1; i++) {
        float a = B->a[i], b = B->b[j];
        B->y[i] = B->op == RF_BINARY_ADD ? a + b : B->op == RF_BINARY_SUB ? a - b : a * b;
        if (++j == B->nb)
            j = 0;
    }
}

int rf_cpu_binary(void *ctx, rf_tensor *y, const rf_tensor *a, const rf_tensor *b, rf_binary_op op,
                  rf_error *err)
{
    (void)err;
    s_bin B = {y->data, a->data, b->data, (int64_t)rf_tensor_numel(b), op};
    if (B.nb == 0)
        return 0;
    rf_cpu_parallel_range(ctx, (int64_t)rf_tensor_numel(a), 4096, s_range, &B);
    return 0;
}
