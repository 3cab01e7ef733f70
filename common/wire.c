/* wire.c - framing of reelfarm messages over ZeroMQ (see wire.h).
 *
 * Receive takes every frame of a multipart message off the socket before judging it,
 * so a refused message never leaves frames behind for the next call. Frames are kept
 * as zmq_msg_t (blob data is not copied unless misaligned); the envelope is unpacked
 * with protobuf-c through an allocator with a byte budget, so a small hostile
 * envelope cannot make it allocate without bound. Nothing declared by a peer is used
 * before it is checked against the frame it describes.
 */
#include "wire.h"

#include "hash.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

_Static_assert((int)REELFARM__DTYPE__DTYPE_F32 == RF_DTYPE_F32, "dtype F32");
_Static_assert((int)REELFARM__DTYPE__DTYPE_BF16 == RF_DTYPE_BF16, "dtype BF16");
_Static_assert((int)REELFARM__DTYPE__DTYPE_F16 == RF_DTYPE_F16, "dtype F16");
_Static_assert((int)REELFARM__DTYPE__DTYPE_F64 == RF_DTYPE_F64, "dtype F64");
_Static_assert((int)REELFARM__DTYPE__DTYPE_I64 == RF_DTYPE_I64, "dtype I64");
_Static_assert((int)REELFARM__DTYPE__DTYPE_I32 == RF_DTYPE_I32, "dtype I32");
_Static_assert((int)REELFARM__DTYPE__DTYPE_U8 == RF_DTYPE_U8, "dtype U8");
_Static_assert(RF_DTYPE_COUNT == 7, "a new rf_dtype needs a DType value in reelfarm.proto");

#define RF_WIRE_ALIGN 8

/* protobuf-c allocator with a byte budget; each block carries its size in a header. */
typedef struct s_budget {
    size_t used;
    size_t limit;
    int exhausted;
} s_budget;

typedef union s_hdr {
    size_t size;
    max_align_t align;
} s_hdr;

struct rf_wire_rx {
    zmq_msg_t *frames;
    size_t n_frames;
    size_t cap;
    s_budget budget;
    ProtobufCAllocator alloc;
    void **copies; /* per blob: an aligned copy of a misaligned frame, or NULL */
};

rf_wire_limits rf_wire_limits_default(void)
{
    rf_wire_limits l = {
        .max_total_bytes = (size_t)1 << 30,
        .max_blobs = 1024,
        .max_envelope_bytes = (size_t)16 << 20,
        .max_decoded_bytes = (size_t)64 << 20,
    };
    return l;
}

static void *s_budget_alloc(void *data, size_t size)
{
    s_budget *b = data;
    if (size > b->limit - b->used || size > SIZE_MAX - sizeof(s_hdr)) {
        b->exhausted = 1;
        return NULL;
    }
    s_hdr *h = malloc(sizeof(s_hdr) + size);
    if (!h) {
        b->exhausted = 1;
        return NULL;
    }
    h->size = size;
    b->used += size;
    return h + 1;
}

static void s_budget_free(void *data, void *ptr)
{
    s_budget *b = data;
    if (!ptr)
        return;
    s_hdr *h = (s_hdr *)ptr - 1;
    b->used -= h->size;
    free(h);
}

static int s_sock_type(void *sock)
{
    int type = -1;
    size_t sz = sizeof(type);
    if (zmq_getsockopt(sock, ZMQ_TYPE, &type, &sz) != 0)
        return -1;
    return type;
}

/* Maps a zmq errno at the start of a send or receive to an rf_status. */
static int s_zmq_error(rf_error *err, int e, const char *what)
{
    switch (e) {
    case EAGAIN: return rf_error_set(err, RF_EAGAIN, "%s: timed out (nothing arrived)", what);
    case EINTR: return rf_error_set(err, RF_EAGAIN, "%s: interrupted by a signal", what);
    case ETERM: return rf_error_set(err, RF_ECANCELED, "%s: ZeroMQ context terminated", what);
    case EHOSTUNREACH:
        return rf_error_set(err, RF_ENOTFOUND, "%s: the peer is not connected (unknown routing id)",
                            what);
    default: return rf_error_set(err, RF_EIO, "%s: %s", what, zmq_strerror(e));
    }
}

/* ---------------------------------------------------------------- blob checks */

/* Checks ndim/shape/dtype and computes the byte size into *bytes without overflow.
 * Returns 0, or -1 with why written to msg. */
static int s_blob_size(rf_dtype dtype, size_t ndim, const int64_t *shape, size_t *bytes, char *why,
                       size_t cap)
{
    size_t esize = rf_dtype_size(dtype);
    if (esize == 0) {
        snprintf(why, cap, "unknown dtype %d", (int)dtype);
        return -1;
    }
    if (ndim > RF_WIRE_MAX_DIMS) {
        snprintf(why, cap, "%zu dims (at most %d)", ndim, RF_WIRE_MAX_DIMS);
        return -1;
    }
    size_t n = esize;
    for (size_t i = 0; i < ndim; i++) {
        if (shape[i] < 0) {
            snprintf(why, cap, "negative dim %lld at axis %zu", (long long)shape[i], i);
            return -1;
        }
        if (shape[i] > 0 && n > SIZE_MAX / (uint64_t)shape[i]) {
            snprintf(why, cap, "shape overflows size_t at axis %zu", i);
            return -1;
        }
        n *= (size_t)shape[i];
    }
    *bytes = n;
    return 0;
}

/* ---------------------------------------------------------------- send */

static int s_send_frame(void *sock, const void *data, size_t len, int more, int first,
                        rf_error *err)
{
    for (;;) {
        if (zmq_send(sock, data, len, more ? ZMQ_SNDMORE : 0) >= 0)
            return 0;
        int e = zmq_errno();
        /* Once the first frame is queued the rest must follow: retry interruptions. */
        if (!first && (e == EINTR || e == EAGAIN))
            continue;
        return s_zmq_error(err, e, first ? "wire send" : "wire send (mid-message)");
    }
}

int rf_wire_pack(const rf_wire_msg *msg, uint8_t **out, size_t *out_len, rf_error *err)
{
    *out = NULL;
    *out_len = 0;
    if (!msg || !msg->env)
        return rf_error_set(err, RF_EINVAL, "wire send: no envelope (programmer error)");
    if (msg->env->kind_case == REELFARM__ENVELOPE__KIND__NOT_SET)
        return rf_error_set(err, RF_EINVAL, "wire send: the envelope has no message kind set");
    if (msg->n_blobs && !msg->blobs)
        return rf_error_set(err, RF_EINVAL, "wire send: %zu blobs declared but none given",
                            msg->n_blobs);
    int rc = 0;
    Reelfarm__Blob *descs = NULL;
    Reelfarm__Blob **ptrs = NULL;
    int64_t *shapes = NULL;
    uint8_t *packed = NULL;
    if (msg->n_blobs) {
        descs = calloc(msg->n_blobs, sizeof(*descs));
        ptrs = calloc(msg->n_blobs, sizeof(*ptrs));
        shapes = calloc(msg->n_blobs * RF_WIRE_MAX_DIMS, sizeof(*shapes));
        if (!descs || !ptrs || !shapes) {
            rc = rf_error_set(err, RF_ENOMEM, "wire send: out of memory for %zu blob descriptors",
                              msg->n_blobs);
            goto out;
        }
    }
    for (size_t i = 0; i < msg->n_blobs; i++) {
        const rf_wire_blob *b = &msg->blobs[i];
        char why[128];
        size_t bytes = 0;
        if (!b->name || !b->name[0]) {
            rc = rf_error_set(err, RF_EINVAL, "wire send: blob %zu has no name", i);
            goto out;
        }
        if (b->ndim < 0 ||
            s_blob_size(b->dtype, (size_t)b->ndim, b->shape, &bytes, why, sizeof(why)) != 0) {
            rc = rf_error_set(err, RF_EINVAL, "wire send: blob '%s': %s", b->name,
                              b->ndim < 0 ? "negative ndim" : why);
            goto out;
        }
        if (bytes != b->len || (b->len && !b->data)) {
            rc = rf_error_set(err, RF_EINVAL,
                              "wire send: blob '%s': shape x dtype size is %zu bytes but %zu given",
                              b->name, bytes, b->len);
            goto out;
        }
        if (b->frame_axis < -1 || b->frame_axis >= b->ndim) {
            rc = rf_error_set(err, RF_EINVAL, "wire send: blob '%s': frame_axis %d outside -1..%d",
                              b->name, b->frame_axis, b->ndim - 1);
            goto out;
        }
        Reelfarm__Blob *d = &descs[i];
        reelfarm__blob__init(d);
        d->name = (char *)b->name;
        d->dtype = (Reelfarm__DType)b->dtype;
        d->n_shape = (size_t)b->ndim;
        d->shape = &shapes[i * RF_WIRE_MAX_DIMS];
        memcpy(d->shape, b->shape, (size_t)b->ndim * sizeof(int64_t));
        d->frame_axis = b->frame_axis;
        d->frame_start = b->frame_start;
        d->byte_length = b->len;
        d->xxh64 = rf_xxh64(b->data, b->len, 0);
        ptrs[i] = d;
    }

    Reelfarm__Envelope env = *msg->env; /* shallow: only our fields change */
    env.version = RF_PROTOCOL_VERSION;
    env.n_blobs = msg->n_blobs;
    env.blobs = ptrs;
    size_t size = reelfarm__envelope__get_packed_size(&env);
    packed = malloc(size ? size : 1);
    if (!packed) {
        rc = rf_error_set(err, RF_ENOMEM, "wire send: out of memory packing a %zu-byte envelope",
                          size);
        goto out;
    }
    if (reelfarm__envelope__pack(&env, packed) != size) {
        rc =
            rf_error_set(err, RF_EIO, "wire send: protobuf-c packed a different size than it said");
        goto out;
    }

    *out = packed;
    *out_len = size;
    packed = NULL;
out:
    free(packed);
    free(shapes);
    free(ptrs);
    free(descs);
    return rc;
}

int rf_wire_send(void *sock, const rf_wire_msg *msg, rf_error *err)
{
    if (!sock || !msg || !msg->env)
        return rf_error_set(err, RF_EINVAL,
                            "wire send: no socket or no envelope (programmer error)");
    int type = s_sock_type(sock);
    if (type < 0)
        return s_zmq_error(err, zmq_errno(), "wire send");
    if (type == ZMQ_ROUTER && (msg->peer_len == 0 || msg->peer_len > RF_WIRE_PEER_MAX))
        return rf_error_set(err, RF_EINVAL,
                            "wire send: a ROUTER socket needs the peer's routing id (1..%d bytes)",
                            RF_WIRE_PEER_MAX);
    uint8_t *packed = NULL;
    size_t size = 0;
    int rc = rf_wire_pack(msg, &packed, &size, err);
    if (rc)
        return rc;
    int first = 1;
    if (type == ZMQ_ROUTER) {
        rc = s_send_frame(sock, msg->peer, msg->peer_len, 1, first, err);
        if (rc)
            goto out;
        first = 0;
    }
    rc = s_send_frame(sock, packed, size, msg->n_blobs > 0, first, err);
    if (rc)
        goto out;
    for (size_t i = 0; i < msg->n_blobs; i++) {
        rc =
            s_send_frame(sock, msg->blobs[i].data, msg->blobs[i].len, i + 1 < msg->n_blobs, 0, err);
        if (rc)
            goto out;
    }
out:
    free(packed);
    return rc;
}

/* ---------------------------------------------------------------- receive */

static void s_rx_free(struct rf_wire_rx *rx, Reelfarm__Envelope *env, size_t n_copies)
{
    if (!rx)
        return;
    if (env)
        protobuf_c_message_free_unpacked(&env->base, &rx->alloc);
    for (size_t i = 0; i < rx->n_frames; i++)
        zmq_msg_close(&rx->frames[i]);
    if (rx->copies)
        for (size_t i = 0; i < n_copies; i++)
            free(rx->copies[i]);
    free(rx->copies);
    free(rx->frames);
    free(rx);
}

void rf_wire_msg_release(rf_wire_msg *msg)
{
    if (!msg)
        return;
    if (msg->rx) {
        s_rx_free(msg->rx, msg->env, msg->n_blobs);
        free(msg->blobs);
    }
    memset(msg, 0, sizeof(*msg));
}

/* Reads field 1 (version) when it leads the envelope, as protobuf-c writes it, so a
 * peer of another version is named even when its envelope would not unpack here.
 * Returns 1 and sets *v when found. */
static int s_peek_version(const uint8_t *p, size_t n, uint64_t *v)
{
    if (n < 2 || p[0] != 0x08)
        return 0;
    uint64_t x = 0;
    for (size_t i = 1; i < n && i <= 10; i++) {
        x |= (uint64_t)(p[i] & 0x7f) << (7 * (i - 1));
        if (!(p[i] & 0x80)) {
            *v = x;
            return 1;
        }
    }
    return 0;
}

static int s_version_error(rf_error *err, uint64_t v)
{
    return rf_error_set(err, RF_EVERSION,
                        "peer speaks protocol %llu, this build speaks %u; upgrade %s so the "
                        "coordinator, workers and reelctl speak the same protocol",
                        (unsigned long long)v, RF_PROTOCOL_VERSION,
                        v > RF_PROTOCOL_VERSION ? "this side" : "the peer");
}

/* Takes the rest of a multipart message off the socket and drops it. */
static void s_drain(void *sock)
{
    int more = 0;
    size_t sz = sizeof(more);
    while (zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &sz) == 0 && more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        int rc;
        do {
            rc = zmq_msg_recv(&m, sock, 0);
        } while (rc < 0 && (zmq_errno() == EINTR || zmq_errno() == EAGAIN));
        zmq_msg_close(&m);
        if (rc < 0)
            return; /* context gone: nothing left to drain */
        sz = sizeof(more);
    }
}

/* Receives all frames of one message into rx within the bounds. On a bound exceeded,
 * the remaining frames are drained and an error returned (rx keeps what it holds). */
static int s_recv_frames(void *sock, struct rf_wire_rx *rx, size_t max_frames,
                         const rf_wire_limits *lim, rf_error *err)
{
    size_t total = 0;
    for (;;) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        int rc = zmq_msg_recv(&m, sock, 0);
        if (rc < 0) {
            int e = zmq_errno();
            zmq_msg_close(&m);
            if (rx->n_frames == 0)
                return s_zmq_error(err, e, "wire recv");
            if (e == EINTR || e == EAGAIN)
                continue; /* the rest of a multipart message is already here */
            return s_zmq_error(err, e, "wire recv (mid-message)");
        }
        int more = zmq_msg_more(&m);
        size_t sz = zmq_msg_size(&m);
        if (rx->n_frames + 1 > max_frames) {
            zmq_msg_close(&m);
            if (more)
                s_drain(sock);
            return rf_error_set(err, RF_ENOMEM,
                                "wire recv: message refused: more than %zu blobs (limit "
                                "max_blobs); dropped",
                                lim->max_blobs);
        }
        if (sz > lim->max_total_bytes - total) {
            zmq_msg_close(&m);
            if (more)
                s_drain(sock);
            return rf_error_set(err, RF_ENOMEM,
                                "wire recv: message refused: larger than %zu bytes (limit "
                                "max_total_bytes); dropped",
                                lim->max_total_bytes);
        }
        total += sz;
        if (rx->n_frames == rx->cap) {
            size_t cap = rx->cap ? rx->cap * 2 : 4;
            if (cap > max_frames)
                cap = max_frames;
            zmq_msg_t *f = realloc(rx->frames, cap * sizeof(*f));
            if (!f) {
                zmq_msg_close(&m);
                if (more)
                    s_drain(sock);
                return rf_error_set(err, RF_ENOMEM, "wire recv: out of memory for %zu frames", cap);
            }
            rx->frames = f;
            rx->cap = cap;
        }
        /* zmq_msg_t may be moved only through zmq_msg_move. */
        zmq_msg_init(&rx->frames[rx->n_frames]);
        zmq_msg_move(&rx->frames[rx->n_frames], &m);
        zmq_msg_close(&m);
        rx->n_frames++;
        if (!more)
            return 0;
    }
}

/* Checks the received blob descriptors against their frames and fills out->blobs. */
static int s_check_blobs(rf_wire_msg *out, struct rf_wire_rx *rx, size_t first, rf_error *err)
{
    const Reelfarm__Envelope *env = out->env;
    size_t n = env->n_blobs;
    if (n == 0)
        return 0;
    out->blobs = calloc(n, sizeof(*out->blobs));
    rx->copies = calloc(n, sizeof(*rx->copies));
    if (!out->blobs || !rx->copies)
        return rf_error_set(err, RF_ENOMEM, "wire recv: out of memory for %zu blobs", n);
    out->n_blobs = n;
    for (size_t i = 0; i < n; i++) {
        const Reelfarm__Blob *d = env->blobs[i];
        zmq_msg_t *f = &rx->frames[first + i];
        size_t flen = zmq_msg_size(f);
        char why[128];
        size_t bytes = 0;
        if (!d->name || !d->name[0])
            return rf_error_set(err, RF_EPROTO, "wire recv: blob %zu has no name", i);
        for (size_t j = 0; j < i; j++)
            if (strcmp(env->blobs[j]->name, d->name) == 0)
                return rf_error_set(err, RF_EPROTO, "wire recv: blob name '%.64s' appears twice",
                                    d->name);
        if ((unsigned)d->dtype >= RF_DTYPE_COUNT)
            return rf_error_set(err, RF_EPROTO, "wire recv: blob '%.64s': unknown dtype %d",
                                d->name, (int)d->dtype);
        if (s_blob_size((rf_dtype)d->dtype, d->n_shape, d->shape, &bytes, why, sizeof(why)))
            return rf_error_set(err, RF_EPROTO, "wire recv: blob '%.64s': %s", d->name, why);
        if (d->byte_length != (uint64_t)flen)
            return rf_error_set(err, RF_EPROTO,
                                "wire recv: blob '%.64s' declares %llu bytes but its frame has %zu",
                                d->name, (unsigned long long)d->byte_length, flen);
        if (bytes != flen)
            return rf_error_set(err, RF_EPROTO,
                                "wire recv: blob '%.64s': shape x dtype size is %zu bytes but its "
                                "frame has %zu",
                                d->name, bytes, flen);
        if (d->frame_axis < -1 || d->frame_axis >= (int32_t)d->n_shape)
            return rf_error_set(err, RF_EPROTO,
                                "wire recv: blob '%.64s': frame_axis %d outside -1..%d", d->name,
                                (int)d->frame_axis, (int)d->n_shape - 1);
        const void *data = zmq_msg_data(f);
        uint64_t h = rf_xxh64(data, flen, 0);
        if (h != d->xxh64)
            return rf_error_set(err, RF_EPROTO,
                                "wire recv: blob '%.64s': checksum mismatch (xxh64 %016llx, "
                                "declared %016llx): corrupted in transit",
                                d->name, (unsigned long long)h, (unsigned long long)d->xxh64);
        if (flen && ((uintptr_t)data % RF_WIRE_ALIGN) != 0) {
            rx->copies[i] = malloc(flen);
            if (!rx->copies[i])
                return rf_error_set(err, RF_ENOMEM, "wire recv: out of memory copying blob '%.64s'",
                                    d->name);
            memcpy(rx->copies[i], data, flen);
            data = rx->copies[i];
        }
        rf_wire_blob *b = &out->blobs[i];
        b->name = d->name;
        b->dtype = (rf_dtype)d->dtype;
        b->ndim = (int)d->n_shape;
        memcpy(b->shape, d->shape, d->n_shape * sizeof(int64_t));
        b->frame_axis = d->frame_axis;
        b->frame_start = d->frame_start;
        b->data = data;
        b->len = flen;
    }
    return 0;
}

int rf_wire_recv(void *sock, rf_wire_msg *out, const rf_wire_limits *lim, rf_error *err)
{
    if (!sock || !out)
        return rf_error_set(err, RF_EINVAL,
                            "wire recv: no socket or no message (programmer error)");
    memset(out, 0, sizeof(*out));
    rf_wire_limits defaults = rf_wire_limits_default();
    if (!lim)
        lim = &defaults;
    int type = s_sock_type(sock);
    if (type < 0)
        return s_zmq_error(err, zmq_errno(), "wire recv");
    size_t head = type == ZMQ_ROUTER ? 1 : 0; /* frames before the envelope */
    size_t max_frames = lim->max_blobs > SIZE_MAX - 2 ? SIZE_MAX : lim->max_blobs + 1 + head;

    struct rf_wire_rx *rx = calloc(1, sizeof(*rx));
    if (!rx) {
        zmq_msg_t m; /* take the message off the socket anyway: the next recv starts clean */
        zmq_msg_init(&m);
        int got = zmq_msg_recv(&m, sock, 0);
        zmq_msg_close(&m);
        if (got >= 0)
            s_drain(sock);
        return rf_error_set(err, RF_ENOMEM, "wire recv: out of memory");
    }
    rx->budget.limit = lim->max_decoded_bytes;
    rx->alloc.alloc = s_budget_alloc;
    rx->alloc.free = s_budget_free;
    rx->alloc.allocator_data = &rx->budget;

    int rc = s_recv_frames(sock, rx, max_frames, lim, err);
    if (rc && rx->n_frames == 0) {
        s_rx_free(rx, NULL, 0);
        return rc;
    }
    if (head && rx->n_frames > 0) {
        size_t plen = zmq_msg_size(&rx->frames[0]);
        if (plen > 0 && plen <= RF_WIRE_PEER_MAX) {
            memcpy(out->peer, zmq_msg_data(&rx->frames[0]), plen);
            out->peer_len = plen;
        }
    }
    if (rc)
        goto fail;

    if (rx->n_frames <= head) {
        rc = rf_error_set(err, RF_EPROTO, "wire recv: empty message (no envelope frame)");
        goto fail;
    }
    zmq_msg_t *ef = &rx->frames[head];
    size_t elen = zmq_msg_size(ef);
    const uint8_t *ebytes = zmq_msg_data(ef);
    if (elen == 0) {
        rc =
            rf_error_set(err, RF_EPROTO, "wire recv: empty envelope frame: not a reelfarm message");
        goto fail;
    }
    if (elen > lim->max_envelope_bytes) {
        rc = rf_error_set(err, RF_ENOMEM,
                          "wire recv: envelope of %zu bytes refused (limit max_envelope_bytes %zu)",
                          elen, lim->max_envelope_bytes);
        goto fail;
    }
    uint64_t v = 0;
    if (s_peek_version(ebytes, elen, &v) && v != RF_PROTOCOL_VERSION) {
        rc = s_version_error(err, v);
        goto fail;
    }
    out->env = reelfarm__envelope__unpack(&rx->alloc, elen, ebytes);
    if (!out->env) {
        if (rx->budget.exhausted)
            rc = rf_error_set(err, RF_ENOMEM,
                              "wire recv: a %zu-byte envelope needs more than %zu bytes to decode "
                              "(limit max_decoded_bytes); refused",
                              elen, lim->max_decoded_bytes);
        else
            rc = rf_error_set(err, RF_EPROTO,
                              "wire recv: the %zu-byte envelope frame is not a valid reelfarm "
                              "protobuf message",
                              elen);
        goto fail;
    }
    out->request_id = out->env->request_id;
    if (out->env->version != RF_PROTOCOL_VERSION) {
        if (out->env->version == 0)
            rc = rf_error_set(err, RF_EPROTO,
                              "wire recv: envelope carries no protocol version: not a reelfarm "
                              "message");
        else
            rc = s_version_error(err, out->env->version);
        goto fail;
    }
    if (out->env->kind_case == REELFARM__ENVELOPE__KIND__NOT_SET) {
        if (out->env->base.n_unknown_fields > 0)
            rc = rf_error_set(err, RF_EUNSUPPORTED,
                              "wire recv: message kind (field %u) unknown to this build; upgrade "
                              "this side",
                              (unsigned)out->env->base.unknown_fields[0].tag);
        else
            rc = rf_error_set(err, RF_EPROTO, "wire recv: envelope carries no message kind");
        goto fail;
    }
    size_t have = rx->n_frames - head - 1;
    size_t declared = out->env->n_blobs;
    if (declared > lim->max_blobs) {
        rc = rf_error_set(err, RF_ENOMEM,
                          "wire recv: envelope declares %zu blobs (limit max_blobs %zu); refused",
                          declared, lim->max_blobs);
        goto fail;
    }
    if (declared != have) {
        rc = rf_error_set(err, RF_EPROTO,
                          "wire recv: %s message: the envelope declares %zu blobs but %zu blob "
                          "frames followed",
                          declared > have ? "truncated" : "malformed (extra frames)", declared,
                          have);
        goto fail;
    }
    rc = s_check_blobs(out, rx, head + 1, err);
    if (rc)
        goto fail;
    out->rx = rx;
    return 0;

fail:;
    unsigned char peer[RF_WIRE_PEER_MAX];
    size_t peer_len = out->peer_len;
    uint64_t request_id = out->request_id;
    memcpy(peer, out->peer, peer_len);
    s_rx_free(rx, out->env, out->n_blobs);
    free(out->blobs);
    memset(out, 0, sizeof(*out));
    memcpy(out->peer, peer, peer_len);
    out->peer_len = peer_len;
    out->request_id = request_id;
    return rc;
}

/* ---------------------------------------------------------------- helpers */

int rf_wire_reply_error(void *sock, const rf_wire_msg *to, int code, const char *message,
                        rf_error *err)
{
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    Reelfarm__Error e = REELFARM__ERROR__INIT;
    e.code = (uint32_t)code;
    e.message = (char *)(message ? message : "");
    env.reply_to = to ? to->request_id : 0;
    env.kind_case = REELFARM__ENVELOPE__KIND_ERROR;
    env.error = &e;
    rf_wire_msg reply = {.env = &env};
    if (to)
        rf_wire_msg_copy_peer(&reply, to);
    return rf_wire_send(sock, &reply, err);
}

void rf_wire_msg_copy_peer(rf_wire_msg *to, const rf_wire_msg *from)
{
    size_t n = from->peer_len <= RF_WIRE_PEER_MAX ? from->peer_len : RF_WIRE_PEER_MAX;
    memcpy(to->peer, from->peer, n);
    to->peer_len = n;
}

const rf_wire_blob *rf_wire_msg_blob(const rf_wire_msg *msg, const char *name)
{
    if (!msg || !name)
        return NULL;
    for (size_t i = 0; i < msg->n_blobs; i++)
        if (msg->blobs[i].name && strcmp(msg->blobs[i].name, name) == 0)
            return &msg->blobs[i];
    return NULL;
}

const char *rf_wire_kind_name(int kind_case)
{
    if (kind_case == REELFARM__ENVELOPE__KIND__NOT_SET)
        return "none";
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(
        &reelfarm__envelope__descriptor, (unsigned)kind_case);
    if (!f || !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
        return "unknown";
    return f->name;
}

int rf_wire_socket_limits(void *sock, const rf_wire_limits *lim, rf_error *err)
{
    rf_wire_limits defaults = rf_wire_limits_default();
    if (!lim)
        lim = &defaults;
    int64_t max = lim->max_total_bytes > INT64_MAX ? INT64_MAX : (int64_t)lim->max_total_bytes;
    if (zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &max, sizeof(max)) != 0)
        return rf_error_set(err, RF_EIO, "wire: setting ZMQ_MAXMSGSIZE: %s",
                            zmq_strerror(zmq_errno()));
    return 0;
}
