/* wire.h - one reelfarm message on a ZeroMQ socket: an Envelope plus raw blobs.
 *
 * On the wire a message is multipart: [ROUTER identity] Envelope blob0 blob1 ...
 * The Envelope (proto/reelfarm.proto) carries RF_PROTOCOL_VERSION, ids, one message
 * kind and a descriptor per blob (name, dtype, shape, frame axis, byte length, XXH64).
 * This layer adds and strips the ROUTER identity, fills the descriptors on send, and on
 * receive bounds the whole message (bytes and frame count, not only each frame),
 * checks every declared length and checksum before anyone reads a byte, and returns a
 * malformed message as an error after draining all its frames: never a crash, never
 * a partial read. It never logs and never blocks longer than the socket's timeouts.
 */
#ifndef RF_WIRE_H
#define RF_WIRE_H

#include "dtype.h"
#include "error.h"
#include "reelfarm.pb-c.h"

#include <stddef.h>
#include <stdint.h>

/* The protocol this build speaks. Bump on any change an older peer would misread. */
#define RF_PROTOCOL_VERSION 1u

#define RF_WIRE_MAX_DIMS 8
#define RF_WIRE_PEER_MAX 255 /* ZeroMQ routing ids are 1..255 bytes */

/* What rf_wire_recv accepts. A message over any bound is drained and refused. */
typedef struct rf_wire_limits {
    size_t max_total_bytes;    /* all frames of one message, identity included */
    size_t max_blobs;          /* blob frames after the envelope */
    size_t max_envelope_bytes; /* the envelope frame */
    size_t max_decoded_bytes;  /* memory protobuf-c may allocate to unpack the envelope */
} rf_wire_limits;

/* Defaults: 1 GiB total, 1024 blobs, 16 MiB envelope, 64 MiB decoded. */
rf_wire_limits rf_wire_limits_default(void);

/* A blob: one raw frame after the envelope. On send, all fields are the caller's
 * (borrowed until rf_wire_send returns). On receive, name and data are borrowed from
 * the rf_wire_msg they came in (valid until rf_wire_msg_release); data is aligned to
 * at least 8 bytes and len == product(shape) x dtype size. */
typedef struct rf_wire_blob {
    const char *name; /* non-empty, unique within the message */
    rf_dtype dtype;
    int ndim; /* 0..RF_WIRE_MAX_DIMS */
    int64_t shape[RF_WIRE_MAX_DIMS];
    int frame_axis;      /* -1: none */
    int64_t frame_start; /* global index of the first frame along frame_axis */
    const void *data;
    size_t len;
} rf_wire_blob;

struct rf_wire_rx; /* private: what a receive owns */

/* One message. To send: fill env (a protobuf-c Envelope with its kind set; version and
 * blob descriptors are written by the wire layer, env->blobs is ignored), blobs and,
 * on a ROUTER socket, peer. After rf_wire_recv: env, blobs and peer are owned by the
 * message until rf_wire_msg_release. */
typedef struct rf_wire_msg {
    unsigned char peer[RF_WIRE_PEER_MAX]; /* ROUTER routing id (empty on other sockets) */
    size_t peer_len;
    uint64_t request_id; /* recv: env->request_id, also for a malformed message when known */
    Reelfarm__Envelope *env;
    rf_wire_blob *blobs;
    size_t n_blobs;
    struct rf_wire_rx *rx; /* recv only; NULL on a message built for sending */
} rf_wire_msg;

/* Sends msg on sock (DEALER, ROUTER or any other ZeroMQ socket; on a ROUTER, msg->peer
 * names the destination). Blocks within the socket's ZMQ_SNDTIMEO. Returns 0, or:
 * RF_EINVAL for a bad blob (dtype, ndim, shape x size != len, missing name), RF_EAGAIN
 * when the send would block or was interrupted (nothing was sent), RF_ENOTFOUND when a
 * ROUTER with ZMQ_ROUTER_MANDATORY does not know the peer, RF_ECANCELED when the
 * context is terminated, RF_EIO otherwise. Never sends part of a message. */
int rf_wire_send(void *sock, const rf_wire_msg *msg, rf_error *err);

/* The envelope frame rf_wire_send puts on the wire for msg (version and blob descriptors
 * filled, every blob checked as rf_wire_send checks it; msg->peer is not used): *out
 * (malloc'd: the caller frees it) and *out_len. The blob frames follow it unchanged. For
 * peers that write ZeroMQ frames themselves (bench_scale's simulated workers). Returns 0,
 * RF_EINVAL (bad blob or envelope) or RF_ENOMEM. */
int rf_wire_pack(const rf_wire_msg *msg, uint8_t **out, size_t *out_len, rf_error *err);

/* Receives one message into *out (overwritten: release a previous one first), checking
 * it against lim (NULL: defaults). Blocks within the socket's ZMQ_RCVTIMEO.
 * Returns 0 with out filled, or an error with every frame of the message consumed and
 * out holding only what is needed to answer the sender (peer, request_id when known;
 * see rf_wire_reply_error). Errors: RF_EAGAIN (nothing arrived / interrupted),
 * RF_ECANCELED (context terminated), RF_EPROTO (malformed: bad envelope, lengths,
 * checksums, counts), RF_ENOMEM (over a limit), RF_EVERSION (another protocol
 * version), RF_EUNSUPPORTED (a message kind this build does not know), RF_EIO. */
int rf_wire_recv(void *sock, rf_wire_msg *out, const rf_wire_limits *lim, rf_error *err);

/* Frees what rf_wire_recv attached to msg and zeroes it. Safe on a zeroed message,
 * on a message built for sending (it only zeroes it) and twice. */
void rf_wire_msg_release(rf_wire_msg *msg);

/* Answers `to` (a message rf_wire_recv returned, good or malformed) with an Envelope
 * carrying Error{code, message} and reply_to = to->request_id, to to->peer on a
 * ROUTER. Returns what rf_wire_send returns. */
int rf_wire_reply_error(void *sock, const rf_wire_msg *to, int code, const char *message,
                        rf_error *err);

/* Copies the routing id of `from` into `to` (to answer on a ROUTER). */
void rf_wire_msg_copy_peer(rf_wire_msg *to, const rf_wire_msg *from);

/* The received blob named name, or NULL. */
const rf_wire_blob *rf_wire_msg_blob(const rf_wire_msg *msg, const char *name);

/* The proto field name of an envelope kind ("hello", "assign", ...); "none" when
 * unset, "unknown" when not a kind of this build. Never NULL. */
const char *rf_wire_kind_name(int kind_case);

/* Sets ZMQ_MAXMSGSIZE on sock to lim->max_total_bytes so libzmq drops a peer sending
 * a single frame larger than any acceptable message before buffering it. */
int rf_wire_socket_limits(void *sock, const rf_wire_limits *lim, rf_error *err);

#endif
