/* test_secure.c - the coordinator's endpoint rule and CURVE set up from key files, with
 * clients set up the way a worker or reelctl does (rf_curve_client_setup). */
#include "coordinator/secure.h"
#include "rf_test.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <zmq.h>

static void s_need_curve(void)
{
    if (!rf_curve_available())
        RF_SKIP("libzmq without CURVE");
}

static void s_opts(void *sock)
{
    int ms = 5000, zero = 0;
    zmq_setsockopt(sock, ZMQ_RCVTIMEO, &ms, sizeof(ms));
    zmq_setsockopt(sock, ZMQ_SNDTIMEO, &ms, sizeof(ms));
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof(zero));
}

/* Keys as files under the test's tmpdir: BASE.key, BASE.key_secret. */
static void s_keys(const char *base, rf_curve_keypair *kp, char *pub, char *sec, size_t cap)
{
    char b[512];
    rf_test_path(b, sizeof(b), base);
    rf_error err;
    RF_CHECK_MSG(rf_curve_keygen_files(b, kp, &err) == 0, "%s", err.msg);
    snprintf(pub, cap, "%s.key", b);
    snprintf(sec, cap, "%s.key_secret", b);
}

static void s_allowed(const char *name, const rf_curve_keypair *kp, char *path, size_t cap)
{
    char line[128] = "";
    if (kp)
        snprintf(line, sizeof(line), "%s worker\n", kp->public_z85);
    rf_test_path(path, cap, name);
    RF_CHECK_EQ_INT(rf_test_write_file(path, line, strlen(line)), 0);
}

RF_TEST(plain_endpoints_follow_the_rule)
{
    void *ctx = zmq_ctx_new();
    rf_error err;
    rf_secure *s = rf_secure_new(ctx, NULL, NULL, NULL, 0, &err);
    RF_CHECK_MSG(s, "%s", err.msg);
    void *r = zmq_socket(ctx, ZMQ_ROUTER);
    s_opts(r);
    RF_CHECK_EQ_INT(
        rf_secure_prepare(s, r, RF_CURVE_DOMAIN_WORKERS, "--listen", "tcp://127.0.0.1:5555", &err),
        RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "--listen tcp://127.0.0.1:5555");
    RF_CHECK_CONTAINS(err.msg, "--insecure");
    char dir[512], ep[600];
    rf_test_path(dir, sizeof(dir), "run");
    RF_CHECK_EQ_INT(mkdir(dir, 0700), 0);
    snprintf(ep, sizeof(ep), "ipc://%s/api", dir);
    RF_CHECK_EQ_INT(rf_secure_prepare(s, r, RF_CURVE_DOMAIN_API, "--api", ep, &err), 0);
    RF_CHECK_CONTAINS(rf_secure_describe(s), "api: private");
    rf_secure_destroy(&s);

    s = rf_secure_new(ctx, NULL, NULL, NULL, 1, &err);
    RF_CHECK_EQ_INT(
        rf_secure_prepare(s, r, RF_CURVE_DOMAIN_WORKERS, "--listen", "tcp://127.0.0.1:5555", &err),
        0);
    RF_CHECK_CONTAINS(rf_secure_describe(s), "workers: INSECURE");
    uint64_t a = 9, j = 9;
    rf_secure_counts(s, &a, &j);
    RF_CHECK_EQ_INT(a + j, 0);
    zmq_close(r);
    rf_secure_destroy(&s);
    rf_secure_destroy(&s);
    zmq_ctx_term(ctx);
}

RF_TEST(half_configured_keys_are_refused)
{
    s_need_curve();
    void *ctx = zmq_ctx_new();
    rf_curve_keypair kp;
    char pub[600], sec[600], allowed[512];
    s_keys("half", &kp, pub, sec, sizeof(pub));
    s_allowed("half-allowed", &kp, allowed, sizeof(allowed));
    rf_error err;
    RF_CHECK(rf_secure_new(ctx, sec, NULL, NULL, 0, &err) == NULL);
    RF_CHECK_CONTAINS(err.msg, "no allowed keys file");
    RF_CHECK(rf_secure_new(ctx, NULL, allowed, NULL, 0, &err) == NULL);
    RF_CHECK_CONTAINS(err.msg, "keys.server_secret_key");
    RF_CHECK(rf_secure_new(ctx, "/nonexistent.key_secret", allowed, NULL, 0, &err) == NULL);
    RF_CHECK_CONTAINS(err.msg, "/nonexistent.key_secret");
    /* the failed attempts released the ZAP endpoint */
    rf_secure *s = rf_secure_new(ctx, sec, allowed, NULL, 0, &err);
    RF_CHECK_MSG(s, "%s", err.msg);
    rf_secure_destroy(&s);
    zmq_ctx_term(ctx);
}

/* Waits (bounded) for the client's handshake outcome. */
static int s_settle(rf_curve_monitor *mon, rf_error *err)
{
    for (int i = 0; i < 100; i++) {
        int rc = rf_curve_monitor_check(mon, 100, err);
        if (rc)
            return rc;
        if (rf_curve_monitor_connected(mon))
            return 0;
    }
    return rf_error_set(err, RF_EAGAIN, "no handshake result within 10 s");
}

RF_TEST(curve_from_files_end_to_end)
{
    s_need_curve();
    rf_curve_keypair coord, w1, w2;
    char cpub[600], csec[600], w1pub[600], w1sec[600], w2pub[600], w2sec[600], allowed[512],
        allowed2[512];
    s_keys("coord", &coord, cpub, csec, sizeof(cpub));
    s_keys("w1", &w1, w1pub, w1sec, sizeof(w1pub));
    s_keys("w2", &w2, w2pub, w2sec, sizeof(w2pub));
    s_allowed("allowed-worker-keys", &w1, allowed, sizeof(allowed));
    void *ctx = zmq_ctx_new();
    rf_error err;
    rf_secure *s = rf_secure_new(ctx, csec, allowed, NULL, 0, &err);
    RF_CHECK_MSG(s, "%s", err.msg);
    void *r = zmq_socket(ctx, ZMQ_ROUTER);
    s_opts(r);
    RF_CHECK_MSG(rf_secure_prepare(s, r, RF_CURVE_DOMAIN_WORKERS, "--listen", "tcp://127.0.0.1:*",
                                   &err) == 0,
                 "%s", err.msg);
    RF_CHECK(zmq_bind(r, "tcp://127.0.0.1:*") == 0);
    char ep[128];
    size_t len = sizeof(ep);
    zmq_getsockopt(r, ZMQ_LAST_ENDPOINT, ep, &len);
    RF_CHECK_CONTAINS(rf_secure_describe(s), "workers: curve");
    /* the API has no allowed keys file: it falls under the plain rule */
    void *api = zmq_socket(ctx, ZMQ_ROUTER);
    s_opts(api);
    RF_CHECK_EQ_INT(
        rf_secure_prepare(s, api, RF_CURVE_DOMAIN_API, "--api", "tcp://127.0.0.1:7", &err),
        RF_EINVAL);

    /* a worker set up from its files */
    void *d1 = zmq_socket(ctx, ZMQ_DEALER);
    s_opts(d1);
    rf_curve_monitor *m1 = NULL;
    RF_CHECK_MSG(rf_curve_client_setup(ctx, d1, w1sec, cpub, "worker", ep, &m1, &err) == 0, "%s",
                 err.msg);
    RF_CHECK(zmq_connect(d1, ep) == 0);
    RF_CHECK_MSG(s_settle(m1, &err) == 0, "%s", err.msg);
    RF_CHECK_EQ_INT(zmq_send(d1, "hi", 2, 0), 2);
    char buf[64];
    RF_CHECK(zmq_recv(r, buf, sizeof(buf), 0) > 0); /* identity */
    RF_CHECK_EQ_INT(zmq_recv(r, buf, sizeof(buf), 0), 2);

    /* w2 is not listed: told plainly */
    void *d2 = zmq_socket(ctx, ZMQ_DEALER);
    s_opts(d2);
    rf_curve_monitor *m2 = NULL;
    RF_CHECK_EQ_INT(rf_curve_client_setup(ctx, d2, w2sec, cpub, "worker", ep, &m2, &err), 0);
    RF_CHECK(zmq_connect(d2, ep) == 0);
    RF_CHECK_EQ_INT(s_settle(m2, &err), RF_EPROTO);
    RF_CHECK_CONTAINS(err.msg, "rejected this worker's key");
    rf_curve_monitor_destroy(&m2);
    zmq_close(d2);

    /* SIGHUP with a new file that lists w2 */
    s_allowed("allowed-worker-keys-2", &w2, allowed2, sizeof(allowed2));
    RF_CHECK_MSG(rf_secure_reload(s, allowed2, NULL, &err) == 0, "%s", err.msg);
    d2 = zmq_socket(ctx, ZMQ_DEALER);
    s_opts(d2);
    RF_CHECK_EQ_INT(rf_curve_client_setup(ctx, d2, w2sec, cpub, "worker", ep, &m2, &err), 0);
    RF_CHECK(zmq_connect(d2, ep) == 0);
    RF_CHECK_MSG(s_settle(m2, &err) == 0, "%s", err.msg);
    /* and a broken file keeps w2's admission */
    RF_CHECK_EQ_INT(rf_test_write_file(allowed2, "garbage\n", 8), 0);
    RF_CHECK_EQ_INT(rf_secure_reload(s, NULL, NULL, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "allowed-worker-keys-2:1:");
    uint64_t acc = 0, rej = 0;
    rf_secure_counts(s, &acc, &rej);
    RF_CHECK(acc >= 2 && rej >= 1);

    rf_curve_monitor_destroy(&m1);
    rf_curve_monitor_destroy(&m2);
    zmq_close(d1);
    zmq_close(d2);
    zmq_close(api);
    zmq_close(r);
    rf_secure_destroy(&s);
    zmq_ctx_term(ctx);
}

RF_TEST(client_setup_needs_both_files)
{
    void *ctx = zmq_ctx_new();
    void *d = zmq_socket(ctx, ZMQ_DEALER);
    s_opts(d);
    rf_curve_monitor *m = (rf_curve_monitor *)1;
    rf_error err;
    RF_CHECK_EQ_INT(rf_curve_client_setup(ctx, d, NULL, NULL, "worker", "x", &m, &err), 0);
    RF_CHECK(m == NULL);
    RF_CHECK_EQ_INT(rf_curve_client_setup(ctx, d, "a.key_secret", NULL, "worker", "x", &m, &err),
                    RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "--server-key");
    RF_CHECK_EQ_INT(rf_curve_client_setup(ctx, d, NULL, "c.key", "client", "x", &m, &err),
                    RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "--key");
    zmq_close(d);
    zmq_ctx_term(ctx);
}
