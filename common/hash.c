/* hash.c - thin wrappers over libxxhash and libsodium, plus streamed file hashing.
 *
 * Files are read in 1 MiB pieces so hashing a 30 GB checkpoint takes constant
 * memory. libsodium is initialised once (pthread_once) before its first use. This
 * file must never implement a hash itself: the libraries are the reference.
 */
#include "hash.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#define S_FILE_CHUNK (1u << 20)

/* ---- xxh64 ---------------------------------------------------------------------- */

struct rf_xxh64_stream {
    XXH64_state_t *st;
};

uint64_t rf_xxh64(const void *data, size_t len, uint64_t seed)
{
    static const char empty[1] = {0};
    return XXH64(len ? data : empty, len, seed);
}

rf_xxh64_stream *rf_xxh64_stream_new(uint64_t seed)
{
    rf_xxh64_stream *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    self->st = XXH64_createState();
    if (!self->st || XXH64_reset(self->st, seed) != XXH_OK) {
        rf_xxh64_stream_destroy(&self);
        return NULL;
    }
    return self;
}

void rf_xxh64_stream_update(rf_xxh64_stream *self, const void *data, size_t len)
{
    if (len)
        XXH64_update(self->st, data, len);
}

uint64_t rf_xxh64_stream_digest(const rf_xxh64_stream *self)
{
    return XXH64_digest(self->st);
}

void rf_xxh64_stream_destroy(rf_xxh64_stream **pself)
{
    if (!pself || !*pself)
        return;
    if ((*pself)->st)
        XXH64_freeState((*pself)->st);
    free(*pself);
    *pself = NULL;
}

/* ---- BLAKE2b-256 ---------------------------------------------------------------- */

static pthread_once_t s_sodium_once = PTHREAD_ONCE_INIT;
static int s_sodium_rc;
static void s_sodium_init(void)
{
    /* sodium_init only fails when no entropy source exists; generichash needs none,
     * so the result is kept for debugging and otherwise ignored. */
    s_sodium_rc = sodium_init();
}

struct rf_blake2b_stream {
    crypto_generichash_state st;
};

void rf_blake2b(const void *data, size_t len, rf_hash *out)
{
    pthread_once(&s_sodium_once, s_sodium_init);
    static const unsigned char empty[1] = {0};
    crypto_generichash(out->bytes, RF_HASH_BYTES, len ? data : empty, len, NULL, 0);
}

rf_blake2b_stream *rf_blake2b_stream_new(void)
{
    pthread_once(&s_sodium_once, s_sodium_init);
    /* crypto_generichash_state needs 64-byte alignment */
    rf_blake2b_stream *self = NULL;
    if (posix_memalign((void **)&self, 64, sizeof(*self)) != 0)
        return NULL;
    crypto_generichash_init(&self->st, NULL, 0, RF_HASH_BYTES);
    return self;
}

void rf_blake2b_stream_update(rf_blake2b_stream *self, const void *data, size_t len)
{
    if (len)
        crypto_generichash_update(&self->st, data, len);
}

void rf_blake2b_stream_final(rf_blake2b_stream *self, rf_hash *out)
{
    crypto_generichash_final(&self->st, out->bytes, RF_HASH_BYTES);
}

void rf_blake2b_stream_destroy(rf_blake2b_stream **pself)
{
    if (!pself || !*pself)
        return;
    free(*pself);
    *pself = NULL;
}

/* ---- files ---------------------------------------------------------------------- */

typedef void (*s_feed_fn)(void *ctx, const void *data, size_t len);

static int s_read_file(const char *path, s_feed_fn feed, void *ctx, rf_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return rf_error_set(err, errno == ENOENT ? RF_ENOTFOUND : RF_EIO,
                            "cannot open %s for hashing: %s", path, strerror(errno));
    unsigned char *buf = malloc(S_FILE_CHUNK);
    if (!buf) {
        close(fd);
        return rf_error_set(err, RF_ENOMEM, "out of memory hashing %s", path);
    }
    int rc = 0;
    for (;;) {
        ssize_t n = read(fd, buf, S_FILE_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = rf_error_set(err, RF_EIO, "cannot read %s: %s", path, strerror(errno));
            break;
        }
        if (n == 0)
            break;
        feed(ctx, buf, (size_t)n);
    }
    free(buf);
    close(fd);
    return rc;
}

static void s_feed_xxh(void *ctx, const void *data, size_t len)
{
    rf_xxh64_stream_update(ctx, data, len);
}

static void s_feed_b2(void *ctx, const void *data, size_t len)
{
    rf_blake2b_stream_update(ctx, data, len);
}

int rf_xxh64_file(const char *path, uint64_t *out, rf_error *err)
{
    rf_xxh64_stream *s = rf_xxh64_stream_new(0);
    if (!s)
        return rf_error_set(err, RF_ENOMEM, "out of memory hashing %s", path);
    int rc = s_read_file(path, s_feed_xxh, s, err);
    if (!rc)
        *out = rf_xxh64_stream_digest(s);
    rf_xxh64_stream_destroy(&s);
    return rc;
}

int rf_blake2b_file(const char *path, rf_hash *out, rf_error *err)
{
    rf_blake2b_stream *s = rf_blake2b_stream_new();
    if (!s)
        return rf_error_set(err, RF_ENOMEM, "out of memory hashing %s", path);
    int rc = s_read_file(path, s_feed_b2, s, err);
    if (!rc)
        rf_blake2b_stream_final(s, out);
    rf_blake2b_stream_destroy(&s);
    return rc;
}

/* ---- hex ------------------------------------------------------------------------ */

void rf_hash_to_hex(const rf_hash *h, char hex[RF_HASH_HEX])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < RF_HASH_BYTES; i++) {
        hex[2 * i] = digits[h->bytes[i] >> 4];
        hex[2 * i + 1] = digits[h->bytes[i] & 15];
    }
    hex[2 * RF_HASH_BYTES] = '\0';
}

static int s_nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int rf_hash_from_hex(const char *hex, rf_hash *out)
{
    rf_hash h;
    if (!hex)
        return -1;
    for (int i = 0; i < RF_HASH_BYTES; i++) {
        if (!hex[2 * i] || !hex[2 * i + 1])
            return -1;
        int a = s_nibble(hex[2 * i]), b = s_nibble(hex[2 * i + 1]);
        if (a < 0 || b < 0)
            return -1;
        h.bytes[i] = (uint8_t)(a << 4 | b);
    }
    if (hex[2 * RF_HASH_BYTES] != '\0')
        return -1;
    *out = h;
    return 0;
}

int rf_hash_equal(const rf_hash *a, const rf_hash *b)
{
    return memcmp(a->bytes, b->bytes, RF_HASH_BYTES) == 0;
}
