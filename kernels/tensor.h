/* tensor.h - the tensor value every op reads and writes.
 *
 * A tensor is a small value struct: dtype, up to 5 dims (outermost first, row-major,
 * exactly like PyTorch's contiguous layout) and a pointer into memory owned by a
 * backend buffer (rf_buffer, see backend.h) or by an arena carved from one. Tensors are
 * always contiguous; a "view" is just another rf_tensor over the same bytes. A tensor
 * never owns memory and never frees it. Its data pointer is backend memory: only the
 * backend that allocated it may dereference it (use rf_backend_upload/download).
 */
#ifndef RF_TENSOR_H
#define RF_TENSOR_H

#include "dtype.h"
#include "error.h"

#include <stddef.h>
#include <stdint.h>

#define RF_TENSOR_MAX_DIMS 5

typedef struct rf_buffer rf_buffer;

typedef struct rf_tensor {
    rf_dtype dtype;                 /* F32, BF16 or F16 for data; F64/U8 for tables and masks */
    int ndim;                       /* 1..RF_TENSOR_MAX_DIMS */
    int64_t ne[RF_TENSOR_MAX_DIMS]; /* shape, outermost first; entries >= ndim are 1 */
    void *data;                     /* backend memory; borrowed */
    rf_buffer *buf;                 /* the buffer that owns data (NULL for foreign memory) */
} rf_tensor;

/* Fills *t as a tensor of the given shape over data (owned by buf, may be NULL). */
void rf_tensor_init(rf_tensor *t, rf_dtype dtype, int ndim, const int64_t *shape, void *data,
                    rf_buffer *buf);
/* Number of elements (product of the shape). */
size_t rf_tensor_numel(const rf_tensor *t);
/* Bytes of data: numel x dtype size. */
size_t rf_tensor_nbytes(const rf_tensor *t);
/* Product of dims [0, upto): e.g. the number of rows of a [B,T,C] tensor is
 * rf_tensor_rows(t) = numel / ne[ndim-1]. */
size_t rf_tensor_rows(const rf_tensor *t);
/* Returns a view of t with a new shape of the same numel (asserts it matches). */
rf_tensor rf_tensor_view(const rf_tensor *t, int ndim, const int64_t *shape);
/* Returns the view of rows [r0, r0+n) along dim 0 (asserts bounds). */
rf_tensor rf_tensor_slice0(const rf_tensor *t, int64_t r0, int64_t n);
/* 1 when a and b have the same ndim and shape. */
int rf_tensor_same_shape(const rf_tensor *a, const rf_tensor *b);
/* Writes "[2,16,4,8,8] F32" into buf (at most cap bytes) and returns buf. */
const char *rf_tensor_shape_str(const rf_tensor *t, char *buf, size_t cap);

#endif
