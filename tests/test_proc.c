/* test_proc.c - tests/support/proc: starting /bin/sh scripts as stand-ins for our
 * binaries: captured output, environment edits, signals, timeouts that kill the whole
 * process group, waiting for log lines and for tcp:// and ipc:// endpoints.
 */
#include "rf_test.h"
#include "support/proc.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#define LONG_MS 20000 /* upper bound for things that happen at once */

static rf_proc *s_sh(const char *script, const char *const env[])
{
    const char *argv[] = {"/bin/sh", "-c", script, NULL};
    rf_error err = {0};
    rf_proc *p = rf_proc_start(argv, env, &err);
    RF_CHECK_MSG(p != NULL, "start: %s", err.msg);
    return p;
}

/* 1 when pid no longer exists or is a zombie (killed, waiting for its reaper). */
static int s_gone(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *rp = strrchr(buf, ')');
    return rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X');
}

RF_TEST(bin_path_follows_rf_build)
{
    char buf[512];
    const char *old = getenv("RF_BUILD");
    char saved[512] = "";
    if (old)
        snprintf(saved, sizeof(saved), "%s", old);
    setenv("RF_BUILD", "/x/build", 1);
    RF_CHECK_EQ_STR(rf_proc_bin(buf, sizeof(buf), "reelctl"), "/x/build/bin/reelctl");
    unsetenv("RF_BUILD");
    RF_CHECK_EQ_STR(rf_proc_bin(buf, sizeof(buf), "reelctl"), RF_SOURCE_DIR "/build/bin/reelctl");
    if (saved[0])
        setenv("RF_BUILD", saved, 1);
}

RF_TEST(captures_output_and_exit_code)
{
    rf_proc *p = s_sh("echo out-line; echo err-line >&2; exit 3", NULL);
    int st = -1;
    rf_error err = {0};
    RF_CHECK_MSG(rf_proc_wait(p, LONG_MS, &st, &err) == 0, "%s", err.msg);
    RF_CHECK_EQ_INT(st, 3);
    RF_CHECK(!rf_proc_running(p));
    size_t len = 0;
    char *log = rf_proc_log(p, &len);
    RF_CHECK(log);
    RF_CHECK_EQ_STR(log, "out-line\nerr-line\n");
    RF_CHECK_EQ_INT(len, strlen(log));
    free(log);
    RF_CHECK(rf_proc_log_contains(p, "err-line"));
    RF_CHECK(!rf_proc_log_contains(p, "absent"));
    RF_CHECK_CONTAINS(rf_proc_log_path(p), rf_test_tmpdir());
    /* Signalling an exited process says so. */
    RF_CHECK_EQ_INT(rf_proc_signal(p, SIGTERM, &err), RF_ENOTFOUND);
    RF_CHECK_CONTAINS(err.msg, "already exited with status 3");
    rf_proc_destroy(&p);
    RF_CHECK(p == NULL);
    rf_proc_destroy(&p);
}

RF_TEST(environment_edits)
{
    setenv("RF_PROC_DROP", "should-vanish", 1);
    setenv("RF_PROC_KEEP", "kept", 1);
    const char *env[] = {"RF_PROC_SET=hello world", "RF_PROC_DROP", "RF_PROC_KEEP=replaced", NULL};
    rf_proc *p =
        s_sh("echo \"set=$RF_PROC_SET drop=${RF_PROC_DROP-unset} keep=$RF_PROC_KEEP\"", env);
    rf_error err = {0};
    RF_CHECK_MSG(rf_proc_wait(p, LONG_MS, NULL, &err) == 0, "%s", err.msg);
    RF_CHECK(rf_proc_log_contains(p, "set=hello world drop=unset keep=replaced"));
    rf_proc_destroy(&p);
    unsetenv("RF_PROC_DROP");
    unsetenv("RF_PROC_KEEP");
}

RF_TEST(missing_binary_is_an_error)
{
    const char *argv[] = {"/nonexistent/reelfarm-nothing", "--x", NULL};
    rf_error err = {0};
    rf_proc *p = rf_proc_start(argv, NULL, &err);
    RF_CHECK(p == NULL);
    RF_CHECK_EQ_INT(err.code, RF_ENOTFOUND);
    RF_CHECK_CONTAINS(err.msg, "cannot execute /nonexistent/reelfarm-nothing");
    const char *none[] = {NULL};
    RF_CHECK(rf_proc_start(none, NULL, &err) == NULL);
    RF_CHECK_EQ_INT(err.code, RF_EINVAL);
}

RF_TEST(signal_then_clean_exit)
{
    rf_proc *p = s_sh("trap 'echo got TERM; exit 7' TERM; echo ready; "
                      "while :; do sleep 0.05; done",
                      NULL);
    rf_error err = {0};
    RF_CHECK_MSG(rf_proc_wait_log(p, "ready", LONG_MS, &err) == 0, "%s", err.msg);
    RF_CHECK(rf_proc_running(p));
    RF_CHECK_MSG(rf_proc_signal(p, SIGTERM, &err) == 0, "%s", err.msg);
    int st = -1;
    RF_CHECK_MSG(rf_proc_wait(p, LONG_MS, &st, &err) == 0, "%s", err.msg);
    RF_CHECK_EQ_INT(st, 7);
    RF_CHECK(rf_proc_log_contains(p, "got TERM"));
    rf_proc_destroy(&p);
}

RF_TEST(killed_by_signal_reports_128_plus_signal)
{
    rf_proc *p = s_sh("echo ready; exec sleep 1000", NULL);
    rf_error err = {0};
    RF_CHECK_MSG(rf_proc_wait_log(p, "ready", LONG_MS, &err) == 0, "%s", err.msg);
    RF_CHECK(rf_proc_signal(p, SIGINT, &err) == 0);
    int st = -1;
    RF_CHECK_MSG(rf_proc_wait(p, LONG_MS, &st, &err) == 0, "%s", err.msg);
    RF_CHECK_EQ_INT(st, 128 + SIGINT);
    rf_proc_destroy(&p);
}

RF_TEST(wait_timeout_kills_the_whole_group)
{
    /* The shell ignores TERM and has a child: a timeout must take both down. */
    rf_proc *p = s_sh("trap '' TERM; sleep 1000 & echo child=$!; wait", NULL);
    rf_error err = {0};
    RF_CHECK_MSG(rf_proc_wait_log(p, "child=", LONG_MS, &err) == 0, "%s", err.msg);
    char *log = rf_proc_log(p, NULL);
    RF_CHECK(log);
    int child = atoi(strstr(log, "child=") + 6);
    free(log);
    RF_CHECK(child > 0);
    int st = -1;
    RF_CHECK_EQ_INT(rf_proc_wait(p, 50, &st, &err), RF_EAGAIN);
    RF_CHECK_EQ_INT(st, 128 + SIGKILL);
    RF_CHECK_CONTAINS(err.msg, "did not exit within 50 ms; killed -9");
    RF_CHECK_CONTAINS(err.msg, "child=");
    RF_CHECK(!rf_proc_running(p));
    int gone = 0;
    for (int i = 0; i < 2000 && !gone; i++) { /* the orphan's reaper may take a moment */
        gone = s_gone((pid_t)child);
        if (!gone)
            usleep(1000);
    }
    RF_CHECK_MSG(gone, "grandchild %d survived the group kill", child);
    rf_proc_destroy(&p);
}

RF_TEST(destroy_kills_a_running_process)
{
    rf_proc *p = s_sh("exec sleep 1000", NULL);
    pid_t pid = rf_proc_pid(p);
    RF_CHECK(rf_proc_running(p));
    rf_proc_destroy(&p);
    RF_CHECK(p == NULL);
    RF_CHECK(kill(pid, 0) != 0 && errno == ESRCH); /* killed and reaped */
}

RF_TEST(wait_log_reports_early_exit_and_timeout)
{
    rf_proc *p = s_sh("echo something else; exit 4", NULL);
    rf_error err = {0};
    RF_CHECK_EQ_INT(rf_proc_wait_log(p, "listening", LONG_MS, &err), RF_EIO);
    RF_CHECK_CONTAINS(err.msg, "exited with status 4 while waiting for listening");
    RF_CHECK_CONTAINS(err.msg, "something else");
    rf_proc_destroy(&p);

    p = s_sh("echo started; exec sleep 1000", NULL);
    RF_CHECK_MSG(rf_proc_wait_log(p, "started", LONG_MS, &err) == 0, "%s", err.msg);
    RF_CHECK_EQ_INT(rf_proc_wait_log(p, "never printed", 50, &err), RF_EAGAIN);
    RF_CHECK_CONTAINS(err.msg, "did not log \"never printed\" within 50 ms");
    RF_CHECK_CONTAINS(err.msg, "started");
    rf_proc_destroy(&p);
}

RF_TEST(free_port_is_bindable)
{
    int port = 0;
    rf_error err = {0};
    RF_CHECK_MSG(rf_proc_free_port(&port, &err) == 0, "%s", err.msg);
    RF_CHECK(port >= 1024 && port <= 65535);
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_ROUTER);
    char ep[64];
    snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%d", port);
    RF_CHECK_MSG(zmq_bind(s, ep) == 0, "bind %s: %s", ep, zmq_strerror(zmq_errno()));
    zmq_close(s);
    zmq_ctx_term(ctx);
}

RF_TEST(wait_endpoint_tcp_and_ipc)
{
    rf_error err = {0};
    int port = 0, other = 0;
    RF_CHECK(rf_proc_free_port(&port, &err) == 0);
    RF_CHECK(rf_proc_free_port(&other, &err) == 0);
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_ROUTER);
    int zero = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
    char ep[600], ipc[600];
    snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%d", port);
    snprintf(ipc, sizeof(ipc), "ipc://%s/ep.sock", rf_test_tmpdir());
    RF_CHECK(zmq_bind(s, ep) == 0);
    RF_CHECK(zmq_bind(s, ipc) == 0);
    RF_CHECK_MSG(rf_proc_wait_endpoint(NULL, ep, LONG_MS, &err) == 0, "%s", err.msg);
    snprintf(ep, sizeof(ep), "tcp://localhost:%d", port);
    RF_CHECK_MSG(rf_proc_wait_endpoint(NULL, ep, LONG_MS, &err) == 0, "%s", err.msg);
    snprintf(ep, sizeof(ep), "tcp://*:%d", port);
    RF_CHECK_MSG(rf_proc_wait_endpoint(NULL, ep, LONG_MS, &err) == 0, "%s", err.msg);
    RF_CHECK_MSG(rf_proc_wait_endpoint(NULL, ipc, LONG_MS, &err) == 0, "%s", err.msg);
    /* Nothing listens there. */
    snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%d", other == port ? port + 1 : other);
    RF_CHECK_EQ_INT(rf_proc_wait_endpoint(NULL, ep, 30, &err), RF_EAGAIN);
    RF_CHECK_CONTAINS(err.msg, "nothing accepted on tcp://127.0.0.1:");
    snprintf(ipc, sizeof(ipc), "ipc://%s/nobody.sock", rf_test_tmpdir());
    RF_CHECK_EQ_INT(rf_proc_wait_endpoint(NULL, ipc, 30, &err), RF_EAGAIN);
    zmq_close(s);
    zmq_ctx_term(ctx);
}

RF_TEST(wait_endpoint_notices_the_process_died)
{
    rf_proc *p = s_sh("echo cannot bind: address in use >&2; exit 2", NULL);
    rf_error err = {0};
    char ipc[600];
    snprintf(ipc, sizeof(ipc), "ipc://%s/never.sock", rf_test_tmpdir());
    RF_CHECK_EQ_INT(rf_proc_wait_endpoint(p, ipc, LONG_MS, &err), RF_EIO);
    RF_CHECK_CONTAINS(err.msg, "exited with status 2");
    RF_CHECK_CONTAINS(err.msg, "address in use");
    rf_proc_destroy(&p);
}

RF_TEST(bad_endpoints_are_refused)
{
    rf_error err = {0};
    const char *bad[] = {
        "udp://127.0.0.1:1",     "tcp://127.0.0.1",     "tcp://:5", "tcp://127.0.0.1:0",
        "tcp://127.0.0.1:70000", "tcp://127.0.0.1:12x", "ipc://",   "inproc://x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        RF_CHECK_MSG(rf_proc_wait_endpoint(NULL, bad[i], 10, &err) == RF_EINVAL, "%s accepted (%s)",
                     bad[i], err.msg);
}

/* s_gone, polled up to 3 s. */
static int s_gone_soon(pid_t pid)
{
    for (int i = 0; i < 300 && !s_gone(pid); i++)
        usleep(10000);
    return s_gone(pid);
}

/* A test binary (here a forked copy) that starts a child and then exits without
 * destroying it (a failed check longjmps past destroy) or is killed: the child must not
 * outlive it. Returns the orphan's pid. */
static pid_t s_orphan(int killed)
{
    int pfd[2];
    RF_CHECK(pipe(pfd) == 0);
    fflush(NULL);
    pid_t tester = fork();
    RF_CHECK(tester >= 0);
    if (tester == 0) {
        close(pfd[0]);
        const char *argv[] = {"sleep", "60", NULL};
        rf_error err = {0};
        rf_proc *p = rf_proc_start(argv, NULL, &err);
        pid_t pid = p ? rf_proc_pid(p) : -1;
        ssize_t w = write(pfd[1], &pid, sizeof(pid));
        (void)w;
        if (killed)
            pause();
        setenv("RF_TEST_KEEP", "1", 1); /* the tmpdir is the parent's */
        exit(0);                        /* runs the atexit handlers, as a test binary does */
    }
    close(pfd[1]);
    pid_t pid = -1;
    ssize_t r = read(pfd[0], &pid, sizeof(pid));
    close(pfd[0]);
    if (killed)
        kill(tester, SIGKILL);
    waitpid(tester, NULL, 0);
    RF_CHECK(r == (ssize_t)sizeof(pid) && pid > 0);
    return pid;
}

RF_TEST(a_child_left_running_dies_when_the_test_binary_exits)
{
    pid_t pid = s_orphan(0);
    RF_CHECK_MSG(s_gone_soon(pid), "pid %d outlived the test binary that started it", (int)pid);
}

RF_TEST(a_child_dies_with_a_killed_test_binary)
{
    pid_t pid = s_orphan(1);
    RF_CHECK_MSG(s_gone_soon(pid), "pid %d outlived the killed test binary", (int)pid);
}
