/* secure.h - the coordinator's endpoint security in three calls: new, prepare, reload.
 *
 * An endpoint gets CURVE when the config names the server's secret key and that
 * endpoint's allowed keys file (keys.allowed_worker_keys for --listen,
 * keys.allowed_client_keys for --api); the ZAP handler on the coordinator's ZeroMQ
 * context then admits only the listed public keys. An endpoint without CURVE must be
 * private (inproc, or ipc in a 0700 directory) unless --insecure, which is logged as a
 * warning at start (and reported by rf_secure_describe for `reelctl status`).
 *
 * Wiring in coordinator/coord.c:
 *   rf_coord_new, after zmq_ctx_new:
 *       c->secure = rf_secure_new(c->zctx, cfg->server_secret_key, cfg->allowed_worker_keys,
 *                                 cfg->allowed_client_keys, cfg->insecure, err);
 *   s_bind, before zmq_bind(s, ep):
 *       rf_secure_prepare(c->secure, s, RF_CURVE_DOMAIN_WORKERS or _API, "--listen" or
 *                         "--api", ep, err)   (on error: close s, fail)
 *   on SIGHUP (a flag the loop checks each turn):
 *       rf_secure_reload(c->secure, cfg->allowed_worker_keys, cfg->allowed_client_keys, err)
 *       (after rf_config_reload when a config file is used); log err.msg on failure.
 *   rf_coord_destroy: close both sockets, rf_secure_destroy(&c->secure), zmq_ctx_term.
 * Never exits; never logs a secret.
 */
#ifndef RF_SECURE_H
#define RF_SECURE_H

#include "curve.h"
#include "error.h"

#include <stdint.h>

typedef struct rf_secure rf_secure;

/* Loads the server key (when server_secret_key is not NULL) and starts the ZAP handler
 * with the allowed keys files given (either may be NULL). A server key without any
 * allowed keys file, or an allowed keys file without a server key, is RF_EINVAL. */
rf_secure *rf_secure_new(void *zctx, const char *server_secret_key, const char *allowed_worker_keys,
                         const char *allowed_client_keys, int insecure, rf_error *err);

/* Before zmq_bind(sock, endpoint): CURVE for domain when configured for it, else the
 * bind rule (rf_curve_bind_check; flag names the option in its message). */
int rf_secure_prepare(rf_secure *self, void *sock, const char *domain, const char *flag,
                      const char *endpoint, rf_error *err);

/* Re-reads the allowed keys files for SIGHUP: a domain given a path reads that file
 * (which may be a new path); with both NULL every domain re-reads its current file. A
 * broken file leaves that domain's keys unchanged and returns its file:line error.
 * Connected peers stay connected. */
int rf_secure_reload(rf_secure *self, const char *allowed_worker_keys,
                     const char *allowed_client_keys, rf_error *err);

/* One line for status: e.g. "workers: curve, api: private" or "workers: INSECURE ...". */
const char *rf_secure_describe(const rf_secure *self);

/* Handshakes answered by the ZAP handler (0 when CURVE is off). */
void rf_secure_counts(rf_secure *self, uint64_t *accepted, uint64_t *rejected);

/* Stops the ZAP handler; call after closing the server sockets and before zmq_ctx_term.
 * Safe on NULL and twice. */
void rf_secure_destroy(rf_secure **self);

#endif
