/* op_fill.c - sets every element of an F32 tensor to one value on the CPU. */
#include "cpu.h"

int rf_cpu_fill(void *ctx, rf_tensor *y, float value, rf_error *err)
{
    (void)ctx;
    (void)err;
    float *p = y->data;
    size_t n = rf_tensor_numel(y);
    for (size_t i = 0; i < n; i++)
        p[i] = value;
    return 0;
}
