/* proc.c - start, watch, signal and stop child processes for process-level tests.
 *
 * fork + execvpe with the environment built in the parent (the child runs only
 * async-signal-safe calls before exec, since test binaries may have ZeroMQ threads);
 * a close-on-exec pipe reports a failed exec synchronously. Waits poll (waitpid
 * WNOHANG, connect, reading the log) every few milliseconds until a deadline on the
 * monotonic clock. Never leaves a child running: destroy kills the whole group; a
 * failed check skips destroy (it longjmps out of the test), so every live child's group
 * is also killed when the test binary exits, and a child dies with the binary if that
 * is killed (PR_SET_PDEATHSIG).
 */
#include "proc.h"
#include "tests/rf_test.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef RF_SOURCE_DIR
#define RF_SOURCE_DIR "."
#endif

#define S_POLL_MS  10
#define S_TAIL_MAX 600

extern char **environ;

struct rf_proc {
    struct rf_proc *next_live; /* s_live: started, not destroyed */
    pid_t pid;
    int reaped;
    int status; /* exit code, or 128 + signal */
    char name[64];
    char log_path[512];
};

static int s_seq;
static rf_proc *s_live;

/* At exit: the groups of children whose test ended before destroying them. */
static void s_kill_live(void)
{
    for (rf_proc *p = s_live; p; p = p->next_live)
        kill(-p->pid, SIGKILL);
}

static void s_live_add(rf_proc *p)
{
    static int registered;
    if (!registered && atexit(s_kill_live) == 0)
        registered = 1;
    p->next_live = s_live;
    s_live = p;
}

static void s_live_remove(rf_proc *p)
{
    for (rf_proc **q = &s_live; *q; q = &(*q)->next_live)
        if (*q == p) {
            *q = p->next_live;
            return;
        }
}

char *rf_proc_bin(char *buf, size_t cap, const char *name)
{
    const char *b = getenv("RF_BUILD");
    if (b && *b)
        snprintf(buf, cap, "%s/bin/%s", b, name);
    else
        snprintf(buf, cap, "%s/build/bin/%s", RF_SOURCE_DIR, name);
    return buf;
}

static long long s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void s_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Builds environ edited by env ("K=V" sets, "K" removes). Caller frees the array
 * (the strings are borrowed from environ and env). */
static char **s_build_env(const char *const env[])
{
    size_t n = 0, m = 0;
    while (environ[n])
        n++;
    while (env && env[m])
        m++;
    char **out = calloc(n + m + 1, sizeof(char *));
    if (!out)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(environ[i], '=');
        size_t klen = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
        int overridden = 0;
        for (size_t j = 0; j < m && !overridden; j++) {
            const char *e2 = strchr(env[j], '=');
            size_t k2 = e2 ? (size_t)(e2 - env[j]) : strlen(env[j]);
            overridden = k2 == klen && strncmp(env[j], environ[i], klen) == 0;
        }
        if (!overridden)
            out[k++] = environ[i];
    }
    for (size_t j = 0; j < m; j++)
        if (strchr(env[j], '='))
            out[k++] = (char *)env[j];
    out[k] = NULL;
    return out;
}

rf_proc *rf_proc_start(const char *const argv[], const char *const env[], rf_error *err)
{
    if (!argv || !argv[0]) {
        rf_error_set(err, RF_EINVAL, "rf_proc_start: no program given");
        return NULL;
    }
    rf_proc *p = calloc(1, sizeof(*p));
    char **envp = s_build_env(env);
    if (!p || !envp) {
        free(p);
        free(envp);
        rf_error_set(err, RF_ENOMEM, "rf_proc_start: out of memory");
        return NULL;
    }
    const char *base = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    snprintf(p->name, sizeof(p->name), "%s", base);
    snprintf(p->log_path, sizeof(p->log_path), "%s/%s-%d.log", rf_test_tmpdir(), p->name, ++s_seq);
    int logfd = open(p->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int pfd[2] = {-1, -1};
    if (logfd < 0 || nullfd < 0 || pipe2(pfd, O_CLOEXEC) != 0) {
        rf_error_set(err, RF_EIO, "rf_proc_start %s: cannot open %s or a pipe: %s", argv[0],
                     p->log_path, strerror(errno));
        goto fail;
    }
    fflush(NULL);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        rf_error_set(err, RF_EIO, "rf_proc_start %s: fork: %s", argv[0], strerror(errno));
        goto fail;
    }
    if (pid == 0) {
        /* Child: async-signal-safe calls only, until exec. */
        sigset_t all;
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        signal(SIGPIPE, SIG_DFL);
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* dies with the test binary, even a crashed one */
        if (getppid() != parent)
            _exit(127); /* the binary died before the line above */
        dup2(nullfd, 0);
        dup2(logfd, 1);
        dup2(logfd, 2);
        execvpe(argv[0], (char *const *)argv, envp);
        int e = errno;
        ssize_t w = write(pfd[1], &e, sizeof(e));
        (void)w;
        _exit(127);
    }
    setpgid(pid, pid); /* also here: no race with a signal sent right after start */
    close(pfd[1]);
    pfd[1] = -1;
    int child_errno = 0;
    ssize_t r;
    do {
        r = read(pfd[0], &child_errno, sizeof(child_errno));
    } while (r < 0 && errno == EINTR);
    close(pfd[0]);
    pfd[0] = -1;
    close(logfd);
    close(nullfd);
    free(envp);
    p->pid = pid;
    if (r == (ssize_t)sizeof(child_errno)) {
        waitpid(pid, NULL, 0);
        rf_error_set(err, child_errno == ENOENT ? RF_ENOTFOUND : RF_EIO,
                     "rf_proc_start: cannot execute %s: %s%s", argv[0], strerror(child_errno),
                     child_errno == ENOENT ? " (not built? run make)" : "");
        free(p);
        return NULL;
    }
    s_live_add(p);
    return p;
fail:
    if (logfd >= 0)
        close(logfd);
    if (nullfd >= 0)
        close(nullfd);
    if (pfd[0] >= 0)
        close(pfd[0]);
    if (pfd[1] >= 0)
        close(pfd[1]);
    free(envp);
    free(p);
    return NULL;
}

static void s_set_status(rf_proc *p, int st)
{
    p->reaped = 1;
    if (WIFEXITED(st))
        p->status = WEXITSTATUS(st);
    else if (WIFSIGNALED(st))
        p->status = 128 + WTERMSIG(st);
    else
        p->status = 255;
}

int rf_proc_running(rf_proc *self)
{
    if (self->reaped)
        return 0;
    int st = 0;
    pid_t r = waitpid(self->pid, &st, WNOHANG);
    if (r == self->pid) {
        s_set_status(self, st);
        return 0;
    }
    if (r < 0 && errno == ECHILD) { /* someone else reaped it */
        self->reaped = 1;
        self->status = 255;
        return 0;
    }
    return 1;
}

static void s_kill_group(rf_proc *self)
{
    kill(-self->pid, SIGKILL);
    if (!self->reaped) {
        int st = 0;
        pid_t r;
        do {
            r = waitpid(self->pid, &st, 0);
        } while (r < 0 && errno == EINTR);
        if (r == self->pid)
            s_set_status(self, st);
        else
            self->reaped = 1;
    }
}

void rf_proc_destroy(rf_proc **self)
{
    if (!self || !*self)
        return;
    /* Also after the leader exited: anything it left behind in its group goes too. */
    s_kill_group(*self);
    s_live_remove(*self);
    free(*self);
    *self = NULL;
}

pid_t rf_proc_pid(const rf_proc *self)
{
    return self->pid;
}

const char *rf_proc_log_path(const rf_proc *self)
{
    return self->log_path;
}

int rf_proc_signal(rf_proc *self, int sig, rf_error *err)
{
    if (!rf_proc_running(self))
        return rf_error_set(err, RF_ENOTFOUND, "%s (pid %d) already exited with status %d",
                            self->name, (int)self->pid, self->status);
    if (kill(self->pid, sig) != 0)
        return rf_error_set(err, RF_EIO, "kill %s (pid %d): %s", self->name, (int)self->pid,
                            strerror(errno));
    return 0;
}

char *rf_proc_log(const rf_proc *self, size_t *len)
{
    FILE *f = fopen(self->log_path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf)
            break;
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        if (r == 0)
            break;
        n += r;
    }
    fclose(f);
    if (!buf)
        return NULL;
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

int rf_proc_log_contains(const rf_proc *self, const char *needle)
{
    char *log = rf_proc_log(self, NULL);
    int found = log && strstr(log, needle) != NULL;
    free(log);
    return found;
}

/* Writes the last S_TAIL_MAX bytes of the log into tail (cap bytes). */
static const char *s_tail(const rf_proc *self, char *tail, size_t cap)
{
    size_t len = 0;
    char *log = self ? rf_proc_log(self, &len) : NULL;
    if (!log) {
        snprintf(tail, cap, "(no log)");
        return tail;
    }
    size_t from = len > S_TAIL_MAX ? len - S_TAIL_MAX : 0;
    snprintf(tail, cap, "%s%s", from ? "..." : "", log + from);
    free(log);
    return tail;
}

int rf_proc_wait(rf_proc *self, int timeout_ms, int *status, rf_error *err)
{
    long long deadline = s_now_ms() + timeout_ms;
    for (;;) {
        if (!rf_proc_running(self)) {
            if (status)
                *status = self->status;
            return 0;
        }
        if (s_now_ms() >= deadline)
            break;
        s_sleep_ms(S_POLL_MS);
    }
    s_kill_group(self);
    if (status)
        *status = 128 + SIGKILL;
    char tail[S_TAIL_MAX + 8];
    return rf_error_set(
        err, RF_EAGAIN, "%s (pid %d) did not exit within %d ms; killed -9. log %s ends: %s",
        self->name, (int)self->pid, timeout_ms, self->log_path, s_tail(self, tail, sizeof(tail)));
}

static int s_exited_error(rf_proc *self, const char *waiting_for, rf_error *err)
{
    char tail[S_TAIL_MAX + 8];
    return rf_error_set(err, RF_EIO,
                        "%s (pid %d) exited with status %d while waiting for %s. log %s ends: %s",
                        self->name, (int)self->pid, self->status, waiting_for, self->log_path,
                        s_tail(self, tail, sizeof(tail)));
}

int rf_proc_wait_log(rf_proc *self, const char *needle, int timeout_ms, rf_error *err)
{
    long long deadline = s_now_ms() + timeout_ms;
    for (;;) {
        int running = rf_proc_running(self); /* before reading: a last line is not missed */
        if (rf_proc_log_contains(self, needle))
            return 0;
        if (!running)
            return s_exited_error(self, needle, err);
        if (s_now_ms() >= deadline)
            break;
        s_sleep_ms(S_POLL_MS);
    }
    char tail[S_TAIL_MAX + 8];
    return rf_error_set(
        err, RF_EAGAIN, "%s (pid %d) did not log \"%s\" within %d ms. log %s ends: %s", self->name,
        (int)self->pid, needle, timeout_ms, self->log_path, s_tail(self, tail, sizeof(tail)));
}

/* Parsed endpoint: a resolved address to connect to. */
typedef struct s_addr {
    struct sockaddr_storage sa;
    socklen_t len;
    int family;
} s_addr;

static int s_parse_endpoint(const char *ep, s_addr *out, rf_error *err)
{
    memset(out, 0, sizeof(*out));
    if (strncmp(ep, "ipc://", 6) == 0) {
        struct sockaddr_un *un = (struct sockaddr_un *)&out->sa;
        const char *path = ep + 6;
        if (!*path || strlen(path) >= sizeof(un->sun_path))
            return rf_error_set(err, RF_EINVAL,
                                "endpoint %s: the ipc path is empty or longer than %zu bytes", ep,
                                sizeof(un->sun_path) - 1);
        un->sun_family = AF_UNIX;
        memcpy(un->sun_path, path, strlen(path) + 1);
        out->len = sizeof(*un);
        out->family = AF_UNIX;
        return 0;
    }
    if (strncmp(ep, "tcp://", 6) != 0)
        return rf_error_set(err, RF_EINVAL, "endpoint %s: expected tcp://HOST:PORT or ipc://PATH",
                            ep);
    char host[256];
    const char *hp = ep + 6;
    const char *colon = strrchr(hp, ':');
    if (!colon || colon == hp || !colon[1])
        return rf_error_set(err, RF_EINVAL, "endpoint %s: expected tcp://HOST:PORT", ep);
    size_t hlen = (size_t)(colon - hp);
    if (hlen >= sizeof(host))
        return rf_error_set(err, RF_EINVAL, "endpoint %s: host too long", ep);
    memcpy(host, hp, hlen);
    host[hlen] = '\0';
    if (host[0] == '[' && hlen >= 2 && host[hlen - 1] == ']') {
        memmove(host, host + 1, hlen - 2);
        host[hlen - 2] = '\0';
    }
    if (strcmp(host, "*") == 0)
        snprintf(host, sizeof(host), "127.0.0.1");
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 1 || port > 65535)
        return rf_error_set(err, RF_EINVAL, "endpoint %s: port must be 1..65535", ep);
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, colon + 1, &hints, &res);
    if (rc != 0 || !res)
        return rf_error_set(err, RF_EINVAL, "endpoint %s: cannot resolve %s: %s", ep, host,
                            gai_strerror(rc));
    memcpy(&out->sa, res->ai_addr, res->ai_addrlen);
    out->len = res->ai_addrlen;
    out->family = res->ai_family;
    freeaddrinfo(res);
    return 0;
}

static int s_try_connect(const s_addr *a)
{
    int fd = socket(a->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    int ok = connect(fd, (const struct sockaddr *)&a->sa, a->len) == 0;
    close(fd);
    return ok;
}

int rf_proc_wait_endpoint(rf_proc *proc, const char *endpoint, int timeout_ms, rf_error *err)
{
    s_addr a;
    int rc = s_parse_endpoint(endpoint, &a, err);
    if (rc)
        return rc;
    long long deadline = s_now_ms() + timeout_ms;
    for (;;) {
        if (s_try_connect(&a))
            return 0;
        if (proc && !rf_proc_running(proc))
            return s_exited_error(proc, endpoint, err);
        if (s_now_ms() >= deadline)
            break;
        s_sleep_ms(S_POLL_MS);
    }
    char tail[S_TAIL_MAX + 8];
    return rf_error_set(err, RF_EAGAIN, "nothing accepted on %s within %d ms%s%s", endpoint,
                        timeout_ms, proc ? "; log ends: " : "",
                        proc ? s_tail(proc, tail, sizeof(tail)) : "");
}

int rf_proc_free_port(int *port, rf_error *err)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return rf_error_set(err, RF_EIO, "free port: socket: %s", strerror(errno));
    struct sockaddr_in sin = {0};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sin);
    if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &len) != 0) {
        int e = errno;
        close(fd);
        return rf_error_set(err, RF_EIO, "free port: bind 127.0.0.1:0: %s", strerror(e));
    }
    close(fd);
    *port = ntohs(sin.sin_port);
    return 0;
}
