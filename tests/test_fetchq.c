/* test_fetchq.c - downloads off the loop: results through a pollable fd, options copied at
 * submit, and destroy aborting a download that hangs. Uses the misbehaving loopback server
 * of tests/support/http_fixture_server.py. */
#include "coordinator/fetchq.h"
#include "rf_test.h"
#include "support/proc.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static rf_proc *s_server;
static int s_port;

static void s_stop_server(void)
{
    rf_proc_destroy(&s_server);
}

static void s_need_server(void)
{
    if (s_server)
        return;
    if (access("/usr/bin/python3", X_OK) != 0)
        RF_SKIP("/usr/bin/python3 (Debian's) is needed for the HTTP fixture server");
    rf_error err;
    RF_CHECK_EQ_INT(rf_proc_free_port(&s_port, &err), 0);
    char port[16], script[1024], ep[64];
    snprintf(port, sizeof(port), "%d", s_port);
    snprintf(script, sizeof(script), "%s/tests/support/http_fixture_server.py", RF_SOURCE_DIR);
    const char *argv[] = {"/usr/bin/python3", script, port, NULL};
    s_server = rf_proc_start(argv, NULL, &err);
    RF_CHECK_MSG(s_server, "%s", err.msg);
    atexit(s_stop_server);
    snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%d", s_port);
    RF_CHECK_MSG(rf_proc_wait_endpoint(s_server, ep, 20000, &err) == 0, "%s", err.msg);
    setenv("no_proxy", "*", 1);
}

static int s_readable(int fd, int timeout_ms)
{
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
}

RF_TEST(results_arrive_through_the_fd)
{
    s_need_server();
    rf_error err;
    rf_fetchq *q = rf_fetchq_new(2, &err);
    RF_CHECK_MSG(q, "%s", err.msg);
    RF_CHECK(!s_readable(rf_fetchq_fd(q), 0));
    char url[3][128], dest[3][512];
    const char *paths[] = {"/ok/5000", "/status/404", "/ok/10"};
    char host_buf[32];
    snprintf(host_buf, sizeof(host_buf), "127.0.0.1");
    const char *hosts[] = {host_buf};
    rf_fetch_opts o = rf_fetch_opts_default();
    o.hosts = hosts;
    o.nhosts = 1;
    o.timeout_ms = 20000;
    for (int i = 0; i < 3; i++) {
        snprintf(url[i], sizeof(url[i]), "http://%s:%d%s", i == 2 ? "localhost" : "127.0.0.1",
                 s_port, paths[i]);
        char name[32];
        snprintf(name, sizeof(name), "q%d.bin", i);
        rf_test_path(dest[i], sizeof(dest[i]), name);
        RF_CHECK_EQ_INT(rf_fetchq_submit(q, 100 + (uint64_t)i, url[i], dest[i], &o, &err), 0);
    }
    /* the copy is the queue's: changing ours changes nothing */
    snprintf(host_buf, sizeof(host_buf), "localhost");
    int got = 0, seen[3] = {0};
    for (int spins = 0; got < 3 && spins < 200; spins++) {
        if (!s_readable(rf_fetchq_fd(q), 100))
            continue;
        rf_fetch_result r;
        while (rf_fetchq_take(q, &r)) {
            int i = (int)(r.tag - 100);
            RF_CHECK(i >= 0 && i < 3 && !seen[i]);
            seen[i] = 1;
            got++;
            RF_CHECK_EQ_STR(r.dest, dest[i]);
            if (i == 0) {
                RF_CHECK_MSG(r.status == 0, "%s", r.error);
                RF_CHECK_EQ_INT(r.bytes, 5000);
                rf_hash onfile;
                RF_CHECK_EQ_INT(rf_blake2b_file(dest[0], &onfile, NULL), 0);
                RF_CHECK(rf_hash_equal(&onfile, &r.hash));
            } else if (i == 1) {
                RF_CHECK_EQ_INT(r.status, RF_ENOTFOUND);
                RF_CHECK_CONTAINS(r.error, "404");
            } else {
                RF_CHECK_EQ_INT(r.status, RF_EINVAL);
                RF_CHECK_CONTAINS(r.error, "allowed_url_hosts");
            }
            rf_fetch_result_clear(&r);
        }
    }
    RF_CHECK_EQ_INT(got, 3);
    RF_CHECK(!s_readable(rf_fetchq_fd(q), 0));
    RF_CHECK_EQ_INT(rf_fetchq_pending(q), 0);
    rf_fetchq_destroy(&q);
    rf_fetchq_destroy(&q);
}

RF_TEST(destroy_aborts_a_hanging_download)
{
    s_need_server();
    rf_error err;
    rf_fetchq *q = rf_fetchq_new(1, &err);
    RF_CHECK(q);
    char url[128], dest[512], dest2[512];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/hang", s_port);
    rf_test_path(dest, sizeof(dest), "hang.bin");
    rf_test_path(dest2, sizeof(dest2), "queued.bin");
    const char *hosts[] = {"127.0.0.1"};
    rf_fetch_opts o = rf_fetch_opts_default();
    o.hosts = hosts;
    o.nhosts = 1; /* stall and total limits far beyond the test's life */
    RF_CHECK_EQ_INT(rf_fetchq_submit(q, 1, url, dest, &o, &err), 0);
    RF_CHECK_EQ_INT(rf_fetchq_submit(q, 2, url, dest2, &o, &err), 0);
    for (int i = 0; i < 100 && rf_fetchq_pending(q) != 2; i++)
        usleep(10000);
    RF_CHECK_EQ_INT(rf_fetchq_pending(q), 2);
    RF_CHECK(!s_readable(rf_fetchq_fd(q), 200));
    rf_fetchq_destroy(&q); /* returns: the running download is aborted, the queued one dropped */
    RF_CHECK(q == NULL);
    RF_CHECK(access(dest, F_OK) != 0);
    char tmp[600];
    snprintf(tmp, sizeof(tmp), "%s.tmp", dest);
    RF_CHECK(access(tmp, F_OK) != 0);
}

RF_TEST(bad_thread_counts)
{
    rf_error err;
    RF_CHECK(rf_fetchq_new(0, &err) == NULL);
    RF_CHECK(rf_fetchq_new(17, &err) == NULL);
    RF_CHECK_CONTAINS(err.msg, "threads");
}
