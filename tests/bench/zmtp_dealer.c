/* zmtp_dealer.c - ZMTP 3.0 (NULL mechanism) DEALER peer on a plain stream socket.
 *
 * Wire facts (ZeroMQ RFC 23): a 64-byte greeting (0xFF, 8 padding bytes, 0x7F, version
 * 3.0, mechanism "NULL" zero-padded to 20 bytes, as-server 0, 31 zero bytes), then
 * frames: a flags byte (0x01 more frames follow, 0x02 8-byte length, 0x04 command), the
 * length (1 byte, or 8 in network order) and the body. The NULL handshake is one READY
 * command each way; its body is the name length (5), "READY", then properties (name
 * length byte, name, 4-byte big-endian value length, value). Received bytes stay in one
 * buffer per connection and whole messages are handed out as pointers into it; it never
 * allocates per message and never blocks on a read after the handshake.
 */
#include "zmtp_dealer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define ZMTP_MORE    0x01
#define ZMTP_LONG    0x02
#define ZMTP_COMMAND 0x04
#define BUF_START    (64 * 1024)
#define MAX_IOV      64

struct rf_zmtp {
    int fd;
    uint8_t *buf;
    size_t cap, head, tail; /* unread bytes: buf[head..tail) */
};

static int64_t s_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Blocking I/O of exactly n bytes before a deadline (the handshake only). */
static int s_io_all(int fd, void *p, size_t n, int writing, int64_t deadline)
{
    uint8_t *b = p;
    while (n) {
        struct pollfd pf = {fd, writing ? POLLOUT : POLLIN, 0};
        int64_t left = deadline - s_ms();
        if (left <= 0 || poll(&pf, 1, (int)left) <= 0)
            return -1;
        ssize_t r =
            writing ? send(fd, b, n, MSG_NOSIGNAL | MSG_DONTWAIT) : recv(fd, b, n, MSG_DONTWAIT);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r <= 0)
            return -1;
        b += r;
        n -= (size_t)r;
    }
    return 0;
}

static int s_open(const char *endpoint, char *why, size_t cap)
{
    int fd = -1;
    if (strncmp(endpoint, "ipc://", 6) == 0) {
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        if (strlen(endpoint + 6) >= sizeof(a.sun_path))
            return snprintf(why, cap, "ipc path too long: %s", endpoint), -1;
        strcpy(a.sun_path, endpoint + 6);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
            return fd;
    } else if (strncmp(endpoint, "tcp://", 6) == 0) {
        char host[64];
        const char *colon = strrchr(endpoint + 6, ':');
        size_t hl = colon ? (size_t)(colon - (endpoint + 6)) : 0;
        struct sockaddr_in a = {.sin_family = AF_INET};
        if (!colon || hl == 0 || hl >= sizeof(host))
            return snprintf(why, cap, "not tcp://IPV4:PORT: %s", endpoint), -1;
        memcpy(host, endpoint + 6, hl);
        host[hl] = 0;
        a.sin_port = htons((uint16_t)atoi(colon + 1));
        if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
            return snprintf(why, cap, "not an IPv4 address: %s", host), -1;
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        if (fd >= 0)
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
            return fd;
    } else {
        return snprintf(why, cap, "endpoint must be ipc:// or tcp://: %s", endpoint), -1;
    }
    snprintf(why, cap, "connect %s: %s", endpoint, strerror(errno));
    if (fd >= 0)
        close(fd);
    return -1;
}

/* Reads one frame during the handshake: flags and body (up to cap bytes). */
static int s_read_frame(int fd, uint8_t *flags, uint8_t *body, size_t cap, size_t *len,
                        int64_t deadline)
{
    uint8_t h[9];
    if (s_io_all(fd, h, 2, 0, deadline))
        return -1;
    uint64_t n = h[1];
    if (h[0] & ZMTP_LONG) {
        if (s_io_all(fd, h + 2, 7, 0, deadline))
            return -1;
        n = 0;
        for (int i = 1; i < 9; i++)
            n = n << 8 | h[i];
    }
    if (n > cap)
        return -1;
    *flags = h[0];
    *len = (size_t)n;
    return s_io_all(fd, body, (size_t)n, 0, deadline);
}

rf_zmtp *rf_zmtp_connect(const char *endpoint, int timeout_ms, char *why, size_t why_cap)
{
    int64_t deadline = s_ms() + timeout_ms;
    int fd = s_open(endpoint, why, why_cap);
    while (fd < 0 && s_ms() < deadline) { /* the peer may not have bound yet */
        usleep(10000);
        fd = s_open(endpoint, why, why_cap);
    }
    if (fd < 0)
        return NULL;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    uint8_t greet[64] = {0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0x7F, 3, 0, 'N', 'U', 'L', 'L'};
    uint8_t peer[64];
    /* READY with Socket-Type=DEALER; no Identity: the ROUTER picks the routing id */
    static const char prop[] = "Socket-Type";
    uint8_t ready[2 + 6 + 1 + sizeof(prop) - 1 + 4 + 6], *p = ready;
    *p++ = ZMTP_COMMAND;
    *p++ = (uint8_t)(sizeof(ready) - 2);
    *p++ = 5;
    memcpy(p, "READY", 5), p += 5;
    *p++ = (uint8_t)(sizeof(prop) - 1);
    memcpy(p, prop, sizeof(prop) - 1), p += sizeof(prop) - 1;
    *p++ = 0, *p++ = 0, *p++ = 0, *p++ = 6;
    memcpy(p, "DEALER", 6);
    uint8_t flags = 0, body[512];
    size_t len = 0;
    const char *failed = NULL;
    if (s_io_all(fd, greet, sizeof(greet), 1, deadline) ||
        s_io_all(fd, peer, sizeof(peer), 0, deadline))
        failed = "greeting";
    else if (peer[0] != 0xFF || peer[9] != 0x7F || peer[10] < 3 || memcmp(peer + 12, "NULL", 5))
        failed = "greeting (not ZMTP 3 with the NULL mechanism: is CURVE on?)";
    else if (s_io_all(fd, ready, sizeof(ready), 1, deadline) ||
             s_read_frame(fd, &flags, body, sizeof(body), &len, deadline) ||
             !(flags & ZMTP_COMMAND) || len < 6 || body[0] != 5 || memcmp(body + 1, "READY", 5))
        failed = "READY exchange";
    if (!failed) {
        rf_zmtp *z = calloc(1, sizeof(*z));
        if (z && (z->buf = malloc(BUF_START)) != NULL) {
            z->fd = fd;
            z->cap = BUF_START;
            return z;
        }
        free(z);
        snprintf(why, why_cap, "out of memory");
    } else {
        snprintf(why, why_cap, "ZMTP handshake with %s failed at the %s", endpoint, failed);
    }
    close(fd);
    return NULL;
}

int rf_zmtp_fd(const rf_zmtp *self)
{
    return self->fd;
}

int rf_zmtp_send(rf_zmtp *self, const struct iovec *frames, size_t n)
{
    if (n == 0 || n > MAX_IOV / 2)
        return -1;
    uint8_t heads[MAX_IOV / 2][9];
    struct iovec iov[MAX_IOV];
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t len = frames[i].iov_len;
        uint8_t more = i + 1 < n ? ZMTP_MORE : 0;
        size_t hl = 2;
        if (len > 255) {
            heads[i][0] = more | ZMTP_LONG;
            for (int k = 0; k < 8; k++)
                heads[i][1 + k] = (uint8_t)(len >> (56 - 8 * k));
            hl = 9;
        } else {
            heads[i][0] = more;
            heads[i][1] = (uint8_t)len;
        }
        iov[2 * i] = (struct iovec){heads[i], hl};
        iov[2 * i + 1] = frames[i];
        total += hl + len;
    }
    size_t done = 0, first = 0, cnt = 2 * n;
    while (done < total) { /* a short write (full socket buffer) waits and goes on */
        struct msghdr mh = {.msg_iov = iov + first, .msg_iovlen = cnt - first};
        ssize_t r = sendmsg(self->fd, &mh, MSG_NOSIGNAL);
        if (r < 0 && errno == EAGAIN) {
            struct pollfd pf = {self->fd, POLLOUT, 0};
            poll(&pf, 1, 1000);
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        done += (size_t)r;
        size_t adv = (size_t)r;
        while (first < cnt && adv >= iov[first].iov_len)
            adv -= iov[first++].iov_len;
        if (first < cnt) {
            iov[first].iov_base = (uint8_t *)iov[first].iov_base + adv;
            iov[first].iov_len -= adv;
        }
    }
    return 0;
}

long rf_zmtp_fill(rf_zmtp *self)
{
    if (self->head == self->tail) {
        self->head = self->tail = 0;
    } else if (self->head > self->cap / 2) { /* keep room at the end */
        memmove(self->buf, self->buf + self->head, self->tail - self->head);
        self->tail -= self->head;
        self->head = 0;
    }
    if (self->cap - self->tail < 4096) {
        uint8_t *nb = realloc(self->buf, self->cap * 2);
        if (!nb)
            return -1;
        self->buf = nb;
        self->cap *= 2;
    }
    for (;;) {
        ssize_t r = recv(self->fd, self->buf + self->tail, self->cap - self->tail, MSG_DONTWAIT);
        if (r > 0) {
            self->tail += (size_t)r;
            return (long)r;
        }
        if (r < 0 && errno == EINTR)
            continue;
        return r < 0 && errno == EAGAIN ? 0 : -1;
    }
}

/* The frame at *at: its flags, body and where the next one starts; 0 when incomplete. */
static int s_frame_at(const rf_zmtp *z, size_t at, uint8_t *flags, const uint8_t **body,
                      size_t *len, size_t *next)
{
    size_t avail = z->tail - at;
    if (avail < 2)
        return 0;
    const uint8_t *h = z->buf + at;
    uint64_t n = h[1];
    size_t hl = 2;
    if (h[0] & ZMTP_LONG) {
        if (avail < 9)
            return 0;
        n = 0;
        for (int i = 1; i < 9; i++)
            n = n << 8 | h[i];
        hl = 9;
    }
    if (n > avail - hl)
        return 0;
    *flags = h[0];
    *body = h + hl;
    *len = (size_t)n;
    *next = at + hl + (size_t)n;
    return 1;
}

int rf_zmtp_next(rf_zmtp *self, rf_zmtp_frame *frames, size_t max, size_t *n)
{
    for (;;) {
        size_t at = self->head, next = 0, k = 0;
        uint8_t flags = 0;
        const uint8_t *body = NULL;
        size_t len = 0;
        if (!s_frame_at(self, at, &flags, &body, &len, &next))
            return 0;
        if (flags & ZMTP_COMMAND) { /* PING and the like: not used by reelfarm, skipped */
            self->head = next;
            continue;
        }
        for (;;) {
            if (k < max)
                frames[k++] = (rf_zmtp_frame){body, len};
            if (!(flags & ZMTP_MORE))
                break;
            if (!s_frame_at(self, next, &flags, &body, &len, &next))
                return 0; /* the message is not all here yet */
        }
        self->head = next;
        *n = k;
        return 1;
    }
}

void rf_zmtp_close(rf_zmtp **pself)
{
    if (!pself || !*pself)
        return;
    close((*pself)->fd);
    free((*pself)->buf);
    free(*pself);
    *pself = NULL;
}
