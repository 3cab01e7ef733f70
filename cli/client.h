/* client.h - reelctl's connection to the coordinator's API socket.
 *
 * One DEALER; a request gets a fresh request_id and waits for the reply whose
 * reply_to matches, within a timeout. When the coordinator cannot be reached the error
 * says where reelctl looked and how to point it elsewhere (--api or REELFARM_API),
 * instead of hanging. An Error reply becomes an rf_error with the coordinator's text.
 */
#ifndef RF_CLIENT_H
#define RF_CLIENT_H

#include "error.h"
#include "wire.h"

typedef struct rf_client rf_client;

/* Connects to endpoint (NULL: $REELFARM_API). timeout_ms bounds each request. */
rf_client *rf_client_new(const char *endpoint, int timeout_ms, rf_error *err);
/* The same over CURVE: key_secret is this client's BASE.key_secret, server_key the
 * coordinator's public key file (both NULL: no CURVE; one alone is an error). A key the
 * coordinator rejects is reported as such instead of as a timeout. */
rf_client *rf_client_new_secure(const char *endpoint, int timeout_ms, const char *key_secret,
                                const char *server_key, rf_error *err);
void rf_client_destroy(rf_client **self);
const char *rf_client_endpoint(const rf_client *self);

/* Sends env (its kind set) and waits for the reply, which must be of kind want (or an
 * Error reply, returned as an error with the coordinator's code and message). On
 * success *reply holds the message (rf_wire_msg_release it). Returns the request id in
 * *request_id when not NULL (a Watch's events answer it). */
int rf_client_call(rf_client *self, Reelfarm__Envelope *env, int want, rf_wire_msg *reply,
                   uint64_t *request_id, rf_error *err);
/* Waits up to timeout_ms for the next message answering request_id (e.g. the Events of a
 * Watch). RF_EAGAIN when nothing came in time. */
int rf_client_next(rf_client *self, uint64_t request_id, int timeout_ms, rf_wire_msg *msg,
                   rf_error *err);

#endif
