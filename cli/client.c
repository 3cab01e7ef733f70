/* client.c - request/reply (and streamed replies) over a DEALER to the API ROUTER.
 *
 * ZMQ_IMMEDIATE keeps requests from queuing on a connection that never completed, so
 * an unreachable coordinator shows up as a send that cannot proceed rather than as a
 * silent wait. Replies to other requests (late answers, old watches) are dropped.
 */
#include "client.h"

#include "curve.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

struct rf_client {
    void *zctx, *sock;
    rf_curve_monitor *mon;
    char endpoint[512];
    int timeout_ms;
    uint64_t next_id;
};

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

rf_client *rf_client_new(const char *endpoint, int timeout_ms, rf_error *err)
{
    return rf_client_new_secure(endpoint, timeout_ms, NULL, NULL, err);
}

rf_client *rf_client_new_secure(const char *endpoint, int timeout_ms, const char *key_secret,
                                const char *server_key, rf_error *err)
{
    if (!endpoint || !*endpoint)
        endpoint = getenv("REELFARM_API");
    if (!endpoint || !*endpoint)
        return rf_error_set(err, RF_EINVAL,
                            "no coordinator API endpoint: give --api ENDPOINT (e.g. "
                            "tcp://farm:5556) or set REELFARM_API"),
               NULL;
    rf_client *self = calloc(1, sizeof(*self));
    if (!self)
        return rf_error_set(err, RF_ENOMEM, "out of memory"), NULL;
    snprintf(self->endpoint, sizeof(self->endpoint), "%s", endpoint);
    self->timeout_ms = timeout_ms > 0 ? timeout_ms : 10000;
    self->next_id = (uint64_t)time(NULL) << 20;
    self->zctx = zmq_ctx_new();
    self->sock = self->zctx ? zmq_socket(self->zctx, ZMQ_DEALER) : NULL;
    if (!self->sock) {
        rf_client_destroy(&self);
        return rf_error_set(err, RF_EIO, "cannot create a ZeroMQ socket"), NULL;
    }
    int zero = 0, one = 1;
    zmq_setsockopt(self->sock, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(self->sock, ZMQ_IMMEDIATE, &one, sizeof(one));
    zmq_setsockopt(self->sock, ZMQ_SNDTIMEO, &self->timeout_ms, sizeof(self->timeout_ms));
    if ((key_secret || server_key) &&
        rf_curve_client_setup(self->zctx, self->sock, key_secret, server_key, "client", endpoint,
                              &self->mon, err)) {
        rf_client_destroy(&self);
        return NULL;
    }
    if (zmq_connect(self->sock, endpoint) != 0) {
        rf_error_set(err, RF_EINVAL, "bad coordinator endpoint '%s': %s", endpoint,
                     zmq_strerror(errno));
        rf_client_destroy(&self);
        return NULL;
    }
    return self;
}

void rf_client_destroy(rf_client **pself)
{
    if (!pself || !*pself)
        return;
    rf_client *self = *pself;
    rf_curve_monitor_destroy(&self->mon);
    if (self->sock)
        zmq_close(self->sock);
    if (self->zctx)
        zmq_ctx_term(self->zctx);
    free(self);
    *pself = NULL;
}

const char *rf_client_endpoint(const rf_client *self)
{
    return self->endpoint;
}

static int s_unreachable(const rf_client *self, rf_error *err)
{
    if (self->mon && rf_curve_monitor_check(self->mon, 0, err))
        return err ? (int)err->code : RF_EPROTO; /* rejected: say so, not "unreachable" */
    return rf_error_set(err, RF_EAGAIN,
                        "cannot reach the coordinator at %s (no answer within %d ms): is "
                        "reelfarm-coordinator running with --api %s? Point reelctl elsewhere "
                        "with --api ENDPOINT or REELFARM_API",
                        self->endpoint, self->timeout_ms, self->endpoint);
}

int rf_client_next(rf_client *self, uint64_t request_id, int timeout_ms, rf_wire_msg *msg,
                   rf_error *err)
{
    int64_t deadline = s_now_ms() + timeout_ms;
    for (;;) {
        int64_t left = deadline - s_now_ms();
        if (left < 0)
            left = 0;
        zmq_pollitem_t it = {self->sock, 0, ZMQ_POLLIN, 0};
        int n = zmq_poll(&it, 1, (long)left);
        if (n < 0 && errno == EINTR)
            return rf_error_set(err, RF_ECANCELED, "interrupted");
        if (n <= 0)
            return RF_EAGAIN;
        memset(msg, 0, sizeof(*msg));
        rf_error rerr;
        int rc = rf_wire_recv(self->sock, msg, NULL, &rerr);
        if (rc == RF_EAGAIN)
            continue;
        if (rc) {
            rf_wire_msg_release(msg);
            return rf_error_set(err, rc, "bad reply from the coordinator: %s", rerr.msg);
        }
        if (msg->env->reply_to == request_id)
            return 0;
        rf_wire_msg_release(msg); /* an answer to something else */
    }
}

int rf_client_call(rf_client *self, Reelfarm__Envelope *env, int want, rf_wire_msg *reply,
                   uint64_t *request_id, rf_error *err)
{
    rf_wire_msg m;
    memset(&m, 0, sizeof(m));
    env->request_id = ++self->next_id;
    m.env = env;
    rf_error serr;
    int rc = rf_wire_send(self->sock, &m, &serr);
    if (rc == RF_EAGAIN)
        return s_unreachable(self, err);
    if (rc)
        return rf_error_set(err, rc, "cannot send to the coordinator at %s: %s", self->endpoint,
                            serr.msg);
    if (request_id)
        *request_id = env->request_id;
    rc = rf_client_next(self, env->request_id, self->timeout_ms, reply, err);
    if (rc == RF_EAGAIN)
        return s_unreachable(self, err);
    if (rc)
        return rc;
    if (reply->env->kind_case == REELFARM__ENVELOPE__KIND_ERROR) {
        rc = rf_error_set(err, reply->env->error->code ? (int)reply->env->error->code : RF_EINVAL,
                          "%s", reply->env->error->message);
        rf_wire_msg_release(reply);
        return rc;
    }
    if ((int)reply->env->kind_case != want) {
        rc = rf_error_set(err, RF_EPROTO, "the coordinator answered %s where %s was expected",
                          rf_wire_kind_name(reply->env->kind_case), rf_wire_kind_name(want));
        rf_wire_msg_release(reply);
        return rc;
    }
    return 0;
}
