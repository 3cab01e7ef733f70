/* test_fetch.c - downloads against a real, misbehaving HTTP server on loopback
 * (tests/support/http_fixture_server.py, Debian's python3), and input-root confinement.
 *
 * Timeouts here are limits the fetcher must enforce (the checks are on the outcome, never
 * on how long it took); they are short so the whole file runs in a few seconds.
 */
#include "fetch.h"
#include "rf_test.h"
#include "support/proc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static rf_proc *s_server;
static int s_port;

static void s_stop_server(void)
{
    rf_proc_destroy(&s_server);
}

/* Starts the fixture server once for the whole binary. */
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

static const char *const s_hosts[] = {"127.0.0.1"};

static rf_fetch_opts s_opts(void)
{
    rf_fetch_opts o = rf_fetch_opts_default();
    o.hosts = s_hosts;
    o.nhosts = 1;
    o.timeout_ms = 20000;
    o.backoff_ms = 20;
    o.retries = 2;
    return o;
}

static char *s_url(char *buf, size_t cap, const char *path)
{
    snprintf(buf, cap, "http://127.0.0.1:%d%s", s_port, path);
    return buf;
}

static int s_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* dest must not exist and no temp may be left. */
static void s_check_nothing(const char *dest)
{
    char tmp[600];
    snprintf(tmp, sizeof(tmp), "%s.tmp", dest);
    RF_CHECK(!s_exists(dest));
    RF_CHECK(!s_exists(tmp));
}

static void s_expected_hash(size_t n, rf_hash *out)
{
    unsigned char *b = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)(i % 251);
    rf_blake2b(b, n, out);
    free(b);
}

RF_TEST(host_patterns)
{
    const char *h[] = {"cdn.example.com", "*.example.org", "[::1]"};
    RF_CHECK(rf_fetch_host_allowed(h, 3, "CDN.example.com"));
    RF_CHECK(!rf_fetch_host_allowed(h, 3, "evil-cdn.example.com"));
    RF_CHECK(rf_fetch_host_allowed(h, 3, "a.b.example.org"));
    RF_CHECK(!rf_fetch_host_allowed(h, 3, "example.org"));
    RF_CHECK(!rf_fetch_host_allowed(h, 3, "badexample.org"));
    RF_CHECK(rf_fetch_host_allowed(h, 3, "[::1]"));
    RF_CHECK(!rf_fetch_host_allowed(h, 0, "cdn.example.com"));
    RF_CHECK(!rf_fetch_host_allowed(h, 3, ""));
    const char *any[] = {"*"};
    RF_CHECK(rf_fetch_host_allowed(any, 1, "anything.example"));
}

RF_TEST(download_succeeds_with_its_hash)
{
    s_need_server();
    char url[128], dest[512];
    rf_test_path(dest, sizeof(dest), "ok.bin");
    rf_fetch_opts o = s_opts();
    rf_hash h, want;
    int64_t n = 0;
    rf_error err;
    RF_CHECK_MSG(rf_fetch_url(s_url(url, sizeof(url), "/ok/100000"), dest, &o, &h, &n, &err) == 0,
                 "%s", err.msg);
    RF_CHECK_EQ_INT(n, 100000);
    s_expected_hash(100000, &want);
    RF_CHECK(rf_hash_equal(&h, &want));
    rf_hash onfile;
    RF_CHECK_EQ_INT(rf_blake2b_file(dest, &onfile, NULL), 0);
    RF_CHECK(rf_hash_equal(&onfile, &want));
    /* an empty body is a valid input */
    RF_CHECK_EQ_INT(rf_fetch_url(s_url(url, sizeof(url), "/ok/0"), dest, &o, &h, &n, &err), 0);
    RF_CHECK_EQ_INT(n, 0);
}

RF_TEST(not_found_is_not_retried)
{
    s_need_server();
    char url[128], dest[512];
    rf_test_path(dest, sizeof(dest), "missing.bin");
    rf_fetch_opts o = s_opts();
    rf_error err;
    RF_CHECK_EQ_INT(
        rf_fetch_url(s_url(url, sizeof(url), "/status/404"), dest, &o, NULL, NULL, &err),
        RF_ENOTFOUND);
    RF_CHECK_CONTAINS(err.msg, "HTTP 404");
    RF_CHECK_CONTAINS(err.msg, url);
    RF_CHECK(strstr(err.msg, "attempt") == NULL);
    s_check_nothing(dest);
    RF_CHECK_EQ_INT(
        rf_fetch_url(s_url(url, sizeof(url), "/status/403"), dest, &o, NULL, NULL, &err),
        RF_EPROTO);
    RF_CHECK_CONTAINS(err.msg, "HTTP 403");
    s_check_nothing(dest);
}

RF_TEST(retries_after_503_then_succeeds)
{
    s_need_server();
    char url[128], dest[512];
    rf_test_path(dest, sizeof(dest), "flaky.bin");
    rf_fetch_opts o = s_opts();
    rf_error err;
    rf_hash h, want;
    RF_CHECK_MSG(rf_fetch_url(s_url(url, sizeof(url), "/flaky/a/2"), dest, &o, &h, NULL, &err) == 0,
                 "%s", err.msg);
    s_expected_hash(64, &want);
    RF_CHECK(rf_hash_equal(&h, &want));
    /* more failures than retries: the 503 is reported with the attempt count */
    RF_CHECK_EQ_INT(rf_fetch_url(s_url(url, sizeof(url), "/flaky/b/5"), dest, &o, NULL, NULL, &err),
                    RF_EPROTO);
    RF_CHECK_CONTAINS(err.msg, "after 3 attempts");
    RF_CHECK_CONTAINS(err.msg, "HTTP 503");
}

RF_TEST(connection_refused_is_retried_then_reported)
{
    s_need_server();
    int port = 0;
    RF_CHECK_EQ_INT(rf_proc_free_port(&port, NULL), 0);
    char url[128], dest[512];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", port);
    rf_test_path(dest, sizeof(dest), "refused.bin");
    rf_fetch_opts o = s_opts();
    o.retries = 1;
    rf_error err;
    RF_CHECK_EQ_INT(rf_fetch_url(url, dest, &o, NULL, NULL, &err), RF_EIO);
    RF_CHECK_CONTAINS(err.msg, "after 2 attempts");
    s_check_nothing(dest);
}

RF_TEST(hanging_server_times_out)
{
    s_need_server();
    char url[128], dest[512];
    rf_test_path(dest, sizeof(dest), "hang.bin");
    rf_fetch_opts o = s_opts();
    o.retries = 0;
    o.low_speed_timeout_ms = 1000;
    rf_error err;
    RF_CHECK_EQ_INT(rf_fetch_url(s_url(url, sizeof(url), "/hang"), dest, &o, NULL, NULL, &err),
                    RF_EAGAIN);
    RF_CHECK_CONTAINS(err.msg, "stalled");
    s_check_nothing(dest);
    /* the total deadline, with a generous stall limit */
    o.low_speed_timeout_ms = 60000;
    o.timeout_ms = 1500;
    o.retries = 3;
    RF_CHECK_EQ_INT(rf_fetch_url(s_url(url, sizeof(url), "/hang"), dest, &o, NULL, NULL, &err),
                    RF_EAGAIN);
    RF_CHECK_CONTAINS(err.msg, "timed out");
    RF_CHECK_CONTAINS(err.msg, "limits.fetch_timeout");
    s_check_nothing(dest);
}

RF_TEST(oversized_bodies_are_cut)
{
    s_need_server();
    char url[128], dest[512];
    rf_test_path(dest, sizeof(dest), "big.bin");
    rf_fetch_opts o = s_opts();
    o.max_bytes = 50000;
    rf_error err;
    /* honest Content-Length over the limit: refused before the body */
    RF_CHECK_EQ_INT(rf_fetch_url(s_url(url, sizeof(url), "/ok/50001"), dest, &o, NULL, NULL, &err),
                    RF_ENOMEM);
    RF_CHECK_CONTAINS(err.msg, "limits.max_input_bytes");
    s_check_nothing(dest);
    /* no Content-Length: cut while streaming */
    RF_CHECK_EQ_INT(
        rf_fetch_url(s_url(url, sizeof(url), "/nolength/200000"), dest, &o, NULL, NULL, &err),
        RF_ENOMEM);
    s_check_nothing(dest);
    /* a huge declared length */
    RF_CHECK_EQ_INT(
        rf_fetch_url(s_url(url, sizeof(url), "/declared/99999999999"), dest, &o, NULL, NULL, &err),
        RF_ENOMEM);
    s_check_nothing(dest);
    /* exactly at the limit is fine, also without a length */
    RF_CHECK_EQ_INT(
        rf_fetch_url(s_url(url, sizeof(url), "/nolength/50000"), dest, &o, NULL, NULL, &err), 0);
    /* a body shorter than its Content-Length is a broken transfer (retried, then reported) */
    o.retries = 1;
    RF_CHECK_EQ_INT(
        rf_fetch_url(s_url(url, sizeof(url), "/declared/1000"), dest, &o, NULL, NULL, &err),
        RF_EIO);
    RF_CHECK_CONTAINS(err.msg, "after 2 attempts");
    RF_CHECK(s_exists(dest)); /* the earlier good download is untouched */
}

RF_TEST(redirects_are_bounded_and_checked)
{
    s_need_server();
    char url[128], dest[512];
    rf_test_path(dest, sizeof(dest), "redir.bin");
    rf_fetch_opts o = s_opts();
    o.max_redirects = 3;
    rf_error err;
    rf_hash h, want;
    RF_CHECK_MSG(rf_fetch_url(s_url(url, sizeof(url), "/hops/2"), dest, &o, &h, NULL, &err) == 0,
                 "%s", err.msg);
    s_expected_hash(32, &want);
    RF_CHECK(rf_hash_equal(&h, &want));
    unlink(dest);
    RF_CHECK_EQ_INT(rf_fetch_url(s_url(url, sizeof(url), "/hops/3"), dest, &o, NULL, NULL, &err),
                    RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "more than 3 redirects");
    RF_CHECK_EQ_INT(rf_fetch_url(s_url(url, sizeof(url), "/loop"), dest, &o, NULL, NULL, &err),
                    RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "redirect loop");
    s_check_nothing(dest);
    /* an allowed host may not send us to one that is not */
    RF_CHECK_EQ_INT(rf_fetch_url(s_url(url, sizeof(url), "/away"), dest, &o, NULL, NULL, &err),
                    RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "host localhost is not allowed");
    RF_CHECK_CONTAINS(err.msg, "redirected from");
    RF_CHECK_EQ_INT(rf_fetch_url(s_url(url, sizeof(url), "/ftp"), dest, &o, NULL, NULL, &err),
                    RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "only http:// and https://");
    s_check_nothing(dest);
}

RF_TEST(hosts_not_allowed_are_refused_before_any_request)
{
    char url[128], dest[512];
    rf_test_path(dest, sizeof(dest), "refused.bin");
    rf_fetch_opts o = rf_fetch_opts_default(); /* nobody allowed */
    rf_error err;
    snprintf(url, sizeof(url), "http://localhost:%d/ok/10", s_port ? s_port : 9);
    RF_CHECK_EQ_INT(rf_fetch_url(url, dest, &o, NULL, NULL, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "host localhost is not allowed");
    RF_CHECK_CONTAINS(err.msg, "allowed_url_hosts");
    RF_CHECK_CONTAINS(err.msg, "no host is allowed yet");
    o = s_opts();
    RF_CHECK_EQ_INT(rf_fetch_url(url, dest, &o, NULL, NULL, &err), RF_EINVAL);
    RF_CHECK_EQ_INT(rf_fetch_url("file:///etc/passwd", dest, &o, NULL, NULL, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "only http");
    RF_CHECK_EQ_INT(rf_fetch_url("http://user:pw@127.0.0.1/x", dest, &o, NULL, NULL, &err),
                    RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "credentials");
    RF_CHECK(strstr(err.msg, "pw") == NULL);
    RF_CHECK_EQ_INT(rf_fetch_url("not a url", dest, &o, NULL, NULL, &err), RF_EINVAL);
    s_check_nothing(dest);
}

RF_TEST(file_inputs_stay_in_the_input_root)
{
    char root[512], outside[512], p[700], real[4096];
    rf_test_path(root, sizeof(root), "inputs");
    rf_test_path(outside, sizeof(outside), "secret.txt");
    RF_CHECK_EQ_INT(mkdir(root, 0755), 0);
    snprintf(p, sizeof(p), "%s/sub", root);
    RF_CHECK_EQ_INT(mkdir(p, 0755), 0);
    snprintf(p, sizeof(p), "%s/sub/clip.mp4", root);
    RF_CHECK_EQ_INT(rf_test_write_file(p, "x", 1), 0);
    RF_CHECK_EQ_INT(rf_test_write_file(outside, "s", 1), 0);
    snprintf(p, sizeof(p), "%s/escape", root);
    RF_CHECK_EQ_INT(symlink(outside, p), 0);
    snprintf(p, sizeof(p), "%s/inside-link", root);
    RF_CHECK_EQ_INT(symlink("sub/clip.mp4", p), 0);
    rf_error err;

    RF_CHECK_EQ_INT(rf_fetch_confine(root, "sub/clip.mp4", real, sizeof(real), &err), 0);
    RF_CHECK_CONTAINS(real, "/inputs/sub/clip.mp4");
    RF_CHECK_EQ_INT(rf_fetch_confine(root, "inside-link", real, sizeof(real), &err), 0);
    snprintf(p, sizeof(p), "%s/sub/clip.mp4", root);
    RF_CHECK_EQ_INT(rf_fetch_confine(root, p, real, sizeof(real), &err), 0);

    RF_CHECK_EQ_INT(rf_fetch_confine(root, "../secret.txt", real, sizeof(real), &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "'..'");
    RF_CHECK_EQ_INT(rf_fetch_confine(root, "sub/../../secret.txt", real, sizeof(real), &err),
                    RF_EINVAL);
    RF_CHECK_EQ_INT(rf_fetch_confine(root, "escape", real, sizeof(real), &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "outside input_root");
    RF_CHECK_EQ_INT(rf_fetch_confine(root, outside, real, sizeof(real), &err), RF_EINVAL);
    RF_CHECK_EQ_INT(rf_fetch_confine(root, "/etc/passwd", real, sizeof(real), &err), RF_EINVAL);
    RF_CHECK_EQ_INT(rf_fetch_confine(root, "nope.mp4", real, sizeof(real), &err), RF_ENOTFOUND);
    RF_CHECK_EQ_INT(rf_fetch_confine(root, "sub", real, sizeof(real), &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "not a regular file");
    RF_CHECK_EQ_INT(rf_fetch_confine(NULL, "sub/clip.mp4", real, sizeof(real), &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "input_root");
    /* a sibling directory sharing the root's name as a prefix is outside */
    char sib[600];
    snprintf(sib, sizeof(sib), "%s-other", root);
    RF_CHECK_EQ_INT(mkdir(sib, 0755), 0);
    snprintf(p, sizeof(p), "%s/f", sib);
    RF_CHECK_EQ_INT(rf_test_write_file(p, "x", 1), 0);
    RF_CHECK_EQ_INT(rf_fetch_confine(root, p, real, sizeof(real), &err), RF_EINVAL);
}
