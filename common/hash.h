/* hash.h - xxh64 for integrity checks, BLAKE2b-256 for content addresses.
 *
 * xxh64 (libxxhash) is fast and not cryptographic: it guards wire blobs and files
 * against corruption, never against an adversary. BLAKE2b with a 32-byte digest
 * (libsodium crypto_generichash, no key) names content: model weights, inputs,
 * outputs; its text form is 64 lowercase hex digits. Both come one-shot and
 * streamed (buffers, then files), and the streamed result equals the one-shot one.
 */
#ifndef RF_HASH_H
#define RF_HASH_H

#include "error.h"

#include <stddef.h>
#include <stdint.h>

/* ---- xxh64 ---------------------------------------------------------------------- */

/* XXH64 of len bytes at data (data may be NULL when len is 0). */
uint64_t rf_xxh64(const void *data, size_t len, uint64_t seed);

typedef struct rf_xxh64_stream rf_xxh64_stream;
/* A streaming XXH64 with the given seed; NULL when out of memory. */
rf_xxh64_stream *rf_xxh64_stream_new(uint64_t seed);
void rf_xxh64_stream_update(rf_xxh64_stream *self, const void *data, size_t len);
/* The digest of everything fed so far (the stream may continue afterwards). */
uint64_t rf_xxh64_stream_digest(const rf_xxh64_stream *self);
void rf_xxh64_stream_destroy(rf_xxh64_stream **self);

/* XXH64 (seed 0) of the whole file at path, streamed. */
int rf_xxh64_file(const char *path, uint64_t *out, rf_error *err);

/* ---- BLAKE2b-256 ---------------------------------------------------------------- */

#define RF_HASH_BYTES 32
#define RF_HASH_HEX   (2 * RF_HASH_BYTES + 1) /* hex digits plus NUL */

typedef struct rf_hash {
    uint8_t bytes[RF_HASH_BYTES];
} rf_hash;

/* Unkeyed BLAKE2b with a 32-byte digest of len bytes at data. */
void rf_blake2b(const void *data, size_t len, rf_hash *out);

typedef struct rf_blake2b_stream rf_blake2b_stream;
rf_blake2b_stream *rf_blake2b_stream_new(void);
void rf_blake2b_stream_update(rf_blake2b_stream *self, const void *data, size_t len);
/* Finishes the stream into out; afterwards the stream only accepts destroy. */
void rf_blake2b_stream_final(rf_blake2b_stream *self, rf_hash *out);
void rf_blake2b_stream_destroy(rf_blake2b_stream **self);

/* BLAKE2b-256 of the whole file at path, streamed (constant memory). */
int rf_blake2b_file(const char *path, rf_hash *out, rf_error *err);

/* Writes 64 lowercase hex digits and a NUL into hex (RF_HASH_HEX bytes). */
void rf_hash_to_hex(const rf_hash *h, char hex[RF_HASH_HEX]);
/* Parses exactly 64 hex digits (either case); returns 0, or -1 (out untouched). */
int rf_hash_from_hex(const char *hex, rf_hash *out);
/* 1 when a and b are the same digest. */
int rf_hash_equal(const rf_hash *a, const rf_hash *b);

#endif
