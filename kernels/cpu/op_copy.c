/* op_copy.c - copy with dtype conversion between F32, BF16 and F16 on the CPU.
 *
 * To F32 uses the exact widening of common/dtype.h; from F32 rounds to nearest even.
 */
#include "cpu.h"

#include <string.h>

int rf_cpu_copy(void *ctx, rf_tensor *dst, const rf_tensor *src, rf_error *err)
{
    (void)ctx;
    size_t n = rf_tensor_numel(src);
    if (dst->dtype == src->dtype) {
        memmove(dst->data, src->data, rf_tensor_nbytes(src));
        return 0;
    }
    if (dst->dtype == RF_DTYPE_F32) {
        if (rf_convert_to_f32(dst->data, src->data, src->dtype, n) != 0)
            return rf_error_set(err, RF_EUNSUPPORTED, "copy: cannot convert from %s",
                                rf_dtype_name(src->dtype));
        return 0;
    }
    if (src->dtype != RF_DTYPE_F32)
        return rf_error_set(err, RF_EUNSUPPORTED, "copy: %s -> %s goes through F32; copy twice",
                            rf_dtype_name(src->dtype), rf_dtype_name(dst->dtype));
    const float *s = src->data;
    uint16_t *d = dst->data;
    for (size_t i = 0; i < n; i++)
        d[i] = dst->dtype == RF_DTYPE_BF16 ? rf_f32_to_bf16(s[i]) : rf_f32_to_f16(s[i]);
    return 0;
}
