/* curve.h - CurveZMQ for reelfarm: key files, socket options, a ZAP handler, a monitor.
 *
 * Keys are z85 text (40 characters). A key pair lives in two files made by
 * rf_curve_keygen_files (`reelctl keygen`): BASE.key (public, 0644) and BASE.key_secret
 * (public + secret, 0600; refused when group or others can read it). An allowed-keys
 * file lists one public key per line (`Z85 [name ...]` or `public-key: Z85`; a line
 * starting with `#` that is not a key is a comment: `#` is a z85 character, so there are
 * no comments after a key), so `cat worker1.key >> allowed-worker-keys` works. The ZAP handler accepts a CURVE
 * client only when its public key is listed for the socket's ZAP domain; anything else
 * is refused and logged. This module never logs a secret key and never exits.
 */
#ifndef RF_CURVE_H
#define RF_CURVE_H

#include "error.h"

#include <stddef.h>
#include <stdint.h>

typedef struct rf_curve_monitor rf_curve_monitor;

#define RF_CURVE_Z85_LEN 40 /* characters of a z85 key, without the NUL */

/* ZAP domains (ZMQ_ZAP_DOMAIN) of the coordinator's two endpoints. */
#define RF_CURVE_DOMAIN_WORKERS "workers"
#define RF_CURVE_DOMAIN_API     "api"

typedef struct rf_curve_keypair {
    char public_z85[RF_CURVE_Z85_LEN + 1];
    char secret_z85[RF_CURVE_Z85_LEN + 1]; /* "" when only the public key is known */
} rf_curve_keypair;

/* 1 when this libzmq was built with CURVE (libsodium), else 0. */
int rf_curve_available(void);

/* A fresh key pair. RF_EUNSUPPORTED when libzmq has no CURVE. */
int rf_curve_keypair_generate(rf_curve_keypair *out, rf_error *err);

/* 1 when s is exactly RF_CURVE_Z85_LEN characters of the z85 alphabet that decode to
 * 32 bytes, else 0. */
int rf_curve_key_valid(const char *s);

/* Writes BASE.key (the public key, mode 0644) and BASE.key_secret (both keys, mode
 * 0600) with a fresh pair, each atomically. Refuses (RF_EINVAL, naming the file) when
 * either file exists, so a key in use is never overwritten. This is `reelctl keygen
 * BASE`: the caller prints the public key from *out (may be NULL) and the two paths. */
int rf_curve_keygen_files(const char *base, rf_curve_keypair *out, rf_error *err);

/* Reads a secret key file (BASE.key_secret) into *out (both keys). Errors name the
 * file and line: missing, unreadable, readable by group or others ("chmod 600 FILE"),
 * a missing or malformed key, a public key that does not match the secret one. */
int rf_curve_keypair_load(const char *secret_path, rf_curve_keypair *out, rf_error *err);

/* Reads the public key from a public key file (BASE.key) or a secret key file, into
 * out (RF_CURVE_Z85_LEN + 1 bytes). */
int rf_curve_public_load(const char *path, char *out, rf_error *err);

/* Makes sock a CURVE server with kp's secret key, in ZAP domain `domain` (one of
 * RF_CURVE_DOMAIN_*). Call before zmq_bind, and only after rf_zap_new on the same
 * context: without a ZAP handler libzmq accepts every client key. */
int rf_curve_server_apply(void *sock, const rf_curve_keypair *kp, const char *domain,
                          rf_error *err);

/* Makes sock a CURVE client with its own pair kp, trusting the server public key
 * server_public (z85). Call before zmq_connect. */
int rf_curve_client_apply(void *sock, const rf_curve_keypair *kp, const char *server_public,
                          rf_error *err);

/* The client side in one call, before zmq_connect: with secret_path (this process's
 * BASE.key_secret) and server_key_path (the coordinator's BASE.key, or its secret file),
 * loads both, applies CURVE to sock and starts a monitor in *mon (see below; role and
 * endpoint word its messages). With both NULL, CURVE stays off and *mon is NULL. One
 * without the other is RF_EINVAL naming the missing option (--key / --server-key). */
int rf_curve_client_setup(void *zctx, void *sock, const char *secret_path,
                          const char *server_key_path, const char *role, const char *endpoint,
                          rf_curve_monitor **mon, rf_error *err);

/* ---- the ZAP handler ------------------------------------------------------------
 *
 * One per ZeroMQ context (libzmq calls inproc://zeromq.zap.01 of the socket's
 * context). It runs on its own thread, so it answers handshakes whatever the owner's
 * loop is doing (a loop busy committing cannot stall a worker's connect); the key sets
 * are swapped under a mutex, so rf_zap_reload may run on any thread. Reloading only
 * affects later handshakes: connected peers are never dropped.
 *
 * Wiring in the coordinator:
 *   startup:  zap = rf_zap_new(zctx, err);
 *             rf_zap_allow_file(zap, RF_CURVE_DOMAIN_WORKERS, cfg allowed-worker-keys, err);
 *             rf_zap_allow_file(zap, RF_CURVE_DOMAIN_API, cfg allowed-client-keys, err);
 *             then rf_curve_server_apply on each ROUTER, then zmq_bind.
 *   SIGHUP:   the handler sets a flag; the loop calls rf_zap_reload(zap, err) and logs
 *             err.msg when it fails (the old keys stay in force).
 *   shutdown: close the server sockets, rf_zap_destroy(&zap), then zmq_ctx_term.
 */
typedef struct rf_zap rf_zap;

/* Binds the ZAP endpoint on zctx and starts the handler thread. NULL + err when the
 * endpoint is taken (another handler on this context) or the thread cannot start. */
rf_zap *rf_zap_new(void *zctx, rf_error *err);

/* Reads the allowed-keys file at path for domain (replacing the domain's list and
 * remembering the path for rf_zap_reload). Errors name file:line; on error the
 * domain's previous list stays. An empty file is valid and admits nobody. */
int rf_zap_allow_file(rf_zap *self, const char *domain, const char *path, rf_error *err);

/* Re-reads every domain's file. All or nothing: when any file fails, no list changes
 * and err names the file and line. Logs one line per domain with the key count. */
int rf_zap_reload(rf_zap *self, rf_error *err);

/* Handshakes answered since rf_zap_new (either pointer may be NULL). */
void rf_zap_counts(rf_zap *self, uint64_t *accepted, uint64_t *rejected);

/* Stops the thread and closes the ZAP socket; safe on NULL and twice. Must run before
 * zmq_ctx_term on the context (the handler's socket would block the term). */
void rf_zap_destroy(rf_zap **self);

/* ---- the client's monitor ---------------------------------------------------------
 *
 * A CURVE client rejected by the server's ZAP handler otherwise just retries silently
 * forever. The monitor watches the socket's handshake events and turns a failure into
 * a plain error. Wiring in a worker or reelctl:
 *   after zmq_connect:  mon = rf_curve_monitor_new(zctx, sock, "worker", endpoint, err);
 *   in the loop:        add rf_curve_monitor_socket(mon) to zmq_poll (ZMQ_POLLIN); when
 *                       readable, or while waiting for a reply, call
 *                       rf_curve_monitor_check(mon, 0, err): nonzero means rejected;
 *                       print err.msg and stop (or back off) instead of waiting.
 *   shutdown:           rf_curve_monitor_destroy(&mon) before zmq_close(sock).
 */

/* Starts monitoring sock's handshakes. role ("worker" or "client") words the message
 * and names the coordinator's allowed-keys file; endpoint is only for messages. */
rf_curve_monitor *rf_curve_monitor_new(void *zctx, void *sock, const char *role,
                                       const char *endpoint, rf_error *err);

/* The monitor's PAIR socket, for the owner's zmq_poll. */
void *rf_curve_monitor_socket(rf_curve_monitor *self);

/* Reads the pending events, waiting up to timeout_ms (0: none, -1: forever) for the
 * first. Returns 0 when no handshake failed; RF_EPROTO when the server rejected our
 * key (ZAP said no: "the coordinator at EP rejected this worker's key ... add it to
 * allowed-worker-keys"), or when the handshake failed otherwise (usually the wrong
 * server public key, or CURVE on one side only). A failure is sticky: later calls
 * return it again until a handshake succeeds. */
int rf_curve_monitor_check(rf_curve_monitor *self, int timeout_ms, rf_error *err);

/* 1 once a handshake has succeeded (and no failure came after it). */
int rf_curve_monitor_connected(const rf_curve_monitor *self);

void rf_curve_monitor_destroy(rf_curve_monitor **self);

/* ---- which endpoints need CURVE -------------------------------------------------- */

/* 1 when only this user's processes can reach endpoint: inproc://, or ipc://PATH whose
 * directory is owned by us and closed to group and others (0700). 0 otherwise, with
 * the reason in why (may be NULL): tcp:// of any host (loopback included: every local
 * user can connect), abstract ipc://@..., an ipc directory others can enter. */
int rf_curve_endpoint_private(const char *endpoint, char *why, size_t why_cap);

/* The coordinator's rule before binding endpoint (flag names the option, e.g.
 * "--listen"): with CURVE, or on a private endpoint, 0; without CURVE on another
 * endpoint, RF_EINVAL saying how to set keys, unless insecure (then a warning is
 * logged and 0 returned). */
int rf_curve_bind_check(const char *flag, const char *endpoint, int curve_on, int insecure,
                        rf_error *err);

#endif
