/* tensor.c - shape arithmetic of rf_tensor (no memory is touched here).
 *
 * Views share bytes with their parent; nothing here allocates or frees.
 */
#include "tensor.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

void rf_tensor_init(rf_tensor *t, rf_dtype dtype, int ndim, const int64_t *shape, void *data,
                    rf_buffer *buf)
{
    assert(t && ndim >= 1 && ndim <= RF_TENSOR_MAX_DIMS);
    memset(t, 0, sizeof(*t));
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < RF_TENSOR_MAX_DIMS; i++)
        t->ne[i] = i < ndim ? shape[i] : 1;
    t->data = data;
    t->buf = buf;
}

size_t rf_tensor_numel(const rf_tensor *t)
{
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= (size_t)t->ne[i];
    return n;
}

size_t rf_tensor_nbytes(const rf_tensor *t)
{
    return rf_tensor_numel(t) * rf_dtype_size(t->dtype);
}

size_t rf_tensor_rows(const rf_tensor *t)
{
    size_t n = 1;
    for (int i = 0; i + 1 < t->ndim; i++)
        n *= (size_t)t->ne[i];
    return n;
}

rf_tensor rf_tensor_view(const rf_tensor *t, int ndim, const int64_t *shape)
{
    rf_tensor v;
    rf_tensor_init(&v, t->dtype, ndim, shape, t->data, t->buf);
    assert(rf_tensor_numel(&v) == rf_tensor_numel(t));
    return v;
}

rf_tensor rf_tensor_slice0(const rf_tensor *t, int64_t r0, int64_t n)
{
    assert(r0 >= 0 && n >= 0 && r0 + n <= t->ne[0]);
    rf_tensor v = *t;
    size_t row = rf_tensor_numel(t) / (size_t)t->ne[0] * rf_dtype_size(t->dtype);
    v.ne[0] = n;
    v.data = (char *)t->data + (size_t)r0 * row;
    return v;
}

int rf_tensor_same_shape(const rf_tensor *a, const rf_tensor *b)
{
    if (a->ndim != b->ndim)
        return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->ne[i] != b->ne[i])
            return 0;
    return 1;
}

const char *rf_tensor_shape_str(const rf_tensor *t, char *buf, size_t cap)
{
    size_t n = 0;
    if (cap == 0)
        return buf;
    buf[0] = '\0';
    n += (size_t)snprintf(buf + n, cap - n, "[");
    for (int i = 0; i < t->ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? "," : "", (long long)t->ne[i]);
    if (n < cap)
        snprintf(buf + n, cap - n, "] %s", rf_dtype_name(t->dtype));
    return buf;
}
