/* test_curve.c - CURVE key files, the ZAP handler and the client monitor on real sockets.
 *
 * Every exchange runs over tcp on loopback between a CURVE ROUTER (the coordinator's
 * side) and DEALERs with various keys. Waits are bounded by generous timeouts only.
 */
#include "curve.h"
#include "rf_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

static void s_need_curve(void)
{
    if (!rf_curve_available())
        RF_SKIP("libzmq without CURVE");
}

static void s_keygen(const char *name, rf_curve_keypair *kp)
{
    char base[512];
    rf_test_path(base, sizeof(base), name);
    rf_error err;
    RF_CHECK_MSG(rf_curve_keygen_files(base, kp, &err) == 0, "%s", err.msg);
}

static void s_write(const char *name, const char *text, char *path, size_t cap)
{
    rf_test_path(path, cap, name);
    RF_CHECK(rf_test_write_file(path, text, strlen(text)) == 0);
}

RF_TEST(keygen_writes_two_files_with_modes)
{
    s_need_curve();
    rf_curve_keypair kp, back;
    s_keygen("k1", &kp);
    char pub[512], sec[512];
    rf_test_path(pub, sizeof(pub), "k1.key");
    rf_test_path(sec, sizeof(sec), "k1.key_secret");
    struct stat st;
    RF_CHECK(stat(sec, &st) == 0);
    RF_CHECK_EQ_INT(st.st_mode & 0777, 0600);
    RF_CHECK(stat(pub, &st) == 0);
    RF_CHECK_EQ_INT(st.st_mode & 0777, 0644);
    rf_error err;
    RF_CHECK_MSG(rf_curve_keypair_load(sec, &back, &err) == 0, "%s", err.msg);
    RF_CHECK_EQ_STR(back.public_z85, kp.public_z85);
    RF_CHECK_EQ_STR(back.secret_z85, kp.secret_z85);
    char p[RF_CURVE_Z85_LEN + 1];
    RF_CHECK_EQ_INT(rf_curve_public_load(pub, p, &err), 0);
    RF_CHECK_EQ_STR(p, kp.public_z85);
    RF_CHECK_EQ_INT(rf_curve_public_load(sec, p, &err), 0);
    RF_CHECK_EQ_STR(p, kp.public_z85);
    /* the public file holds no secret */
    FILE *f = fopen(pub, "r");
    char buf[1024];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    RF_CHECK(strstr(buf, kp.secret_z85) == NULL);
    /* never overwrites */
    char base[512];
    rf_test_path(base, sizeof(base), "k1");
    RF_CHECK_EQ_INT(rf_curve_keygen_files(base, NULL, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "exists");
    RF_CHECK_EQ_INT(rf_curve_keypair_load(sec, &back, &err), 0);
    RF_CHECK_EQ_STR(back.secret_z85, kp.secret_z85);
}

RF_TEST(bad_key_files_are_named)
{
    s_need_curve();
    rf_curve_keypair kp, back;
    s_keygen("k2", &kp);
    char sec[512], path[512];
    rf_test_path(sec, sizeof(sec), "k2.key_secret");
    rf_error err;
    RF_CHECK_EQ_INT(chmod(sec, 0644), 0);
    RF_CHECK_EQ_INT(rf_curve_keypair_load(sec, &back, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "chmod 600");
    RF_CHECK_EQ_INT(rf_curve_keypair_load("/nonexistent/x.key_secret", &back, &err), RF_ENOTFOUND);
    RF_CHECK_CONTAINS(err.msg, "/nonexistent/x.key_secret");

    s_write("bad1.key_secret", "# c\n\nsecret-key: tooshort\n", path, sizeof(path));
    chmod(path, 0600);
    RF_CHECK_EQ_INT(rf_curve_keypair_load(path, &back, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "bad1.key_secret:3:");
    RF_CHECK_CONTAINS(err.msg, "40 z85");

    s_write("bad2.key_secret", "hello world\n", path, sizeof(path));
    chmod(path, 0600);
    RF_CHECK_EQ_INT(rf_curve_keypair_load(path, &back, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "bad2.key_secret:1:");

    /* a public key file is not a secret key file */
    char pub[512];
    rf_test_path(pub, sizeof(pub), "k2.key");
    chmod(pub, 0600);
    RF_CHECK_EQ_INT(rf_curve_keypair_load(pub, &back, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "no secret-key line");

    /* a public line that does not belong to the secret */
    rf_curve_keypair other;
    RF_CHECK_EQ_INT(rf_curve_keypair_generate(&other, NULL), 0);
    char text[256];
    snprintf(text, sizeof(text), "public-key: %s\nsecret-key: %s\n", other.public_z85,
             kp.secret_z85);
    s_write("bad3.key_secret", text, path, sizeof(path));
    chmod(path, 0600);
    RF_CHECK_EQ_INT(rf_curve_keypair_load(path, &back, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "does not belong");

    s_write("bin.key", "public-key: \0zzz", path, sizeof(path));
    RF_CHECK(rf_curve_key_valid("") == 0);
    RF_CHECK(rf_curve_key_valid(NULL) == 0);
    RF_CHECK(rf_curve_key_valid("0000000000000000000000000000000000000000 ") == 0);
    RF_CHECK(rf_curve_key_valid(kp.public_z85) == 1);
}

/* ---- a server and clients ------------------------------------------------------------ */

typedef struct s_farm {
    void *ctx, *router;
    rf_zap *zap;
    rf_curve_keypair server;
    char endpoint[64];
    char allowed[512];
} s_farm;

static void s_opts(void *sock)
{
    int ms = 5000, zero = 0;
    zmq_setsockopt(sock, ZMQ_RCVTIMEO, &ms, sizeof(ms));
    zmq_setsockopt(sock, ZMQ_SNDTIMEO, &ms, sizeof(ms));
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof(zero));
}

static void s_farm_up(s_farm *f, const char *allowed_text)
{
    memset(f, 0, sizeof(*f));
    rf_error err;
    f->ctx = zmq_ctx_new();
    RF_CHECK(f->ctx);
    f->zap = rf_zap_new(f->ctx, &err);
    RF_CHECK_MSG(f->zap, "%s", err.msg);
    s_write("allowed-worker-keys", allowed_text, f->allowed, sizeof(f->allowed));
    RF_CHECK_MSG(rf_zap_allow_file(f->zap, RF_CURVE_DOMAIN_WORKERS, f->allowed, &err) == 0, "%s",
                 err.msg);
    RF_CHECK_EQ_INT(rf_curve_keypair_generate(&f->server, &err), 0);
    f->router = zmq_socket(f->ctx, ZMQ_ROUTER);
    s_opts(f->router);
    RF_CHECK_MSG(rf_curve_server_apply(f->router, &f->server, RF_CURVE_DOMAIN_WORKERS, &err) == 0,
                 "%s", err.msg);
    RF_CHECK(zmq_bind(f->router, "tcp://127.0.0.1:*") == 0);
    size_t len = sizeof(f->endpoint);
    zmq_getsockopt(f->router, ZMQ_LAST_ENDPOINT, f->endpoint, &len);
}

static void s_farm_down(s_farm *f)
{
    zmq_close(f->router);
    rf_zap_destroy(&f->zap);
    rf_zap_destroy(&f->zap);
    zmq_ctx_term(f->ctx);
}

typedef struct s_client {
    void *sock;
    rf_curve_monitor *mon;
} s_client;

static void s_client_up(s_farm *f, s_client *c, const rf_curve_keypair *kp,
                        const char *server_public)
{
    rf_error err;
    c->sock = zmq_socket(f->ctx, ZMQ_DEALER);
    s_opts(c->sock);
    RF_CHECK_MSG(rf_curve_client_apply(c->sock, kp, server_public, &err) == 0, "%s", err.msg);
    c->mon = rf_curve_monitor_new(f->ctx, c->sock, "worker", f->endpoint, &err);
    RF_CHECK_MSG(c->mon, "%s", err.msg);
    RF_CHECK(zmq_connect(c->sock, f->endpoint) == 0);
}

static void s_client_down(s_client *c)
{
    rf_curve_monitor_destroy(&c->mon);
    rf_curve_monitor_destroy(&c->mon);
    zmq_close(c->sock);
}

/* Waits (bounded) until the monitor reports success (returns 0) or failure (rc). */
static int s_settle(s_client *c, rf_error *err)
{
    for (int i = 0; i < 100; i++) {
        int rc = rf_curve_monitor_check(c->mon, 100, err);
        if (rc)
            return rc;
        if (rf_curve_monitor_connected(c->mon))
            return 0;
    }
    return rf_error_set(err, RF_EAGAIN, "no handshake result within 10 s");
}

/* Client sends "ping", router echoes "pong"; returns 1 when the round trip worked. */
static int s_round_trip(s_farm *f, s_client *c)
{
    if (zmq_send(c->sock, "ping", 4, 0) != 4)
        return 0;
    char id[256], body[16];
    int idn = zmq_recv(f->router, id, sizeof(id), 0);
    int n = zmq_recv(f->router, body, sizeof(body), 0);
    if (idn <= 0 || n != 4 || memcmp(body, "ping", 4) != 0)
        return 0;
    zmq_send(f->router, id, (size_t)idn, ZMQ_SNDMORE);
    zmq_send(f->router, "pong", 4, 0);
    n = zmq_recv(c->sock, body, sizeof(body), 0);
    return n == 4 && memcmp(body, "pong", 4) == 0;
}

static char *s_line(const rf_curve_keypair *kp, const char *name, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s %s\n", kp->public_z85, name);
    return buf;
}

RF_TEST(allowed_key_talks_and_wrong_key_is_told)
{
    s_need_curve();
    rf_curve_keypair good, bad;
    RF_CHECK_EQ_INT(rf_curve_keypair_generate(&good, NULL), 0);
    RF_CHECK_EQ_INT(rf_curve_keypair_generate(&bad, NULL), 0);
    char allowed[256];
    s_farm f;
    s_farm_up(&f, s_line(&good, "worker-1", allowed, sizeof(allowed)));

    s_client ok;
    s_client_up(&f, &ok, &good, f.server.public_z85);
    rf_error err;
    RF_CHECK_MSG(s_settle(&ok, &err) == 0, "%s", err.msg);
    RF_CHECK(s_round_trip(&f, &ok));

    s_client no;
    s_client_up(&f, &no, &bad, f.server.public_z85);
    RF_CHECK_EQ_INT(s_settle(&no, &err), RF_EPROTO);
    RF_CHECK_CONTAINS(err.msg, "rejected this worker's key");
    RF_CHECK_CONTAINS(err.msg, "allowed-worker-keys");
    RF_CHECK_CONTAINS(err.msg, f.endpoint);
    /* sticky */
    RF_CHECK_EQ_INT(rf_curve_monitor_check(no.mon, 0, &err), RF_EPROTO);
    /* the rejected client's message never reaches the server */
    zmq_send(no.sock, "ping", 4, ZMQ_DONTWAIT);
    char buf[16];
    int ms = 200;
    zmq_setsockopt(f.router, ZMQ_RCVTIMEO, &ms, sizeof(ms));
    RF_CHECK(zmq_recv(f.router, buf, sizeof(buf), 0) < 0);
    uint64_t acc = 0, rej = 0;
    rf_zap_counts(f.zap, &acc, &rej);
    RF_CHECK(acc >= 1);
    RF_CHECK(rej >= 1);

    s_client_down(&ok);
    s_client_down(&no);
    s_farm_down(&f);
}

RF_TEST(wrong_server_key_is_a_handshake_failure)
{
    s_need_curve();
    rf_curve_keypair good, impostor;
    RF_CHECK_EQ_INT(rf_curve_keypair_generate(&good, NULL), 0);
    RF_CHECK_EQ_INT(rf_curve_keypair_generate(&impostor, NULL), 0);
    char allowed[256];
    s_farm f;
    s_farm_up(&f, s_line(&good, "w", allowed, sizeof(allowed)));
    s_client c;
    s_client_up(&f, &c, &good, impostor.public_z85);
    rf_error err;
    RF_CHECK_EQ_INT(s_settle(&c, &err), RF_EPROTO);
    RF_CHECK_CONTAINS(err.msg, f.endpoint);
    s_client_down(&c);
    s_farm_down(&f);
}

RF_TEST(plain_client_is_refused_by_curve_server)
{
    s_need_curve();
    s_farm f;
    s_farm_up(&f, "");
    void *plain = zmq_socket(f.ctx, ZMQ_DEALER);
    s_opts(plain);
    RF_CHECK(zmq_connect(plain, f.endpoint) == 0);
    zmq_send(plain, "ping", 4, ZMQ_DONTWAIT);
    int ms = 300;
    zmq_setsockopt(f.router, ZMQ_RCVTIMEO, &ms, sizeof(ms));
    char buf[16];
    RF_CHECK(zmq_recv(f.router, buf, sizeof(buf), 0) < 0);
    zmq_close(plain);
    s_farm_down(&f);
}

RF_TEST(reload_adds_and_removes_keys_without_dropping_peers)
{
    s_need_curve();
    rf_curve_keypair a, b;
    RF_CHECK_EQ_INT(rf_curve_keypair_generate(&a, NULL), 0);
    RF_CHECK_EQ_INT(rf_curve_keypair_generate(&b, NULL), 0);
    char la[256];
    s_farm f;
    s_farm_up(&f, s_line(&a, "a", la, sizeof(la)));
    rf_error err;

    s_client ca;
    s_client_up(&f, &ca, &a, f.server.public_z85);
    RF_CHECK_MSG(s_settle(&ca, &err) == 0, "%s", err.msg);
    s_client cb;
    s_client_up(&f, &cb, &b, f.server.public_z85);
    RF_CHECK_EQ_INT(s_settle(&cb, &err), RF_EPROTO);
    s_client_down(&cb);

    /* swap: only b allowed (written as a public key file line, with a comment) */
    char text[512];
    snprintf(text, sizeof(text), "# rotated\npublic-key: %s\n", b.public_z85);
    RF_CHECK_EQ_INT(rf_test_write_file(f.allowed, text, strlen(text)), 0);
    RF_CHECK_MSG(rf_zap_reload(f.zap, &err) == 0, "%s", err.msg);

    s_client_up(&f, &cb, &b, f.server.public_z85);
    RF_CHECK_MSG(s_settle(&cb, &err) == 0, "%s", err.msg);
    RF_CHECK(s_round_trip(&f, &cb));
    /* a is no longer allowed, but its connection stays */
    RF_CHECK(s_round_trip(&f, &ca));
    s_client ca2;
    s_client_up(&f, &ca2, &a, f.server.public_z85);
    RF_CHECK_EQ_INT(s_settle(&ca2, &err), RF_EPROTO);
    s_client_down(&ca2);

    /* a broken file changes nothing */
    RF_CHECK_EQ_INT(rf_test_write_file(f.allowed, "not-a-key\n", 10), 0);
    RF_CHECK_EQ_INT(rf_zap_reload(f.zap, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "allowed-worker-keys:1:");
    RF_CHECK_CONTAINS(err.msg, "nothing changed");
    s_client cb2;
    s_client_up(&f, &cb2, &b, f.server.public_z85);
    RF_CHECK_MSG(s_settle(&cb2, &err) == 0, "%s", err.msg);
    s_client_down(&cb2);

    s_client_down(&ca);
    s_client_down(&cb);
    s_farm_down(&f);
}

RF_TEST(allowed_keys_file_errors)
{
    s_need_curve();
    void *ctx = zmq_ctx_new();
    rf_error err;
    rf_zap *zap = rf_zap_new(ctx, &err);
    RF_CHECK(zap);
    /* a second handler on the same context is refused */
    RF_CHECK(rf_zap_new(ctx, &err) == NULL);
    RF_CHECK_CONTAINS(err.msg, "zeromq.zap.01");
    rf_curve_keypair kp;
    RF_CHECK_EQ_INT(rf_curve_keypair_generate(&kp, NULL), 0);
    char path[512], text[512];
    snprintf(text, sizeof(text), "%s ok\n\n  # c\nsecret-key: %s\n", kp.public_z85, kp.secret_z85);
    s_write("leak", text, path, sizeof(path));
    RF_CHECK_EQ_INT(rf_zap_allow_file(zap, "api", path, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "leak:4:");
    RF_CHECK_CONTAINS(err.msg, "secret key");
    RF_CHECK_EQ_INT(rf_zap_allow_file(zap, "api", "/nonexistent/allowed", &err), RF_ENOTFOUND);
    RF_CHECK_CONTAINS(err.msg, "/nonexistent/allowed");
    s_write("empty", "", path, sizeof(path));
    RF_CHECK_EQ_INT(rf_zap_allow_file(zap, "api", path, &err), 0);
    rf_zap_destroy(&zap);
    zmq_ctx_term(ctx);
}

RF_TEST(malformed_zap_requests_get_an_error_reply)
{
    s_need_curve();
    void *ctx = zmq_ctx_new();
    rf_zap *zap = rf_zap_new(ctx, NULL);
    RF_CHECK(zap);
    void *req = zmq_socket(ctx, ZMQ_REQ);
    s_opts(req);
    RF_CHECK(zmq_connect(req, "inproc://zeromq.zap.01") == 0);
    const char *frames[] = {"2.0", "id", "workers"};
    for (int i = 0; i < 3; i++)
        zmq_send(req, frames[i], strlen(frames[i]), i < 2 ? ZMQ_SNDMORE : 0);
    char parts[6][64];
    int lens[6], n = 0, more = 1;
    while (more && n < 6) {
        lens[n] = zmq_recv(req, parts[n], sizeof(parts[n]), 0);
        RF_CHECK(lens[n] >= 0);
        int m = 0;
        size_t sz = sizeof(m);
        zmq_getsockopt(req, ZMQ_RCVMORE, &m, &sz);
        more = m;
        n++;
    }
    RF_CHECK_EQ_INT(n, 6);
    RF_CHECK_EQ_INT(lens[2], 3);
    RF_CHECK(memcmp(parts[2], "500", 3) == 0);
    /* a CURVE request with a key of the wrong size, in an unknown domain */
    const char *f2[] = {"1.0", "7", "nowhere", "127.0.0.1", "", "CURVE", "short"};
    for (int i = 0; i < 7; i++)
        zmq_send(req, f2[i], strlen(f2[i]), i < 6 ? ZMQ_SNDMORE : 0);
    n = 0;
    more = 1;
    while (more && n < 6) {
        lens[n] = zmq_recv(req, parts[n], sizeof(parts[n]), 0);
        RF_CHECK(lens[n] >= 0);
        int m = 0;
        size_t sz = sizeof(m);
        zmq_getsockopt(req, ZMQ_RCVMORE, &m, &sz);
        more = m;
        n++;
    }
    RF_CHECK_EQ_INT(n, 6);
    RF_CHECK(memcmp(parts[1], "7", 1) == 0);
    RF_CHECK(memcmp(parts[2], "400", 3) == 0);
    zmq_close(req);
    rf_zap_destroy(&zap);
    zmq_ctx_term(ctx);
}

RF_TEST(private_endpoints_and_the_bind_rule)
{
    char why[512];
    RF_CHECK_EQ_INT(rf_curve_endpoint_private("inproc://x", why, sizeof(why)), 1);
    RF_CHECK_EQ_INT(rf_curve_endpoint_private("tcp://*:5555", why, sizeof(why)), 0);
    RF_CHECK_EQ_INT(rf_curve_endpoint_private("tcp://127.0.0.1:5555", why, sizeof(why)), 0);
    RF_CHECK_CONTAINS(why, "loopback");
    RF_CHECK_EQ_INT(rf_curve_endpoint_private("ipc://@abstract", why, sizeof(why)), 0);
    RF_CHECK_EQ_INT(rf_curve_endpoint_private("udp://x", why, sizeof(why)), 0);
    RF_CHECK_EQ_INT(rf_curve_endpoint_private(NULL, NULL, 0), 0);
    char dir[512], ep[600];
    rf_test_path(dir, sizeof(dir), "priv");
    RF_CHECK_EQ_INT(mkdir(dir, 0700), 0);
    snprintf(ep, sizeof(ep), "ipc://%s/w.sock", dir);
    RF_CHECK_EQ_INT(rf_curve_endpoint_private(ep, why, sizeof(why)), 1);
    RF_CHECK_EQ_INT(chmod(dir, 0755), 0);
    RF_CHECK_EQ_INT(rf_curve_endpoint_private(ep, why, sizeof(why)), 0);
    RF_CHECK_CONTAINS(why, "0700");
    snprintf(ep, sizeof(ep), "ipc://%s/missing/w.sock", dir);
    RF_CHECK_EQ_INT(rf_curve_endpoint_private(ep, why, sizeof(why)), 0);
    RF_CHECK_CONTAINS(why, "does not exist");

    rf_error err;
    RF_CHECK_EQ_INT(rf_curve_bind_check("--listen", "tcp://*:5555", 1, 0, &err), 0);
    RF_CHECK_EQ_INT(rf_curve_bind_check("--listen", "inproc://w", 0, 0, &err), 0);
    RF_CHECK_EQ_INT(rf_curve_bind_check("--listen", "tcp://*:5555", 0, 0, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "--listen tcp://*:5555");
    RF_CHECK_CONTAINS(err.msg, "--insecure");
    RF_CHECK_CONTAINS(err.msg, "reelctl keygen");
    RF_CHECK_EQ_INT(rf_curve_bind_check("--api", "tcp://*:5556", 0, 1, &err), 0);
}
