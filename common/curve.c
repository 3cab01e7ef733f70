/* curve.c - CurveZMQ key files, socket options, the ZAP handler thread and the monitor.
 *
 * Key files are tiny line-oriented text; every parser error names file:line. The ZAP
 * handler (RFC 27) is a REP socket on its own thread; the allowed-keys lists are sorted
 * arrays swapped whole under a mutex, so a reload is atomic and never touches
 * established connections. Repeated rejections of one key are logged once per
 * S_REJECT_LOG_MS, with the count in between. Never logs or prints a secret key.
 */
#include "curve.h"

#include "atomic_file.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define S_KEYFILE_MAX     (64 * 1024)
#define S_ALLOWFILE_MAX   (16 * 1024 * 1024)
#define S_MAX_DOMAINS     8
#define S_ZAP_ENDPOINT    "inproc://zeromq.zap.01"
#define S_REJECT_LOG_MS   10000
#define S_REJECT_SLOTS    16
#define S_ZAP_MAX_FRAMES  16
#define S_ZAP_FRAME_BYTES 512

static const char s_z85_chars[] =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

int rf_curve_available(void)
{
    return zmq_has("curve") ? 1 : 0;
}

int rf_curve_key_valid(const char *s)
{
    if (!s || strlen(s) != RF_CURVE_Z85_LEN)
        return 0;
    for (size_t i = 0; i < RF_CURVE_Z85_LEN; i++)
        if (!strchr(s_z85_chars, s[i]) || s[i] == '\0')
            return 0;
    uint8_t raw[32];
    return zmq_z85_decode(raw, s) ? 1 : 0;
}

int rf_curve_keypair_generate(rf_curve_keypair *out, rf_error *err)
{
    memset(out, 0, sizeof(*out));
    if (!rf_curve_available())
        return rf_error_set(err, RF_EUNSUPPORTED,
                            "this libzmq has no CURVE support (built without libsodium); "
                            "install a libzmq with CURVE (Debian's libzmq5 has it)");
    if (zmq_curve_keypair(out->public_z85, out->secret_z85) != 0)
        return rf_error_set(err, RF_EIO, "cannot generate a CURVE key pair: %s",
                            zmq_strerror(zmq_errno()));
    return 0;
}

/* ---- files ------------------------------------------------------------------------ */

/* Reads the whole file (at most max bytes) into a NUL-terminated buffer; caller frees.
 * *st gets its stat. */
static char *s_read_file(const char *what, const char *path, size_t max, struct stat *st,
                         rf_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        rf_error_set(err, e == ENOENT ? RF_ENOTFOUND : RF_EIO, "%s %s: cannot open: %s", what, path,
                     strerror(e));
        return NULL;
    }
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
        close(fd);
        rf_error_set(err, RF_EINVAL, "%s %s: not a regular file", what, path);
        return NULL;
    }
    if ((size_t)st->st_size > max) {
        close(fd);
        rf_error_set(err, RF_EINVAL, "%s %s: larger than %zu bytes; is it the right file?", what,
                     path, max);
        return NULL;
    }
    size_t n = (size_t)st->st_size;
    char *buf = malloc(n + 1);
    if (!buf) {
        close(fd);
        rf_error_set(err, RF_ENOMEM, "%s %s: out of memory", what, path);
        return NULL;
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (got != n) {
        free(buf);
        rf_error_set(err, RF_EIO, "%s %s: short read", what, path);
        return NULL;
    }
    buf[n] = '\0';
    if (memchr(buf, '\0', n)) {
        free(buf);
        rf_error_set(err, RF_EINVAL, "%s %s: binary data (a NUL byte); expected z85 text", what,
                     path);
        return NULL;
    }
    return buf;
}

/* Splits off the next line (modifies buf); NULL at the end. Strips blanks and \r at both
 * ends. Comments are the caller's business: '#' is a z85 character, so it cannot be cut
 * anywhere in a line. */
static char *s_next_line(char **cursor)
{
    char *s = *cursor;
    if (!s || !*s)
        return NULL;
    char *nl = strchr(s, '\n');
    if (nl) {
        *nl = '\0';
        *cursor = nl + 1;
    } else {
        *cursor = s + strlen(s);
    }
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

/* Copies the next whitespace-delimited word of *s into out (cap bytes); returns its
 * length (0 at the end; cap or more when too long). */
static size_t s_word(const char **s, char *out, size_t cap)
{
    const char *p = *s;
    while (*p == ' ' || *p == '\t')
        p++;
    size_t n = 0;
    while (p[n] && p[n] != ' ' && p[n] != '\t')
        n++;
    if (n < cap) {
        memcpy(out, p, n);
        out[n] = '\0';
    }
    *s = p + n;
    return n;
}

/* Parses the key files' "public-key: Z85" / "secret-key: Z85" lines. */
static int s_parse_keyfile(const char *path, char *text, rf_curve_keypair *kp, rf_error *err)
{
    memset(kp, 0, sizeof(*kp));
    char *cur = text;
    char *line;
    int lineno = 0;
    while ((line = s_next_line(&cur))) {
        lineno++;
        if (!*line || *line == '#')
            continue;
        char *dst = NULL;
        const char *name = NULL;
        if (strncmp(line, "public-key:", 11) == 0) {
            dst = kp->public_z85;
            name = "public-key";
            line += 11;
        } else if (strncmp(line, "secret-key:", 11) == 0) {
            dst = kp->secret_z85;
            name = "secret-key";
            line += 11;
        } else {
            return rf_error_set(err, RF_EINVAL,
                                "%s:%d: expected 'public-key: Z85' or 'secret-key: Z85'; is "
                                "this a key file made by reelctl keygen?",
                                path, lineno);
        }
        char key[64];
        const char *p = line;
        size_t n = s_word(&p, key, sizeof(key));
        while (*p == ' ' || *p == '\t')
            p++;
        if (n >= sizeof(key) || *p || !rf_curve_key_valid(key))
            return rf_error_set(err, RF_EINVAL, "%s:%d: %s must be %d z85 characters", path, lineno,
                                name, RF_CURVE_Z85_LEN);
        if (*dst)
            return rf_error_set(err, RF_EINVAL, "%s:%d: %s given twice", path, lineno, name);
        memcpy(dst, key, RF_CURVE_Z85_LEN + 1);
    }
    return 0;
}

int rf_curve_keypair_load(const char *secret_path, rf_curve_keypair *out, rf_error *err)
{
    memset(out, 0, sizeof(*out));
    struct stat st;
    char *text = s_read_file("secret key file", secret_path, S_KEYFILE_MAX, &st, err);
    if (!text)
        return err ? err->code : RF_EIO;
    if (st.st_mode & 077) {
        free(text);
        return rf_error_set(err, RF_EINVAL,
                            "secret key file %s: readable by group or others (mode %03o); run "
                            "chmod 600 %s",
                            secret_path, (unsigned)(st.st_mode & 0777), secret_path);
    }
    rf_curve_keypair kp;
    int rc = s_parse_keyfile(secret_path, text, &kp, err);
    free(text);
    if (rc)
        return rc;
    if (!kp.secret_z85[0])
        return rf_error_set(err, RF_EINVAL,
                            "secret key file %s: no secret-key line (a public key file? use "
                            "the .key_secret file)",
                            secret_path);
    char derived[RF_CURVE_Z85_LEN + 1];
    if (zmq_curve_public(derived, kp.secret_z85) != 0)
        return rf_error_set(err, RF_EUNSUPPORTED, "secret key file %s: this libzmq has no CURVE",
                            secret_path);
    if (kp.public_z85[0] && strcmp(derived, kp.public_z85) != 0)
        return rf_error_set(err, RF_EINVAL,
                            "secret key file %s: the public-key line does not belong to the "
                            "secret key (edited by hand?); make a new pair with reelctl keygen",
                            secret_path);
    memcpy(kp.public_z85, derived, sizeof(derived));
    *out = kp;
    return 0;
}

int rf_curve_public_load(const char *path, char *out, rf_error *err)
{
    out[0] = '\0';
    struct stat st;
    char *text = s_read_file("public key file", path, S_KEYFILE_MAX, &st, err);
    if (!text)
        return err ? err->code : RF_EIO;
    rf_curve_keypair kp;
    int rc = s_parse_keyfile(path, text, &kp, err);
    free(text);
    if (rc)
        return rc;
    if (!kp.public_z85[0] && kp.secret_z85[0]) {
        if (zmq_curve_public(kp.public_z85, kp.secret_z85) != 0)
            return rf_error_set(err, RF_EUNSUPPORTED, "%s: this libzmq has no CURVE", path);
    }
    if (!kp.public_z85[0])
        return rf_error_set(err, RF_EINVAL, "public key file %s: no public-key line", path);
    memcpy(out, kp.public_z85, RF_CURVE_Z85_LEN + 1);
    return 0;
}

static int s_write_new(const char *path, int mode, const char *text, rf_error *err)
{
    struct stat st;
    if (lstat(path, &st) == 0)
        return rf_error_set(err, RF_EINVAL,
                            "%s exists; refusing to overwrite a key (remove it first if it is "
                            "really unused)",
                            path);
    rf_atomic_file *f = rf_atomic_file_begin_mode(path, mode, err);
    if (!f)
        return err ? err->code : RF_EIO;
    int rc = rf_atomic_file_write(f, text, strlen(text), err);
    if (rc) {
        rf_atomic_file_abort(&f);
        return rc;
    }
    return rf_atomic_file_commit(&f, err);
}

int rf_curve_keygen_files(const char *base, rf_curve_keypair *out, rf_error *err)
{
    char pub[PATH_MAX], sec[PATH_MAX];
    if (!base || !*base || snprintf(pub, sizeof(pub), "%s.key", base) >= (int)sizeof(pub) ||
        snprintf(sec, sizeof(sec), "%s.key_secret", base) >= (int)sizeof(sec))
        return rf_error_set(err, RF_EINVAL, "keygen: the base path must be 1 to %d bytes",
                            PATH_MAX - 16);
    struct stat st;
    if (lstat(pub, &st) == 0 || lstat(sec, &st) == 0)
        return rf_error_set(err, RF_EINVAL,
                            "%s exists; refusing to overwrite a key (remove it first if it is "
                            "really unused)",
                            lstat(pub, &st) == 0 ? pub : sec);
    rf_curve_keypair kp;
    int rc = rf_curve_keypair_generate(&kp, err);
    if (rc)
        return rc;
    char text[512];
    snprintf(text, sizeof(text),
             "# reelfarm CURVE secret key: keep it private (mode 0600). Made by reelctl keygen.\n"
             "public-key: %s\nsecret-key: %s\n",
             kp.public_z85, kp.secret_z85);
    rc = s_write_new(sec, 0600, text, err);
    if (rc == 0) {
        snprintf(text, sizeof(text),
                 "# reelfarm CURVE public key. Add this line to the coordinator's allowed keys\n"
                 "# file (allowed-worker-keys or allowed-client-keys), or give it to workers and\n"
                 "# clients as the server key.\npublic-key: %s\n",
                 kp.public_z85);
        rc = s_write_new(pub, 0644, text, err);
        if (rc)
            unlink(sec);
    }
    memset(text, 0, sizeof(text));
    if (rc)
        return rc;
    if (out)
        *out = kp;
    memset(&kp, 0, sizeof(kp));
    return 0;
}

/* ---- socket options --------------------------------------------------------------- */

static int s_setopt(void *sock, int opt, const void *val, size_t len, const char *name,
                    rf_error *err)
{
    if (zmq_setsockopt(sock, opt, val, len) != 0)
        return rf_error_set(err, RF_EIO, "cannot set %s on the socket: %s", name,
                            zmq_strerror(zmq_errno()));
    return 0;
}

int rf_curve_server_apply(void *sock, const rf_curve_keypair *kp, const char *domain, rf_error *err)
{
    if (!rf_curve_available())
        return rf_error_set(err, RF_EUNSUPPORTED, "this libzmq has no CURVE support");
    if (!rf_curve_key_valid(kp->secret_z85))
        return rf_error_set(err, RF_EINVAL, "CURVE server: no valid secret key loaded");
    int one = 1;
    int rc = s_setopt(sock, ZMQ_CURVE_SERVER, &one, sizeof(one), "ZMQ_CURVE_SERVER", err);
    if (!rc)
        rc = s_setopt(sock, ZMQ_CURVE_SECRETKEY, kp->secret_z85, RF_CURVE_Z85_LEN,
                      "ZMQ_CURVE_SECRETKEY", err);
    if (!rc && domain)
        rc = s_setopt(sock, ZMQ_ZAP_DOMAIN, domain, strlen(domain), "ZMQ_ZAP_DOMAIN", err);
    return rc;
}

int rf_curve_client_apply(void *sock, const rf_curve_keypair *kp, const char *server_public,
                          rf_error *err)
{
    if (!rf_curve_available())
        return rf_error_set(err, RF_EUNSUPPORTED, "this libzmq has no CURVE support");
    if (!rf_curve_key_valid(kp->public_z85) || !rf_curve_key_valid(kp->secret_z85))
        return rf_error_set(err, RF_EINVAL, "CURVE client: no valid key pair loaded");
    if (!rf_curve_key_valid(server_public))
        return rf_error_set(err, RF_EINVAL,
                            "CURVE client: the server public key must be %d z85 characters",
                            RF_CURVE_Z85_LEN);
    int rc = s_setopt(sock, ZMQ_CURVE_SERVERKEY, server_public, RF_CURVE_Z85_LEN,
                      "ZMQ_CURVE_SERVERKEY", err);
    if (!rc)
        rc = s_setopt(sock, ZMQ_CURVE_PUBLICKEY, kp->public_z85, RF_CURVE_Z85_LEN,
                      "ZMQ_CURVE_PUBLICKEY", err);
    if (!rc)
        rc = s_setopt(sock, ZMQ_CURVE_SECRETKEY, kp->secret_z85, RF_CURVE_Z85_LEN,
                      "ZMQ_CURVE_SECRETKEY", err);
    return rc;
}

int rf_curve_client_setup(void *zctx, void *sock, const char *secret_path,
                          const char *server_key_path, const char *role, const char *endpoint,
                          rf_curve_monitor **mon, rf_error *err)
{
    *mon = NULL;
    if (!secret_path && !server_key_path)
        return 0;
    if (!secret_path || !server_key_path)
        return rf_error_set(err, RF_EINVAL,
                            "CURVE needs both this %s's key (--key BASE.key_secret) and the "
                            "coordinator's public key (--server-key BASE.key); %s is missing",
                            role ? role : "client", secret_path ? "--server-key" : "--key");
    rf_curve_keypair kp;
    char server[RF_CURVE_Z85_LEN + 1];
    int rc = rf_curve_keypair_load(secret_path, &kp, err);
    if (!rc)
        rc = rf_curve_public_load(server_key_path, server, err);
    if (!rc)
        rc = rf_curve_client_apply(sock, &kp, server, err);
    memset(&kp, 0, sizeof(kp));
    if (rc)
        return rc;
    *mon = rf_curve_monitor_new(zctx, sock, role, endpoint, err);
    return *mon ? 0 : (err ? err->code : RF_EIO);
}

/* ---- allowed-keys lists ------------------------------------------------------------ */

typedef struct s_keylist {
    char (*keys)[RF_CURVE_Z85_LEN + 1]; /* sorted */
    size_t n;
} s_keylist;

static int s_cmp_key(const void *a, const void *b)
{
    return memcmp(a, b, RF_CURVE_Z85_LEN);
}

static void s_keylist_free(s_keylist *l)
{
    free(l->keys);
    l->keys = NULL;
    l->n = 0;
}

static int s_load_allowed(const char *path, s_keylist *out, rf_error *err)
{
    memset(out, 0, sizeof(*out));
    struct stat st;
    char *text = s_read_file("allowed keys file", path, S_ALLOWFILE_MAX, &st, err);
    if (!text)
        return err ? err->code : RF_EIO;
    size_t cap = 0;
    char *cur = text, *line;
    int lineno = 0, rc = 0;
    while ((line = s_next_line(&cur))) {
        lineno++;
        if (!*line)
            continue;
        const char *p = line;
        if (*p == '#') { /* a comment, unless the line starts with a key ('#' is z85) */
            char first[64];
            const char *q = p;
            size_t n = s_word(&q, first, sizeof(first));
            if (n >= sizeof(first) || !rf_curve_key_valid(first))
                continue;
        }
        if (strncmp(p, "public-key:", 11) == 0)
            p += 11;
        else if (strncmp(p, "secret-key:", 11) == 0) {
            rc = rf_error_set(err, RF_EINVAL,
                              "%s:%d: a secret key in an allowed keys file; list only public "
                              "keys (the .key file), and make a new pair since this one leaked",
                              path, lineno);
            break;
        }
        char key[64];
        size_t n = s_word(&p, key, sizeof(key));
        if (n >= sizeof(key) || !rf_curve_key_valid(key)) {
            rc = rf_error_set(err, RF_EINVAL,
                              "%s:%d: expected a public key (%d z85 characters) optionally "
                              "followed by a name, got '%.60s'",
                              path, lineno, RF_CURVE_Z85_LEN, line);
            break;
        }
        if (out->n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            void *k = realloc(out->keys, ncap * sizeof(*out->keys));
            if (!k) {
                rc = rf_error_set(err, RF_ENOMEM, "%s: out of memory", path);
                break;
            }
            out->keys = k;
            cap = ncap;
        }
        memcpy(out->keys[out->n++], key, RF_CURVE_Z85_LEN + 1);
    }
    free(text);
    if (rc) {
        s_keylist_free(out);
        return rc;
    }
    if (out->n)
        qsort(out->keys, out->n, sizeof(*out->keys), s_cmp_key);
    return 0;
}

/* ---- the ZAP handler --------------------------------------------------------------- */

typedef struct s_domain {
    char name[64];
    char path[PATH_MAX];
    s_keylist keys;
} s_domain;

typedef struct s_reject_slot {
    char key[RF_CURVE_Z85_LEN + 1];
    long long last_ms;
    unsigned long suppressed;
} s_reject_slot;

struct rf_zap {
    void *sock;
    pthread_t thread;
    int started;
    atomic_int stop;
    pthread_mutex_t mu;
    s_domain domains[S_MAX_DOMAINS];
    int ndomains;
    uint64_t accepted, rejected;
    s_reject_slot rejects[S_REJECT_SLOTS]; /* thread only */
};

static long long s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void s_log_reject(rf_zap *self, const char *domain, const char *address,
                         const char *mechanism, const char *key, const char *why)
{
    long long now = s_now_ms();
    s_reject_slot *slot = NULL, *oldest = &self->rejects[0];
    for (int i = 0; i < S_REJECT_SLOTS; i++) {
        if (strcmp(self->rejects[i].key, key) == 0) {
            slot = &self->rejects[i];
            break;
        }
        if (self->rejects[i].last_ms < oldest->last_ms)
            oldest = &self->rejects[i];
    }
    if (slot && now - slot->last_ms < S_REJECT_LOG_MS) {
        slot->suppressed++;
        return;
    }
    unsigned long repeats = slot ? slot->suppressed : 0;
    if (!slot) {
        slot = oldest;
        snprintf(slot->key, sizeof(slot->key), "%s", key);
    }
    slot->last_ms = now;
    slot->suppressed = 0;
    rf_log_kv(RF_LOG_WARN, "zap", "connection rejected",
              "domain=%s address=%s mechanism=%s key=%s reason=\"%s\" repeats=%lu", domain, address,
              mechanism, key[0] ? key : "-", why, repeats);
}

/* Decides one request. frames: version, request id, domain, address, identity,
 * mechanism, credentials... Returns the status code and fills text/user. */
static int s_decide(rf_zap *self, char frames[][S_ZAP_FRAME_BYTES], size_t *lens, int n,
                    const char **text, char *user, size_t user_cap)
{
    char domain[S_ZAP_FRAME_BYTES], address[S_ZAP_FRAME_BYTES], mech[S_ZAP_FRAME_BYTES];
    snprintf(domain, sizeof(domain), "%.*s", (int)lens[2], frames[2]);
    snprintf(address, sizeof(address), "%.*s", (int)lens[3], frames[3]);
    snprintf(mech, sizeof(mech), "%.*s", (int)lens[5], frames[5]);
    char key[RF_CURVE_Z85_LEN + 1] = "";
    if (strcmp(mech, "CURVE") == 0 && n == 7 && lens[6] == 32)
        zmq_z85_encode(key, (const uint8_t *)frames[6], 32);
    user[0] = '\0';
    if (!key[0]) {
        *text = "CURVE required";
        s_log_reject(self, domain, address, mech, "", "only CURVE clients are accepted");
        return 400;
    }
    pthread_mutex_lock(&self->mu);
    const s_domain *d = NULL;
    for (int i = 0; i < self->ndomains; i++)
        if (strcmp(self->domains[i].name, domain) == 0)
            d = &self->domains[i];
    int found =
        d && d->keys.n && bsearch(key, d->keys.keys, d->keys.n, sizeof(*d->keys.keys), s_cmp_key);
    int known_domain = d != NULL;
    pthread_mutex_unlock(&self->mu);
    if (!found) {
        *text = "key not allowed";
        s_log_reject(self, domain, address, mech, key,
                     known_domain ? "public key not in the allowed keys file"
                                  : "no allowed keys file for this domain");
        return 400;
    }
    *text = "OK";
    snprintf(user, user_cap, "%s", key);
    rf_log_kv(RF_LOG_DEBUG, "zap", "connection accepted", "domain=%s address=%s key=%s", domain,
              address, key);
    return 200;
}

static void s_serve_one(rf_zap *self)
{
    char frames[S_ZAP_MAX_FRAMES][S_ZAP_FRAME_BYTES];
    size_t lens[S_ZAP_MAX_FRAMES] = {0};
    int n = 0, more = 1, bad = 0;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, self->sock, 0) < 0) {
            zmq_msg_close(&m);
            return;
        }
        more = zmq_msg_more(&m);
        size_t len = zmq_msg_size(&m);
        if (n < S_ZAP_MAX_FRAMES && len <= S_ZAP_FRAME_BYTES) {
            memcpy(frames[n], zmq_msg_data(&m), len);
            lens[n] = len;
        } else {
            bad = 1;
        }
        n++;
        zmq_msg_close(&m);
    }
    const char *text = "malformed ZAP request";
    char user[RF_CURVE_Z85_LEN + 1] = "";
    int status = 500;
    if (!bad && n >= 6 && lens[0] == 3 && memcmp(frames[0], "1.0", 3) == 0) {
        status = s_decide(self, frames, lens, n, &text, user, sizeof(user));
        pthread_mutex_lock(&self->mu);
        if (status == 200)
            self->accepted++;
        else
            self->rejected++;
        pthread_mutex_unlock(&self->mu);
    }
    char code[8];
    snprintf(code, sizeof(code), "%d", status);
    const void *rid = n >= 2 && !bad ? frames[1] : "";
    size_t rid_len = n >= 2 && !bad ? lens[1] : 0;
    zmq_send(self->sock, "1.0", 3, ZMQ_SNDMORE);
    zmq_send(self->sock, rid, rid_len, ZMQ_SNDMORE);
    zmq_send(self->sock, code, strlen(code), ZMQ_SNDMORE);
    zmq_send(self->sock, text, strlen(text), ZMQ_SNDMORE);
    zmq_send(self->sock, user, strlen(user), ZMQ_SNDMORE);
    zmq_send(self->sock, "", 0, 0);
}

static void *s_zap_thread(void *arg)
{
    rf_zap *self = arg;
    while (!atomic_load(&self->stop)) {
        zmq_pollitem_t it = {self->sock, 0, ZMQ_POLLIN, 0};
        int rc = zmq_poll(&it, 1, 100);
        if (rc < 0) {
            if (zmq_errno() == ETERM)
                break;
            continue;
        }
        if (rc > 0 && (it.revents & ZMQ_POLLIN))
            s_serve_one(self);
    }
    return NULL;
}

rf_zap *rf_zap_new(void *zctx, rf_error *err)
{
    rf_zap *self = calloc(1, sizeof(*self));
    if (!self)
        return rf_error_set(err, RF_ENOMEM, "ZAP handler: out of memory"), NULL;
    pthread_mutex_init(&self->mu, NULL);
    self->sock = zmq_socket(zctx, ZMQ_REP);
    if (!self->sock) {
        rf_error_set(err, RF_EIO, "ZAP handler: cannot create a socket: %s",
                     zmq_strerror(zmq_errno()));
        rf_zap_destroy(&self);
        return NULL;
    }
    int zero = 0;
    zmq_setsockopt(self->sock, ZMQ_LINGER, &zero, sizeof(zero));
    if (zmq_bind(self->sock, S_ZAP_ENDPOINT) != 0) {
        rf_error_set(err, RF_EIO,
                     "ZAP handler: cannot bind %s: %s (only one handler per ZeroMQ context)",
                     S_ZAP_ENDPOINT, zmq_strerror(zmq_errno()));
        rf_zap_destroy(&self);
        return NULL;
    }
    /* The socket is handed to the thread here and used only there from now on. */
    if (pthread_create(&self->thread, NULL, s_zap_thread, self) != 0) {
        rf_error_set(err, RF_EIO, "ZAP handler: cannot start its thread");
        rf_zap_destroy(&self);
        return NULL;
    }
    self->started = 1;
    return self;
}

int rf_zap_allow_file(rf_zap *self, const char *domain, const char *path, rf_error *err)
{
    if (!domain || !*domain || strlen(domain) >= sizeof(self->domains[0].name))
        return rf_error_set(err, RF_EINVAL, "ZAP: a domain must be 1 to 63 characters");
    if (strlen(path) >= PATH_MAX)
        return rf_error_set(err, RF_EINVAL, "ZAP: allowed keys path too long");
    s_keylist l;
    int rc = s_load_allowed(path, &l, err);
    if (rc)
        return rc;
    pthread_mutex_lock(&self->mu);
    s_domain *d = NULL;
    for (int i = 0; i < self->ndomains; i++)
        if (strcmp(self->domains[i].name, domain) == 0)
            d = &self->domains[i];
    if (!d && self->ndomains < S_MAX_DOMAINS) {
        d = &self->domains[self->ndomains++];
        snprintf(d->name, sizeof(d->name), "%s", domain);
    }
    if (d) {
        s_keylist old = d->keys;
        d->keys = l;
        snprintf(d->path, sizeof(d->path), "%s", path);
        l = old;
    }
    size_t nkeys = d ? d->keys.n : 0;
    pthread_mutex_unlock(&self->mu);
    s_keylist_free(&l);
    if (!d)
        return rf_error_set(err, RF_EINVAL, "ZAP: at most %d domains", S_MAX_DOMAINS);
    rf_log_kv(RF_LOG_INFO, "zap", "allowed keys loaded", "domain=%s file=%s keys=%zu", domain, path,
              nkeys);
    return 0;
}

int rf_zap_reload(rf_zap *self, rf_error *err)
{
    s_keylist fresh[S_MAX_DOMAINS];
    char paths[S_MAX_DOMAINS][PATH_MAX];
    pthread_mutex_lock(&self->mu);
    int n = self->ndomains;
    for (int i = 0; i < n; i++)
        memcpy(paths[i], self->domains[i].path, PATH_MAX);
    pthread_mutex_unlock(&self->mu);
    for (int i = 0; i < n; i++) {
        int rc = s_load_allowed(paths[i], &fresh[i], err);
        if (rc) {
            for (int j = 0; j < i; j++)
                s_keylist_free(&fresh[j]);
            rf_error_prefix(err, "reloading allowed keys (nothing changed)");
            return rc;
        }
    }
    pthread_mutex_lock(&self->mu);
    for (int i = 0; i < n; i++) {
        s_keylist old = self->domains[i].keys;
        self->domains[i].keys = fresh[i];
        fresh[i] = old;
    }
    pthread_mutex_unlock(&self->mu);
    for (int i = 0; i < n; i++) {
        rf_log_kv(RF_LOG_INFO, "zap", "allowed keys reloaded", "domain=%s file=%s keys=%zu",
                  self->domains[i].name, paths[i], self->domains[i].keys.n);
        s_keylist_free(&fresh[i]);
    }
    return 0;
}

void rf_zap_counts(rf_zap *self, uint64_t *accepted, uint64_t *rejected)
{
    pthread_mutex_lock(&self->mu);
    if (accepted)
        *accepted = self->accepted;
    if (rejected)
        *rejected = self->rejected;
    pthread_mutex_unlock(&self->mu);
}

void rf_zap_destroy(rf_zap **pself)
{
    if (!pself || !*pself)
        return;
    rf_zap *self = *pself;
    if (self->started) {
        atomic_store(&self->stop, 1);
        pthread_join(self->thread, NULL);
    }
    if (self->sock)
        zmq_close(self->sock);
    for (int i = 0; i < self->ndomains; i++)
        s_keylist_free(&self->domains[i].keys);
    pthread_mutex_destroy(&self->mu);
    free(self);
    *pself = NULL;
}

/* ---- the monitor ------------------------------------------------------------------- */

struct rf_curve_monitor {
    void *sock; /* the monitored socket (borrowed) */
    void *pair; /* receives its events */
    char role[32];
    char endpoint[256];
    int connected;
    int failed; /* rf_status of a sticky failure, 0 when none */
    char msg[RF_ERROR_MSG_MAX];
};

rf_curve_monitor *rf_curve_monitor_new(void *zctx, void *sock, const char *role,
                                       const char *endpoint, rf_error *err)
{
    static atomic_uint s_seq;
    rf_curve_monitor *self = calloc(1, sizeof(*self));
    if (!self)
        return rf_error_set(err, RF_ENOMEM, "monitor: out of memory"), NULL;
    self->sock = sock;
    snprintf(self->role, sizeof(self->role), "%s", role ? role : "client");
    snprintf(self->endpoint, sizeof(self->endpoint), "%s", endpoint ? endpoint : "?");
    char addr[96];
    snprintf(addr, sizeof(addr), "inproc://rf-curve-monitor-%d-%u", (int)getpid(),
             atomic_fetch_add(&s_seq, 1));
    int events = ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                 ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL;
    if (zmq_socket_monitor(sock, addr, events) != 0) {
        rf_error_set(err, RF_EIO, "monitor: cannot monitor the socket: %s",
                     zmq_strerror(zmq_errno()));
        free(self);
        return NULL;
    }
    self->pair = zmq_socket(zctx, ZMQ_PAIR);
    int zero = 0;
    if (!self->pair || zmq_setsockopt(self->pair, ZMQ_LINGER, &zero, sizeof(zero)) != 0 ||
        zmq_connect(self->pair, addr) != 0) {
        rf_error_set(err, RF_EIO, "monitor: cannot connect to %s: %s", addr,
                     zmq_strerror(zmq_errno()));
        rf_curve_monitor_destroy(&self);
        return NULL;
    }
    return self;
}

void *rf_curve_monitor_socket(rf_curve_monitor *self)
{
    return self->pair;
}

int rf_curve_monitor_connected(const rf_curve_monitor *self)
{
    return self->connected && !self->failed;
}

static void s_monitor_event(rf_curve_monitor *self, unsigned event, unsigned value)
{
    const char *keys =
        strcmp(self->role, "worker") == 0 ? "allowed-worker-keys" : "allowed-client-keys";
    if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
        self->connected = 1;
        self->failed = 0;
        self->msg[0] = '\0';
    } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
        self->connected = 0;
        self->failed = RF_EPROTO;
        snprintf(self->msg, sizeof(self->msg),
                 "the coordinator at %s rejected this %s's key (ZAP status %u): add this %s's "
                 "public key (its .key file) to the coordinator's %s file and send the "
                 "coordinator SIGHUP",
                 self->endpoint, self->role, value, self->role, keys);
    } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ||
               event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) {
        self->connected = 0;
        self->failed = RF_EPROTO;
        snprintf(self->msg, sizeof(self->msg),
                 "the secure handshake with the coordinator at %s failed (%s, code 0x%x): "
                 "check that the server public key is the coordinator's and that both sides "
                 "use CURVE",
                 self->endpoint,
                 event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ? "protocol error" : "no detail",
                 value);
    }
}

int rf_curve_monitor_check(rf_curve_monitor *self, int timeout_ms, rf_error *err)
{
    int wait = timeout_ms;
    for (;;) {
        zmq_pollitem_t it = {self->pair, 0, ZMQ_POLLIN, 0};
        int rc = zmq_poll(&it, 1, wait);
        if (rc <= 0 || !(it.revents & ZMQ_POLLIN))
            break;
        wait = 0;
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, self->pair, 0) < 0) {
            zmq_msg_close(&m);
            break;
        }
        unsigned event = 0, value = 0;
        if (zmq_msg_size(&m) == 6) {
            uint16_t e;
            uint32_t v;
            memcpy(&e, zmq_msg_data(&m), 2);
            memcpy(&v, (const char *)zmq_msg_data(&m) + 2, 4);
            event = e;
            value = v;
        }
        int more = zmq_msg_more(&m);
        zmq_msg_close(&m);
        while (more) { /* the endpoint frame */
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, self->pair, 0) < 0)
                more = 0;
            else
                more = zmq_msg_more(&m);
            zmq_msg_close(&m);
        }
        if (event)
            s_monitor_event(self, event, value);
    }
    if (self->failed)
        return rf_error_set(err, self->failed, "%s", self->msg);
    return 0;
}

void rf_curve_monitor_destroy(rf_curve_monitor **pself)
{
    if (!pself || !*pself)
        return;
    rf_curve_monitor *self = *pself;
    if (self->sock)
        zmq_socket_monitor(self->sock, NULL, 0);
    if (self->pair)
        zmq_close(self->pair);
    free(self);
    *pself = NULL;
}

/* ---- endpoint policy --------------------------------------------------------------- */

static int s_why(char *why, size_t cap, int result, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int s_why(char *why, size_t cap, int result, const char *fmt, ...)
{
    if (why && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, cap, fmt, ap);
        va_end(ap);
    }
    return result;
}

int rf_curve_endpoint_private(const char *endpoint, char *why, size_t why_cap)
{
    if (!endpoint)
        return s_why(why, why_cap, 0, "no endpoint");
    if (strncmp(endpoint, "inproc://", 9) == 0)
        return s_why(why, why_cap, 1, "inproc:// stays inside this process");
    if (strncmp(endpoint, "ipc://", 6) == 0) {
        const char *path = endpoint + 6;
        if (path[0] == '@')
            return s_why(why, why_cap, 0,
                         "abstract ipc sockets (ipc://@...) can be reached by every local user");
        char dir[PATH_MAX];
        const char *slash = strrchr(path, '/');
        if (!slash)
            snprintf(dir, sizeof(dir), ".");
        else if (slash == path)
            snprintf(dir, sizeof(dir), "/");
        else
            snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
        struct stat st;
        if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
            return s_why(why, why_cap, 0, "the directory %s of the ipc socket does not exist", dir);
        if (st.st_uid != geteuid())
            return s_why(why, why_cap, 0, "the directory %s of the ipc socket is not ours", dir);
        if (st.st_mode & 077)
            return s_why(why, why_cap, 0,
                         "the directory %s of the ipc socket is open to group or others "
                         "(mode %03o; it needs 0700)",
                         dir, (unsigned)(st.st_mode & 0777));
        return s_why(why, why_cap, 1, "ipc socket in the private directory %s", dir);
    }
    if (strncmp(endpoint, "tcp://", 6) == 0)
        return s_why(why, why_cap, 0,
                     "tcp endpoints can be reached by other users and machines (loopback "
                     "by every local user)");
    return s_why(why, why_cap, 0, "unknown transport");
}

int rf_curve_bind_check(const char *flag, const char *endpoint, int curve_on, int insecure,
                        rf_error *err)
{
    if (curve_on)
        return 0;
    char why[512];
    if (rf_curve_endpoint_private(endpoint, why, sizeof(why)))
        return 0;
    if (insecure) {
        rf_log_kv(RF_LOG_WARN, "curve",
                  "serving without CURVE on a reachable endpoint (--insecure)",
                  "flag=%s endpoint=%s reason=\"%s\"", flag, endpoint, why);
        return 0;
    }
    return rf_error_set(err, RF_EINVAL,
                        "%s %s: refusing to serve without CURVE: %s. Set keys.server_secret_key "
                        "and keys.allowed_worker_keys / allowed_client_keys in the config (make "
                        "keys with reelctl keygen), "
                        "use ipc:// in a 0700 directory, or pass --insecure",
                        flag, endpoint, why);
}
