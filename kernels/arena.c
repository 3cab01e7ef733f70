/* arena.c - bump allocation over one rf_buffer (see arena.h).
 *
 * Taking memory is a pointer bump; giving it back is resetting to a mark. The only
 * allocations are the arena struct and its buffer, both at creation.
 */
#include "arena.h"

#include "backend.h"

#include <stdlib.h>

struct rf_arena {
    rf_buffer *buf;
    size_t used;
    size_t high;
};

size_t rf_arena_round(size_t n)
{
    return (n + RF_ARENA_ALIGN - 1) / RF_ARENA_ALIGN * RF_ARENA_ALIGN;
}

size_t rf_arena_tensor_bytes(rf_dtype dtype, int ndim, const int64_t *shape)
{
    size_t n = rf_dtype_size(dtype);
    for (int i = 0; i < ndim; i++)
        n *= (size_t)shape[i];
    return rf_arena_round(n);
}

rf_arena *rf_arena_new(struct rf_backend *be, size_t bytes, rf_error *err)
{
    rf_arena *a = calloc(1, sizeof(*a));
    if (!a) {
        rf_error_set(err, RF_ENOMEM, "arena: out of memory");
        return NULL;
    }
    a->buf = rf_buffer_new(be, bytes ? bytes : RF_ARENA_ALIGN, err);
    if (!a->buf) {
        free(a);
        return NULL;
    }
    return a;
}

void rf_arena_destroy(rf_arena **a)
{
    if (!a || !*a)
        return;
    rf_buffer_destroy(&(*a)->buf);
    free(*a);
    *a = NULL;
}

void *rf_arena_alloc(rf_arena *a, size_t bytes)
{
    size_t need = rf_arena_round(bytes);
    if (need > a->buf->size - a->used)
        return NULL;
    void *p = (char *)a->buf->data + a->used;
    a->used += need;
    if (a->used > a->high)
        a->high = a->used;
    return p;
}

int rf_arena_tensor(rf_arena *a, rf_tensor *out, rf_dtype dtype, int ndim, const int64_t *shape,
                    const char *what, rf_error *err)
{
    size_t need = rf_arena_tensor_bytes(dtype, ndim, shape);
    void *p = rf_arena_alloc(a, need);
    if (!p)
        return rf_error_set(err, RF_ENOMEM,
                            "arena: %s needs %zu bytes but only %zu of %zu are free; the arena "
                            "was sized for a smaller batch or token count",
                            what ? what : "tensor", need, a->buf->size - a->used, a->buf->size);
    rf_tensor_init(out, dtype, ndim, shape, p, a->buf);
    return 0;
}

size_t rf_arena_mark(const rf_arena *a)
{
    return a->used;
}

void rf_arena_reset(rf_arena *a, size_t mark)
{
    if (mark <= a->used)
        a->used = mark;
}

size_t rf_arena_capacity(const rf_arena *a)
{
    return a->buf->size;
}

size_t rf_arena_high_water(const rf_arena *a)
{
    return a->high;
}
