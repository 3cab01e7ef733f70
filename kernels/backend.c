/* backend.c - what every backend shares: buffers, uploads, the allocation counter.
 *
 * The counter exists so tests can assert that a forward pass performs no buffer
 * allocation; it is one relaxed atomic add per allocation, never on a hot path.
 */
#include "backend.h"

#include <stdatomic.h>
#include <stdlib.h>

static _Atomic uint64_t s_allocs;

uint64_t rf_kernels_alloc_count(void)
{
    return atomic_load_explicit(&s_allocs, memory_order_relaxed);
}

void rf_kernels_count_alloc(void)
{
    atomic_fetch_add_explicit(&s_allocs, 1, memory_order_relaxed);
}

void rf_backend_destroy(rf_backend **be)
{
    if (!be || !*be)
        return;
    if ((*be)->ops->destroy)
        (*be)->ops->destroy((*be)->ctx);
    free(*be);
    *be = NULL;
}

const char *rf_backend_name(const rf_backend *be)
{
    return be && be->ops && be->ops->name ? be->ops->name : "(none)";
}

rf_dtype rf_backend_matrix_dtype(const rf_backend *be, rf_dtype file_dt)
{
    return be && be->ops->matrix_dtype ? be->ops->matrix_dtype(be->ctx) : file_dt;
}

rf_buffer *rf_buffer_new(rf_backend *be, size_t bytes, rf_error *err)
{
    rf_kernels_count_alloc();
    rf_buffer *b = calloc(1, sizeof(*b));
    if (!b) {
        rf_error_set(err, RF_ENOMEM, "buffer: out of host memory");
        return NULL;
    }
    b->backend = be;
    b->size = bytes;
    b->data = be->ops->alloc(be->ctx, bytes ? bytes : 1);
    if (!b->data) {
        free(b);
        rf_error_set(err, RF_ENOMEM,
                     "%s backend: cannot allocate %zu bytes (%.1f MiB); use a smaller model, "
                     "batch or token count, or a machine with more memory",
                     rf_backend_name(be), bytes, (double)bytes / 1048576.0);
        return NULL;
    }
    return b;
}

void rf_buffer_destroy(rf_buffer **buf)
{
    if (!buf || !*buf)
        return;
    (*buf)->backend->ops->free((*buf)->backend->ctx, (*buf)->data);
    free(*buf);
    *buf = NULL;
}

int rf_tensor_upload(rf_backend *be, rf_tensor *t, const void *src, size_t n, rf_error *err)
{
    if (n != rf_tensor_nbytes(t))
        return rf_error_set(err, RF_ESHAPE, "upload: %zu bytes given for a tensor of %zu bytes", n,
                            rf_tensor_nbytes(t));
    return be->ops->upload(be->ctx, t->data, src, n, err);
}

int rf_tensor_download(rf_backend *be, const rf_tensor *t, void *dst, size_t n, rf_error *err)
{
    if (n != rf_tensor_nbytes(t))
        return rf_error_set(err, RF_ESHAPE, "download: %zu bytes asked from a tensor of %zu bytes",
                            n, rf_tensor_nbytes(t));
    return be->ops->download(be->ctx, dst, t->data, n, err);
}
