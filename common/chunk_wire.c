/* chunk_wire.c - chunk states to and from the wire and the blob store (see chunk_wire.h).
 *
 * The wire direction borrows: the ChunkState message and the blob descriptors live in
 * one caller-owned struct and point at the state's tensors, so sending a round copies
 * no tensor data. The receiving direction and unpack copy into a fresh state through
 * rf_chunk_state_add, which checks every shape against the held frames.
 */
#include "chunk_wire.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "packed chunk states are little-endian");

#define PACK_MAGIC "RFCHUNK1"

int rf_chunk_state_set_spans(rf_chunk_state *s, const rf_cs_span *spans, int nspans, rf_error *err)
{
    for (int i = 0; i < s->ntensors; i++)
        if (s->tensors[i].frame_axis >= 0)
            return rf_error_set(err, RF_EINVAL,
                                "chunk state: held spans change only before framed tensors");
    if (nspans < 1 || nspans > RF_CS_MAX_SPANS)
        return rf_error_set(err, RF_EINVAL, "chunk state: %d held spans (1..%d allowed)", nspans,
                            RF_CS_MAX_SPANS);
    int64_t end = s->window_start;
    for (int i = 0; i < nspans; i++) {
        if (spans[i].len < 1 || spans[i].start < end ||
            spans[i].start + spans[i].len > s->window_start + s->window_len)
            return rf_error_set(err, RF_EINVAL,
                                "chunk state: held span %d [%" PRId64 ", +%" PRId64
                                ") is empty, overlaps the previous one or leaves the window "
                                "[%" PRId64 ", +%" PRId64 ")",
                                i, spans[i].start, spans[i].len, s->window_start, s->window_len);
        end = spans[i].start + spans[i].len;
    }
    s->nspans = nspans;
    for (int i = 0; i < nspans; i++)
        s->spans[i] = spans[i];
    return 0;
}

int rf_chunk_wire_from_state(rf_chunk_wire *w, const rf_chunk_state *s, const char *prefix,
                             uint32_t step, uint32_t round, rf_error *err)
{
    if (strlen(prefix) >= RF_CHUNK_WIRE_PREFIX_MAX)
        return rf_error_set(err, RF_EINVAL, "chunk wire: blob prefix '%s' too long", prefix);
    if (s->window_start + s->window_len > UINT32_MAX)
        return rf_error_set(err, RF_EINVAL, "chunk wire: window beyond 2^32 frames");
    memset(w, 0, sizeof(*w));
    reelfarm__chunk_state__init(&w->msg);
    reelfarm__frame_range__init(&w->window);
    w->msg.step = step;
    w->msg.round = round;
    w->window.start = (uint32_t)s->window_start;
    w->window.end = (uint32_t)(s->window_start + s->window_len);
    w->msg.window = &w->window;
    for (int i = 0; i < s->nspans; i++) {
        reelfarm__frame_range__init(&w->held[i]);
        w->held[i].start = (uint32_t)s->spans[i].start;
        w->held[i].end = (uint32_t)(s->spans[i].start + s->spans[i].len);
        w->held_ptrs[i] = &w->held[i];
    }
    w->msg.n_held = (size_t)s->nspans;
    w->msg.held = w->held_ptrs;
    for (int i = 0; i < s->nscalars; i++) {
        const rf_cs_scalar *sc = &s->scalars[i];
        Reelfarm__Scalar *m = &w->scalars[i];
        reelfarm__scalar__init(m);
        m->name = (char *)sc->name;
        switch (sc->kind) {
        case RF_CS_I64:
            m->value_case = REELFARM__SCALAR__VALUE_I;
            m->i = sc->i;
            break;
        case RF_CS_F64:
            m->value_case = REELFARM__SCALAR__VALUE_F;
            m->f = sc->f;
            break;
        case RF_CS_STR:
            m->value_case = REELFARM__SCALAR__VALUE_S;
            m->s = (char *)sc->s;
            break;
        }
        w->scalar_ptrs[i] = m;
    }
    w->msg.n_scalars = (size_t)s->nscalars;
    w->msg.scalars = w->scalar_ptrs;
    int64_t first = s->nspans > 0 ? s->spans[0].start : s->window_start;
    for (int i = 0; i < s->ntensors; i++) {
        const rf_cs_tensor *t = &s->tensors[i];
        rf_wire_blob *b = &w->blobs[i];
        snprintf(w->names[i], sizeof(w->names[i]), "%s%s", prefix, t->name);
        b->name = w->names[i];
        b->dtype = RF_DTYPE_F32;
        b->ndim = t->ndim;
        for (int d = 0; d < t->ndim; d++)
            b->shape[d] = t->shape[d];
        b->frame_axis = t->frame_axis;
        b->frame_start = t->frame_axis >= 0 ? first : 0;
        b->data = t->data;
        b->len = rf_cs_numel(t) * sizeof(float);
    }
    w->n_blobs = (size_t)s->ntensors;
    return 0;
}

int rf_chunk_wire_append(const rf_chunk_wire *w, rf_wire_blob *blobs, size_t *n, size_t cap,
                         rf_error *err)
{
    if (*n + w->n_blobs > cap)
        return rf_error_set(err, RF_ENOMEM, "chunk wire: %zu blobs do not fit in %zu",
                            *n + w->n_blobs, cap);
    for (size_t i = 0; i < w->n_blobs; i++)
        blobs[(*n)++] = w->blobs[i];
    return 0;
}

rf_chunk_state *rf_chunk_wire_to_state(const Reelfarm__ChunkState *msg, const rf_wire_blob *blobs,
                                       size_t n, const char *prefix, rf_error *err)
{
    if (!msg || !msg->window || msg->window->end <= msg->window->start) {
        rf_error_set(err, RF_EPROTO, "chunk state: missing or empty window");
        return NULL;
    }
    if (msg->n_held > RF_CS_MAX_SPANS || msg->n_scalars > RF_CS_MAX_SCALARS) {
        rf_error_set(err, RF_EPROTO, "chunk state: %zu held spans, %zu scalars (max %d, %d)",
                     msg->n_held, msg->n_scalars, RF_CS_MAX_SPANS, RF_CS_MAX_SCALARS);
        return NULL;
    }
    rf_chunk_state *s =
        rf_chunk_state_new(msg->window->start, (int64_t)msg->window->end - msg->window->start, err);
    if (!s)
        return NULL;
    int rc = 0;
    if (msg->n_held > 0) {
        rf_cs_span spans[RF_CS_MAX_SPANS];
        for (size_t i = 0; i < msg->n_held; i++) {
            const Reelfarm__FrameRange *h = msg->held[i];
            if (!h || h->end <= h->start) {
                rc = rf_error_set(err, RF_EPROTO, "chunk state: held span %zu is empty", i);
                break;
            }
            spans[i].start = h->start;
            spans[i].len = (int64_t)h->end - h->start;
        }
        if (!rc)
            rc = rf_chunk_state_set_spans(s, spans, (int)msg->n_held, err);
    }
    for (size_t i = 0; !rc && i < msg->n_scalars; i++) {
        const Reelfarm__Scalar *m = msg->scalars[i];
        if (!m || !m->name) {
            rc = rf_error_set(err, RF_EPROTO, "chunk state: scalar %zu has no name", i);
            break;
        }
        switch (m->value_case) {
        case REELFARM__SCALAR__VALUE_I: rc = rf_chunk_state_set_i64(s, m->name, m->i, err); break;
        case REELFARM__SCALAR__VALUE_F: rc = rf_chunk_state_set_f64(s, m->name, m->f, err); break;
        case REELFARM__SCALAR__VALUE_S:
            rc = rf_chunk_state_set_str(s, m->name, m->s ? m->s : "", err);
            break;
        default:
            rc = rf_error_set(err, RF_EPROTO, "chunk state: scalar '%s' has no value", m->name);
        }
    }
    size_t plen = strlen(prefix);
    for (size_t i = 0; !rc && i < n; i++) {
        const rf_wire_blob *b = &blobs[i];
        if (strncmp(b->name, prefix, plen) != 0)
            continue;
        if (b->dtype != RF_DTYPE_F32 || b->ndim < 1 || b->ndim > RF_CS_MAX_DIMS ||
            b->frame_axis < -1 || b->frame_axis >= b->ndim) {
            rc = rf_error_set(err, RF_EPROTO,
                              "chunk state: blob '%s' must be f32 with 1..%d dims and a frame "
                              "axis inside them",
                              b->name, RF_CS_MAX_DIMS);
            break;
        }
        if (b->frame_axis >= 0 && b->frame_start != s->spans[0].start) {
            rc = rf_error_set(err, RF_EPROTO,
                              "chunk state: blob '%s' starts at frame %" PRId64
                              " but the held frames start at %" PRId64,
                              b->name, b->frame_start, s->spans[0].start);
            break;
        }
        if (!rf_chunk_state_add(s, b->name + plen, b->ndim, b->shape, b->frame_axis,
                                (const float *)b->data, err)) {
            rc = err ? err->code : RF_EPROTO;
            if (err)
                err->code = RF_EPROTO;
        }
    }
    if (rc) {
        rf_error_prefix(err, "chunk state");
        rf_chunk_state_destroy(&s);
    }
    return s;
}

/* ---- packed bytes -------------------------------------------------------------- */

typedef struct s_buf {
    unsigned char *p;
    size_t len, cap;
    int oom;
} s_buf;

static void s_put(s_buf *b, const void *data, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        unsigned char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void s_u32(s_buf *b, uint32_t v)
{
    s_put(b, &v, 4);
}
static void s_i64(s_buf *b, int64_t v)
{
    s_put(b, &v, 8);
}

int rf_chunk_state_pack(const rf_chunk_state *s, uint32_t step, uint32_t round, void **out,
                        size_t *len, rf_error *err)
{
    s_buf b = {0};
    s_put(&b, PACK_MAGIC, 8);
    s_u32(&b, step);
    s_u32(&b, round);
    s_i64(&b, s->window_start);
    s_i64(&b, s->window_len);
    s_u32(&b, (uint32_t)s->nspans);
    for (int i = 0; i < s->nspans; i++) {
        s_i64(&b, s->spans[i].start);
        s_i64(&b, s->spans[i].len);
    }
    s_u32(&b, (uint32_t)s->nscalars);
    for (int i = 0; i < s->nscalars; i++) {
        const rf_cs_scalar *sc = &s->scalars[i];
        s_put(&b, sc->name, RF_CS_NAME_MAX);
        s_u32(&b, (uint32_t)sc->kind);
        s_i64(&b, sc->i);
        s_put(&b, &sc->f, 8);
        s_put(&b, sc->s, RF_CS_STR_MAX);
    }
    s_u32(&b, (uint32_t)s->ntensors);
    for (int i = 0; i < s->ntensors; i++) {
        const rf_cs_tensor *t = &s->tensors[i];
        s_put(&b, t->name, RF_CS_NAME_MAX);
        s_u32(&b, (uint32_t)t->ndim);
        s_u32(&b, (uint32_t)(int32_t)t->frame_axis);
        for (int d = 0; d < RF_CS_MAX_DIMS; d++)
            s_i64(&b, d < t->ndim ? t->shape[d] : 0);
        s_put(&b, t->data, rf_cs_numel(t) * sizeof(float));
    }
    if (b.oom) {
        free(b.p);
        return rf_error_set(err, RF_ENOMEM, "chunk state: out of memory packing");
    }
    *out = b.p;
    *len = b.len;
    return 0;
}

typedef struct s_rd {
    const unsigned char *p;
    size_t len, off;
} s_rd;

static int s_get(s_rd *r, void *dst, size_t n)
{
    if (r->len - r->off < n)
        return -1;
    memcpy(dst, r->p + r->off, n);
    r->off += n;
    return 0;
}

static int s_bad(rf_error *err, const char *what)
{
    return rf_error_set(err, RF_EINVAL, "packed chunk state: %s", what);
}

rf_chunk_state *rf_chunk_state_unpack(const void *buf, size_t len, uint32_t *step, uint32_t *round,
                                      rf_error *err)
{
    s_rd r = {buf, len, 0};
    char magic[8];
    uint32_t st, rd, nspans, nscalars = 0, ntensors = 0;
    int64_t ws, wl;
    if (s_get(&r, magic, 8) || memcmp(magic, PACK_MAGIC, 8) != 0) {
        s_bad(err, "bad magic (not a packed chunk state)");
        return NULL;
    }
    if (s_get(&r, &st, 4) || s_get(&r, &rd, 4) || s_get(&r, &ws, 8) || s_get(&r, &wl, 8) ||
        s_get(&r, &nspans, 4)) {
        s_bad(err, "truncated header");
        return NULL;
    }
    rf_chunk_state *s = rf_chunk_state_new(ws, wl, err);
    if (!s)
        return NULL;
    int rc = 0;
    rf_cs_span spans[RF_CS_MAX_SPANS];
    if (nspans < 1 || nspans > RF_CS_MAX_SPANS)
        rc = s_bad(err, "span count out of range");
    for (uint32_t i = 0; !rc && i < nspans; i++)
        if (s_get(&r, &spans[i].start, 8) || s_get(&r, &spans[i].len, 8))
            rc = s_bad(err, "truncated spans");
    if (!rc)
        rc = rf_chunk_state_set_spans(s, spans, (int)nspans, err);
    if (!rc && (s_get(&r, &nscalars, 4) || nscalars > RF_CS_MAX_SCALARS))
        rc = s_bad(err, "scalar count out of range");
    for (uint32_t i = 0; !rc && i < nscalars; i++) {
        rf_cs_scalar sc;
        uint32_t kind;
        if (s_get(&r, sc.name, RF_CS_NAME_MAX) || s_get(&r, &kind, 4) || s_get(&r, &sc.i, 8) ||
            s_get(&r, &sc.f, 8) || s_get(&r, sc.s, RF_CS_STR_MAX)) {
            rc = s_bad(err, "truncated scalars");
            break;
        }
        sc.name[RF_CS_NAME_MAX - 1] = 0;
        sc.s[RF_CS_STR_MAX - 1] = 0;
        if (kind == RF_CS_I64)
            rc = rf_chunk_state_set_i64(s, sc.name, sc.i, err);
        else if (kind == RF_CS_F64)
            rc = rf_chunk_state_set_f64(s, sc.name, sc.f, err);
        else if (kind == RF_CS_STR)
            rc = rf_chunk_state_set_str(s, sc.name, sc.s, err);
        else
            rc = s_bad(err, "unknown scalar kind");
    }
    if (!rc && (s_get(&r, &ntensors, 4) || ntensors > RF_CS_MAX_TENSORS))
        rc = s_bad(err, "tensor count out of range");
    for (uint32_t i = 0; !rc && i < ntensors; i++) {
        char name[RF_CS_NAME_MAX];
        uint32_t ndim, axis;
        int64_t shape[RF_CS_MAX_DIMS];
        if (s_get(&r, name, RF_CS_NAME_MAX) || s_get(&r, &ndim, 4) || s_get(&r, &axis, 4) ||
            s_get(&r, shape, sizeof(shape)) || ndim < 1 || ndim > RF_CS_MAX_DIMS) {
            rc = s_bad(err, "bad tensor header");
            break;
        }
        name[RF_CS_NAME_MAX - 1] = 0;
        uint64_t numel = 1;
        for (uint32_t d = 0; d < ndim; d++) {
            if (shape[d] < 1 || (uint64_t)shape[d] > (r.len - r.off) / sizeof(float) ||
                numel > (r.len - r.off) / sizeof(float) / (uint64_t)shape[d]) {
                numel = UINT64_MAX;
                break;
            }
            numel *= (uint64_t)shape[d];
        }
        if (numel == UINT64_MAX || numel * sizeof(float) > r.len - r.off) {
            rc = s_bad(err, "tensor data truncated or shape invalid");
            break;
        }
        float *data = malloc(numel * sizeof(float) + 1);
        if (!data) {
            rc = rf_error_set(err, RF_ENOMEM, "packed chunk state: out of memory");
            break;
        }
        s_get(&r, data, numel * sizeof(float));
        if (!rf_chunk_state_add(s, name, (int)ndim, shape, (int32_t)axis, data, err))
            rc = RF_EINVAL;
        free(data);
    }
    if (!rc && r.off != r.len)
        rc = s_bad(err, "trailing bytes");
    if (rc) {
        rf_chunk_state_destroy(&s);
        return NULL;
    }
    if (step)
        *step = st;
    if (round)
        *round = rd;
    return s;
}
