/* chunk_state.c - a chunk's named framed f32 tensors and its sync scalars.
 *
 * Plain owned arrays with fixed-size descriptors, so a state can be stepped in place,
 * copied, split into the overlap frames that travel and patched back. Every entry point
 * checks names, shapes and spans; it never reads a frame a state does not hold.
 */
#include "chunk_state.h"
#include "safetensors.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

rf_chunk_state *rf_chunk_state_new(int64_t window_start, int64_t window_len, rf_error *err)
{
    if (window_start < 0 || window_len < 1 || window_len > INT32_MAX) {
        rf_error_set(err, RF_EINVAL,
                     "chunk state: window [%" PRId64 ", +%" PRId64
                     ") is invalid; it needs start >= 0 and at least one frame",
                     window_start, window_len);
        return NULL;
    }
    rf_chunk_state *s = calloc(1, sizeof(*s));
    if (!s) {
        rf_error_set(err, RF_ENOMEM, "chunk state: out of memory");
        return NULL;
    }
    s->window_start = window_start;
    s->window_len = window_len;
    s->nspans = 1;
    s->spans[0].start = window_start;
    s->spans[0].len = window_len;
    return s;
}

void rf_chunk_state_destroy(rf_chunk_state **self)
{
    if (!self || !*self)
        return;
    for (int i = 0; i < (*self)->ntensors; i++)
        free((*self)->tensors[i].data);
    free(*self);
    *self = NULL;
}

size_t rf_cs_numel(const rf_cs_tensor *t)
{
    size_t n = 1;
    for (int d = 0; d < t->ndim; d++)
        n *= (size_t)t->shape[d];
    return n;
}

rf_chunk_state *rf_chunk_state_clone(const rf_chunk_state *self, rf_error *err)
{
    rf_chunk_state *c = malloc(sizeof(*c));
    if (!c) {
        rf_error_set(err, RF_ENOMEM, "chunk state: out of memory");
        return NULL;
    }
    memcpy(c, self, sizeof(*c));
    for (int i = 0; i < c->ntensors; i++)
        c->tensors[i].data = NULL;
    for (int i = 0; i < self->ntensors; i++) {
        size_t n = rf_cs_numel(&self->tensors[i]);
        c->tensors[i].data = malloc(n * sizeof(float) + 1);
        if (!c->tensors[i].data) {
            rf_chunk_state_destroy(&c);
            rf_error_set(err, RF_ENOMEM, "chunk state: out of memory copying '%s'",
                         self->tensors[i].name);
            return NULL;
        }
        memcpy(c->tensors[i].data, self->tensors[i].data, n * sizeof(float));
    }
    return c;
}

int64_t rf_chunk_state_held(const rf_chunk_state *self)
{
    int64_t n = 0;
    for (int i = 0; i < self->nspans; i++)
        n += self->spans[i].len;
    return n;
}

int64_t rf_chunk_state_frame_pos(const rf_chunk_state *self, int64_t f)
{
    int64_t base = 0;
    for (int i = 0; i < self->nspans; i++) {
        const rf_cs_span *sp = &self->spans[i];
        if (f >= sp->start && f < sp->start + sp->len)
            return base + (f - sp->start);
        base += sp->len;
    }
    return -1;
}

static int s_check_name(const char *what, const char *name, rf_error *err)
{
    if (!name || !name[0] || strlen(name) >= RF_CS_NAME_MAX)
        return rf_error_set(err, RF_EINVAL, "chunk state: %s name '%s' must be 1 to %d bytes long",
                            what, name ? name : "(null)", RF_CS_NAME_MAX - 1);
    for (const char *p = name; *p; p++)
        if (*p == '"' || *p == '\\' || *p == ',' || *p == ':' || (unsigned char)*p < 0x20)
            return rf_error_set(err, RF_EINVAL,
                                "chunk state: %s name '%s' holds a quote, backslash, comma, "
                                "colon or control character",
                                what, name);
    return 0;
}

rf_cs_tensor *rf_chunk_state_tensor(const rf_chunk_state *self, const char *name)
{
    for (int i = 0; i < self->ntensors; i++)
        if (strcmp(self->tensors[i].name, name) == 0)
            return (rf_cs_tensor *)&self->tensors[i];
    return NULL;
}

rf_cs_tensor *rf_chunk_state_add(rf_chunk_state *self, const char *name, int ndim,
                                 const int64_t *shape, int frame_axis, const float *data,
                                 rf_error *err)
{
    if (s_check_name("tensor", name, err))
        return NULL;
    if (rf_chunk_state_tensor(self, name)) {
        rf_error_set(err, RF_EINVAL, "chunk state: tensor '%s' added twice", name);
        return NULL;
    }
    if (self->ntensors >= RF_CS_MAX_TENSORS) {
        rf_error_set(err, RF_ENOMEM, "chunk state: more than %d tensors (adding '%s')",
                     RF_CS_MAX_TENSORS, name);
        return NULL;
    }
    if (ndim < 1 || ndim > RF_CS_MAX_DIMS || frame_axis < -1 || frame_axis >= ndim) {
        rf_error_set(err, RF_ESHAPE,
                     "chunk state: tensor '%s' has %d dims and frame axis %d; it needs 1 to "
                     "%d dims and a frame axis among them (or -1)",
                     name, ndim, frame_axis, RF_CS_MAX_DIMS);
        return NULL;
    }
    /* Only the frame axis may be 0 long (a chunk that overlaps nothing sends no frames). */
    size_t n = 1, nz = 1;
    for (int d = 0; d < ndim; d++) {
        int64_t lo = d == frame_axis ? 0 : 1;
        if (shape[d] < lo || (shape[d] > 0 && (uint64_t)shape[d] > ((uint64_t)1 << 40) / nz)) {
            rf_error_set(err, RF_ESHAPE,
                         "chunk state: tensor '%s' dim %d is %" PRId64
                         " (must be 1..2^40 elements in all)",
                         name, d, shape[d]);
            return NULL;
        }
        n *= (size_t)shape[d];
        if (shape[d] > 0)
            nz *= (size_t)shape[d];
    }
    if (frame_axis >= 0 && shape[frame_axis] != rf_chunk_state_held(self)) {
        rf_error_set(err, RF_ESHAPE,
                     "chunk state: tensor '%s' has %" PRId64 " frames on axis %d but the "
                     "state holds %" PRId64 " frames",
                     name, shape[frame_axis], frame_axis, rf_chunk_state_held(self));
        return NULL;
    }
    float *buf = data ? malloc(n * sizeof(float) + 1) : calloc(n + 1, sizeof(float));
    if (!buf) {
        rf_error_set(err, RF_ENOMEM, "chunk state: out of memory for tensor '%s'", name);
        return NULL;
    }
    if (data)
        memcpy(buf, data, n * sizeof(float));
    rf_cs_tensor *t = &self->tensors[self->ntensors++];
    memset(t, 0, sizeof(*t));
    snprintf(t->name, sizeof(t->name), "%s", name);
    t->ndim = ndim;
    memcpy(t->shape, shape, (size_t)ndim * sizeof(int64_t));
    t->frame_axis = frame_axis;
    t->data = buf;
    return t;
}

const rf_cs_scalar *rf_chunk_state_scalar(const rf_chunk_state *self, const char *name)
{
    for (int i = 0; i < self->nscalars; i++)
        if (strcmp(self->scalars[i].name, name) == 0)
            return &self->scalars[i];
    return NULL;
}

static rf_cs_scalar *s_scalar_slot(rf_chunk_state *self, const char *name, rf_cs_kind kind,
                                   rf_error *err)
{
    if (s_check_name("scalar", name, err))
        return NULL;
    rf_cs_scalar *sc = (rf_cs_scalar *)rf_chunk_state_scalar(self, name);
    if (sc) {
        if (sc->kind != kind) {
            rf_error_set(err, RF_EINVAL, "chunk state: scalar '%s' cannot change its kind", name);
            return NULL;
        }
        return sc;
    }
    if (self->nscalars >= RF_CS_MAX_SCALARS) {
        rf_error_set(err, RF_ENOMEM, "chunk state: more than %d scalars (adding '%s')",
                     RF_CS_MAX_SCALARS, name);
        return NULL;
    }
    sc = &self->scalars[self->nscalars++];
    memset(sc, 0, sizeof(*sc));
    snprintf(sc->name, sizeof(sc->name), "%s", name);
    sc->kind = kind;
    return sc;
}

int rf_chunk_state_set_i64(rf_chunk_state *self, const char *name, int64_t v, rf_error *err)
{
    rf_cs_scalar *sc = s_scalar_slot(self, name, RF_CS_I64, err);
    if (!sc)
        return err ? (int)err->code : RF_EINVAL;
    sc->i = v;
    return 0;
}

int rf_chunk_state_set_f64(rf_chunk_state *self, const char *name, double v, rf_error *err)
{
    rf_cs_scalar *sc = s_scalar_slot(self, name, RF_CS_F64, err);
    if (!sc)
        return err ? (int)err->code : RF_EINVAL;
    sc->f = v;
    return 0;
}

int rf_chunk_state_set_str(rf_chunk_state *self, const char *name, const char *v, rf_error *err)
{
    if (!v || strlen(v) >= RF_CS_STR_MAX)
        return rf_error_set(err, RF_EINVAL,
                            "chunk state: scalar '%s' string is longer than %d bytes", name,
                            RF_CS_STR_MAX - 1);
    rf_cs_scalar *sc = s_scalar_slot(self, name, RF_CS_STR, err);
    if (!sc)
        return err ? (int)err->code : RF_EINVAL;
    snprintf(sc->s, sizeof(sc->s), "%s", v);
    return 0;
}

static const rf_cs_scalar *s_get(const rf_chunk_state *self, const char *name, rf_cs_kind kind,
                                 rf_error *err)
{
    const rf_cs_scalar *sc = rf_chunk_state_scalar(self, name);
    if (!sc) {
        rf_error_set(err, RF_ENOTFOUND, "chunk state: scalar '%s' is missing", name);
        return NULL;
    }
    if (sc->kind != kind) {
        rf_error_set(err, RF_EINVAL, "chunk state: scalar '%s' is a %s, expected a %s", name,
                     sc->kind == RF_CS_I64   ? "integer"
                     : sc->kind == RF_CS_F64 ? "float"
                                             : "string",
                     kind == RF_CS_I64   ? "integer"
                     : kind == RF_CS_F64 ? "float"
                                         : "string");
        return NULL;
    }
    return sc;
}

int rf_chunk_state_get_i64(const rf_chunk_state *self, const char *name, int64_t *out,
                           rf_error *err)
{
    const rf_cs_scalar *sc = s_get(self, name, RF_CS_I64, err);
    if (!sc)
        return err ? (int)err->code : RF_EINVAL;
    *out = sc->i;
    return 0;
}

int rf_chunk_state_get_f64(const rf_chunk_state *self, const char *name, double *out, rf_error *err)
{
    const rf_cs_scalar *sc = s_get(self, name, RF_CS_F64, err);
    if (!sc)
        return err ? (int)err->code : RF_EINVAL;
    *out = sc->f;
    return 0;
}

static void s_scalar_text(const rf_cs_scalar *sc, char *buf, size_t cap)
{
    switch (sc->kind) {
    case RF_CS_I64: snprintf(buf, cap, "%" PRId64, sc->i); break;
    case RF_CS_F64: snprintf(buf, cap, "%.17g", sc->f); break;
    default: snprintf(buf, cap, "\"%s\"", sc->s); break;
    }
}

static int s_scalar_equal(const rf_cs_scalar *a, const rf_cs_scalar *b)
{
    if (a->kind != b->kind)
        return 0;
    switch (a->kind) {
    case RF_CS_I64: return a->i == b->i;
    case RF_CS_F64: return memcmp(&a->f, &b->f, sizeof(double)) == 0;
    default: return strcmp(a->s, b->s) == 0;
    }
}

static int s_scalars_agree(const rf_chunk_state *a, const rf_chunk_state *b, rf_error *err)
{
    char va[96], vb[96];
    for (int pass = 0; pass < 2; pass++) {
        const rf_chunk_state *x = pass ? b : a, *y = pass ? a : b;
        for (int i = 0; i < x->nscalars; i++) {
            const rf_cs_scalar *sx = &x->scalars[i];
            const rf_cs_scalar *sy = rf_chunk_state_scalar(y, sx->name);
            if (!sy)
                return rf_error_set(err, RF_EINVAL,
                                    "chunk states disagree: scalar '%s' is in the chunk at "
                                    "frame %" PRId64 " but not in the chunk at frame %" PRId64
                                    "; states from different samplers cannot be fused",
                                    sx->name, x->window_start, y->window_start);
            if (!pass && !s_scalar_equal(sx, sy)) {
                s_scalar_text(sx, va, sizeof(va));
                s_scalar_text(sy, vb, sizeof(vb));
                return rf_error_set(err, RF_EINVAL,
                                    "chunk states disagree: scalar '%s' is %s in the chunk at "
                                    "frame %" PRId64 " and %s in the chunk at frame %" PRId64
                                    "; chunks must be at the same step of the same schedule "
                                    "to be fused",
                                    sx->name, va, x->window_start, vb, y->window_start);
            }
        }
    }
    return 0;
}

static int s_tensors_agree(const rf_chunk_state *a, const rf_chunk_state *b, rf_error *err)
{
    for (int pass = 0; pass < 2; pass++) {
        const rf_chunk_state *x = pass ? b : a, *y = pass ? a : b;
        for (int i = 0; i < x->ntensors; i++) {
            const rf_cs_tensor *tx = &x->tensors[i];
            if (tx->frame_axis < 0)
                continue;
            const rf_cs_tensor *ty = rf_chunk_state_tensor(y, tx->name);
            if (!ty || ty->frame_axis < 0)
                return rf_error_set(err, RF_EINVAL,
                                    "chunk states disagree: framed tensor '%s' is in the chunk "
                                    "at frame %" PRId64 " but not in the chunk at frame %" PRId64,
                                    tx->name, x->window_start, y->window_start);
            int same = tx->ndim == ty->ndim && tx->frame_axis == ty->frame_axis;
            for (int d = 0; same && d < tx->ndim; d++)
                same = d == tx->frame_axis || tx->shape[d] == ty->shape[d];
            if (!same)
                return rf_error_set(err, RF_ESHAPE,
                                    "chunk states disagree: tensor '%s' has a different shape "
                                    "or frame axis in the chunks at frames %" PRId64
                                    " and %" PRId64,
                                    tx->name, x->window_start, y->window_start);
        }
    }
    return 0;
}

int rf_chunk_state_compatible(const rf_chunk_state *a, const rf_chunk_state *b, rf_error *err)
{
    int rc = s_scalars_agree(a, b, err);
    if (rc)
        return rc;
    return s_tensors_agree(a, b, err);
}

/* Copies frames [src_pos, src_pos+count) of src's frame axis to [dst_pos, ...) of dst. */
static void s_copy_frames(rf_cs_tensor *dst, int64_t dst_pos, const rf_cs_tensor *src,
                          int64_t src_pos, int64_t count)
{
    assert(dst->ndim == src->ndim && dst->frame_axis == src->frame_axis);
    size_t outer = 1, inner = 1;
    for (int d = 0; d < src->frame_axis; d++)
        outer *= (size_t)src->shape[d];
    for (int d = src->frame_axis + 1; d < src->ndim; d++)
        inner *= (size_t)src->shape[d];
    size_t fs = (size_t)src->shape[src->frame_axis], fd = (size_t)dst->shape[dst->frame_axis];
    for (size_t o = 0; o < outer; o++)
        memcpy(dst->data + (o * fd + (size_t)dst_pos) * inner,
               src->data + (o * fs + (size_t)src_pos) * inner,
               (size_t)count * inner * sizeof(float));
}

rf_chunk_state *rf_chunk_state_extract(const rf_chunk_state *self, const rf_cs_span *spans,
                                       int nspans, rf_error *err)
{
    if (nspans < 0 || nspans > RF_CS_MAX_SPANS) {
        rf_error_set(err, RF_EINVAL, "chunk state: %d spans to extract (at most %d)", nspans,
                     RF_CS_MAX_SPANS);
        return NULL;
    }
    rf_cs_span keep[RF_CS_MAX_SPANS];
    int nkeep = 0;
    int64_t prev_end = INT64_MIN;
    for (int i = 0; i < nspans; i++) {
        const rf_cs_span *sp = &spans[i];
        if (sp->len == 0)
            continue;
        if (sp->len < 0 || sp->start < prev_end || rf_chunk_state_frame_pos(self, sp->start) < 0 ||
            rf_chunk_state_frame_pos(self, sp->start + sp->len - 1) < 0 ||
            rf_chunk_state_frame_pos(self, sp->start + sp->len - 1) -
                    rf_chunk_state_frame_pos(self, sp->start) !=
                sp->len - 1) {
            rf_error_set(err, RF_EINVAL,
                         "chunk state: span [%" PRId64 ", +%" PRId64 ") is not ascending, "
                         "disjoint and held by the chunk at frame %" PRId64,
                         sp->start, sp->len, self->window_start);
            return NULL;
        }
        prev_end = sp->start + sp->len;
        keep[nkeep++] = *sp;
    }
    rf_chunk_state *out = calloc(1, sizeof(*out));
    if (!out) {
        rf_error_set(err, RF_ENOMEM, "chunk state: out of memory");
        return NULL;
    }
    out->window_start = self->window_start;
    out->window_len = self->window_len;
    out->nspans = nkeep;
    memcpy(out->spans, keep, sizeof(keep));
    memcpy(out->scalars, self->scalars, sizeof(self->scalars));
    out->nscalars = self->nscalars;
    int64_t held = rf_chunk_state_held(out);
    for (int i = 0; i < self->ntensors; i++) {
        const rf_cs_tensor *t = &self->tensors[i];
        if (t->frame_axis < 0)
            continue;
        int64_t shape[RF_CS_MAX_DIMS];
        memcpy(shape, t->shape, sizeof(shape));
        shape[t->frame_axis] = held;
        rf_cs_tensor *d =
            rf_chunk_state_add(out, t->name, t->ndim, shape, t->frame_axis, NULL, err);
        if (!d) {
            rf_chunk_state_destroy(&out);
            return NULL;
        }
        int64_t pos = 0;
        for (int k = 0; k < nkeep; k++) {
            s_copy_frames(d, pos, t, rf_chunk_state_frame_pos(self, keep[k].start), keep[k].len);
            pos += keep[k].len;
        }
    }
    return out;
}

int rf_chunk_state_apply(rf_chunk_state *dst, const rf_chunk_state *src, rf_error *err)
{
    if (dst->window_start != src->window_start || dst->window_len != src->window_len)
        return rf_error_set(err, RF_EINVAL,
                            "chunk state: overlap for window [%" PRId64 ", +%" PRId64
                            ") applied to the chunk with window [%" PRId64 ", +%" PRId64 ")",
                            src->window_start, src->window_len, dst->window_start, dst->window_len);
    int rc = rf_chunk_state_compatible(dst, src, err);
    if (rc)
        return rc;
    for (int k = 0; k < src->nspans; k++) {
        const rf_cs_span *sp = &src->spans[k];
        int64_t p0 = rf_chunk_state_frame_pos(dst, sp->start);
        int64_t p1 = rf_chunk_state_frame_pos(dst, sp->start + sp->len - 1);
        if (p0 < 0 || p1 - p0 != sp->len - 1)
            return rf_error_set(err, RF_EINVAL,
                                "chunk state: frames [%" PRId64 ", +%" PRId64
                                ") are not all held by the chunk at frame %" PRId64,
                                sp->start, sp->len, dst->window_start);
    }
    for (int i = 0; i < src->ntensors; i++) {
        const rf_cs_tensor *t = &src->tensors[i];
        if (t->frame_axis < 0)
            continue;
        rf_cs_tensor *d = rf_chunk_state_tensor(dst, t->name);
        int64_t pos = 0;
        for (int k = 0; k < src->nspans; k++) {
            s_copy_frames(d, rf_chunk_state_frame_pos(dst, src->spans[k].start), t, pos,
                          src->spans[k].len);
            pos += src->spans[k].len;
        }
    }
    return 0;
}

int rf_chunk_state_save(const rf_chunk_state *self, const char *path, rf_error *err)
{
    rf_st_writer *w = rf_st_writer_new();
    if (!w)
        return rf_error_set(err, RF_ENOMEM, "chunk state: out of memory writing %s", path);
    char key[RF_CS_NAME_MAX + 32], val[RF_CS_MAX_SCALARS * RF_CS_NAME_MAX + 64];
    int rc = rf_st_writer_set_metadata(w, "reelfarm.chunk_state", "1", err);
    snprintf(val, sizeof(val), "%" PRId64 ",%" PRId64, self->window_start, self->window_len);
    if (!rc)
        rc = rf_st_writer_set_metadata(w, "window", val, err);
    size_t off = 0;
    val[0] = 0;
    for (int i = 0; i < self->nspans; i++)
        off += (size_t)snprintf(val + off, sizeof(val) - off, "%s%" PRId64 ":%" PRId64,
                                i ? "," : "", self->spans[i].start, self->spans[i].len);
    if (!rc)
        rc = rf_st_writer_set_metadata(w, "spans", val, err);
    for (int i = 0; !rc && i < self->ntensors; i++) {
        const rf_cs_tensor *t = &self->tensors[i];
        rc = rf_st_writer_add(w, t->name, RF_DTYPE_F32, t->ndim, t->shape, t->data, err);
        snprintf(key, sizeof(key), "frame_axis.%s", t->name);
        snprintf(val, sizeof(val), "%d", t->frame_axis);
        if (!rc)
            rc = rf_st_writer_set_metadata(w, key, val, err);
    }
    off = 0;
    val[0] = 0;
    for (int i = 0; i < self->nscalars; i++)
        off += (size_t)snprintf(val + off, sizeof(val) - off, "%s%s", i ? "," : "",
                                self->scalars[i].name);
    if (!rc)
        rc = rf_st_writer_set_metadata(w, "scalars", val, err);
    for (int i = 0; !rc && i < self->nscalars; i++) {
        const rf_cs_scalar *sc = &self->scalars[i];
        snprintf(key, sizeof(key), "scalar.%s", sc->name);
        switch (sc->kind) {
        case RF_CS_I64: snprintf(val, sizeof(val), "i64:%" PRId64, sc->i); break;
        case RF_CS_F64: snprintf(val, sizeof(val), "f64:%a", sc->f); break;
        default: snprintf(val, sizeof(val), "str:%s", sc->s); break;
        }
        rc = rf_st_writer_set_metadata(w, key, val, err);
    }
    if (!rc)
        rc = rf_st_writer_write(w, path, err);
    rf_st_writer_destroy(&w);
    if (rc)
        rf_error_prefix(err, "saving chunk state to %s", path);
    return rc;
}

/* Parses a whole decimal int64 from s (no trailing text); 0 or -1. */
static int s_parse_i64(const char *s, const char **end, int64_t *out)
{
    char *e = NULL;
    errno = 0;
    long long v = strtoll(s, &e, 10);
    if (e == s || errno)
        return -1;
    *out = v;
    *end = e;
    return 0;
}

static rf_chunk_state *s_load(const rf_safetensors *st, const char *path, rf_error *err)
{
    const char *ver = rf_st_metadata(st, "reelfarm.chunk_state");
    if (!ver || strcmp(ver, "1") != 0) {
        rf_error_set(err, ver ? RF_EVERSION : RF_EINVAL,
                     "%s: not a reelfarm chunk state (metadata reelfarm.chunk_state is %s, "
                     "expected \"1\")",
                     path, ver ? ver : "missing");
        return NULL;
    }
    const char *win = rf_st_metadata(st, "window"), *p;
    int64_t ws, wl;
    if (!win || s_parse_i64(win, &p, &ws) || *p != ',' || s_parse_i64(p + 1, &p, &wl) || *p) {
        rf_error_set(err, RF_EINVAL, "%s: metadata 'window' is %s, expected START,LEN", path,
                     win ? win : "missing");
        return NULL;
    }
    rf_chunk_state *s = rf_chunk_state_new(ws, wl, err);
    if (!s) {
        rf_error_prefix(err, "%s", path);
        return NULL;
    }
    const char *spans = rf_st_metadata(st, "spans");
    s->nspans = 0;
    p = spans;
    int64_t prev_end = ws;
    while (p && *p) {
        int64_t a, l;
        if (s->nspans >= RF_CS_MAX_SPANS || s_parse_i64(p, &p, &a) || *p != ':' ||
            s_parse_i64(p + 1, &p, &l) || (*p && *p != ',') || l < 1 || a < prev_end ||
            l > ws + wl - a) {
            rf_error_set(err, RF_EINVAL,
                         "%s: metadata 'spans' is '%s'; expected at most %d ascending "
                         "START:LEN spans inside the window [%" PRId64 ", +%" PRId64 ")",
                         path, spans, RF_CS_MAX_SPANS, ws, wl);
            goto fail;
        }
        s->spans[s->nspans++] = (rf_cs_span){a, l};
        prev_end = a + l;
        if (*p == ',')
            p++;
    }
    if (!spans) {
        rf_error_set(err, RF_EINVAL, "%s: metadata 'spans' is missing", path);
        goto fail;
    }
    for (size_t i = 0; i < rf_st_count(st); i++) {
        const rf_st_tensor *t = rf_st_at(st, i);
        char key[RF_CS_NAME_MAX + 32];
        snprintf(key, sizeof(key), "frame_axis.%s", t->name);
        const char *fa = rf_st_metadata(st, key);
        int64_t axis;
        if (t->dtype != RF_DTYPE_F32 || t->ndim > RF_CS_MAX_DIMS ||
            strlen(t->name) >= RF_CS_NAME_MAX) {
            rf_error_set(err, RF_ESHAPE,
                         "%s: tensor '%s' must be F32 with at most %d dims and a name shorter "
                         "than %d bytes",
                         path, t->name, RF_CS_MAX_DIMS, RF_CS_NAME_MAX);
            goto fail;
        }
        if (!fa || s_parse_i64(fa, &p, &axis) || *p || axis < -1 || axis >= t->ndim) {
            rf_error_set(err, RF_EINVAL,
                         "%s: metadata '%s' is %s; expected -1 or a dim of the tensor", path, key,
                         fa ? fa : "missing");
            goto fail;
        }
        rf_cs_tensor *ct = rf_chunk_state_add(s, t->name, t->ndim, t->shape, (int)axis, NULL, err);
        if (!ct || rf_st_read_f32(t, ct->data, err)) {
            rf_error_prefix(err, "%s", path);
            goto fail;
        }
    }
    const char *names = rf_st_metadata(st, "scalars");
    if (!names) {
        rf_error_set(err, RF_EINVAL, "%s: metadata 'scalars' is missing", path);
        goto fail;
    }
    for (p = names; *p;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        char name[RF_CS_NAME_MAX], key[RF_CS_NAME_MAX + 32];
        if (n == 0 || n >= sizeof(name)) {
            rf_error_set(err, RF_EINVAL, "%s: metadata 'scalars' holds an empty or long name",
                         path);
            goto fail;
        }
        memcpy(name, p, n);
        name[n] = 0;
        snprintf(key, sizeof(key), "scalar.%s", name);
        const char *v = rf_st_metadata(st, key), *q;
        int rc;
        int64_t iv;
        if (v && strncmp(v, "i64:", 4) == 0 && !s_parse_i64(v + 4, &q, &iv) && !*q) {
            rc = rf_chunk_state_set_i64(s, name, iv, err);
        } else if (v && strncmp(v, "f64:", 4) == 0 && v[4]) {
            char *fe = NULL;
            double d = strtod(v + 4, &fe);
            rc = *fe ? rf_error_set(err, RF_EINVAL, "bad float")
                     : rf_chunk_state_set_f64(s, name, d, err);
        } else if (v && strncmp(v, "str:", 4) == 0) {
            rc = rf_chunk_state_set_str(s, name, v + 4, err);
        } else {
            rc = RF_EINVAL;
        }
        if (rc) {
            rf_error_set(err, RF_EINVAL,
                         "%s: metadata '%s' is %s; expected i64:DEC, f64:HEXFLOAT or str:TEXT",
                         path, key, v ? v : "missing");
            goto fail;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return s;
fail:
    rf_chunk_state_destroy(&s);
    return NULL;
}

rf_chunk_state *rf_chunk_state_load(const char *path, rf_error *err)
{
    rf_safetensors *st = rf_st_open(path, err);
    if (!st)
        return NULL;
    rf_chunk_state *s = s_load(st, path, err);
    rf_st_destroy(&st);
    return s;
}
