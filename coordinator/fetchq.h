/* fetchq.h - downloads off the coordinator's loop: a few threads run rf_fetch_url, the loop
 * polls one file descriptor and takes finished results.
 *
 * A download can take minutes; the single-threaded loop must never wait for one. The
 * loop submits (url, dest, options, a tag of its choosing), keeps polling its sockets
 * plus rf_fetchq_fd, and when that fd is readable takes the results one by one. The
 * options are copied at submit (the host list too), so a SIGHUP that changes
 * allowed_url_hosts affects later downloads only. Destroy cancels queued downloads and
 * aborts running ones (within about a second) before it returns.
 *
 * Wiring in the coordinator (issue 12):
 *   startup:   q = rf_fetchq_new(2, err);
 *   submit:    rf_fetchq_submit(q, tag, url, "<state>/tmp/fetch-<tag>", &opts, err) with
 *              opts from the config (rf_fetch_opts_default + url_hosts + limits.*), and
 *              mark the job as fetching;
 *   loop:      add {NULL, rf_fetchq_fd(q), ZMQ_POLLIN, 0} to zmq_poll; when readable,
 *              while (rf_fetchq_take(q, &r)) store r.dest as blob r.hash (or fail the
 *              job r.tag with r.error) and remove r.dest;
 *   shutdown:  rf_fetchq_destroy(&q).
 */
#ifndef RF_FETCHQ_H
#define RF_FETCHQ_H

#include "error.h"
#include "fetch.h"
#include "hash.h"

#include <stdint.h>

typedef struct rf_fetchq rf_fetchq;

typedef struct rf_fetch_result {
    uint64_t tag;
    int status; /* 0, or the rf_status of rf_fetch_url (RF_ECANCELED when destroyed) */
    char error[RF_ERROR_MSG_MAX];
    rf_hash hash; /* of the file written at dest (status 0) */
    int64_t bytes;
    char *dest; /* owned by the result: rf_fetch_result_clear frees it */
} rf_fetch_result;

/* Starts threads (1..16) workers. NULL + err when they cannot start. */
rf_fetchq *rf_fetchq_new(int threads, rf_error *err);

/* Readable (POLLIN) while results are waiting; owned by the queue. */
int rf_fetchq_fd(const rf_fetchq *self);

/* Queues a download; opts (may be NULL: defaults, no host allowed) is copied, its cancel
 * field ignored. RF_ENOMEM when out of memory. */
int rf_fetchq_submit(rf_fetchq *self, uint64_t tag, const char *url, const char *dest,
                     const rf_fetch_opts *opts, rf_error *err);

/* Moves the oldest finished result into *out and returns 1, or returns 0 when none is
 * waiting. Clear *out with rf_fetch_result_clear. */
int rf_fetchq_take(rf_fetchq *self, rf_fetch_result *out);
void rf_fetch_result_clear(rf_fetch_result *r);

/* Downloads queued or running (not yet taken). */
int rf_fetchq_pending(rf_fetchq *self);

/* Cancels everything, joins the threads, frees untaken results; safe on NULL and twice. */
void rf_fetchq_destroy(rf_fetchq **self);

#endif
