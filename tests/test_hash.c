/* test_hash.c - xxh64 and BLAKE2b-256 against vectors from independent tools.
 *
 * Expected digests were produced with coreutils `b2sum -l 256` and xxHash's
 * `xxhsum -H64` (Debian package xxhash) on the same bytes.
 */
#include "hash.h"
#include "rf_test.h"

#include <stdio.h>
#include <stdlib.h>

static const char *s_fox = "The quick brown fox jumps over the lazy dog";

RF_TEST(xxh64_known_vectors)
{
    RF_CHECK(rf_xxh64("", 0, 0) == 0xEF46DB3751D8E999ull);
    RF_CHECK(rf_xxh64(NULL, 0, 0) == 0xEF46DB3751D8E999ull);
    RF_CHECK(rf_xxh64("abc", 3, 0) == 0x44BC2CF5AD770999ull);
    RF_CHECK(rf_xxh64(s_fox, strlen(s_fox), 0) == 0x0B242D361FDA71BCull);
    RF_CHECK(rf_xxh64("abc", 3, 1) != rf_xxh64("abc", 3, 0)); /* the seed matters */
}

RF_TEST(blake2b_known_vectors)
{
    rf_hash h;
    char hex[RF_HASH_HEX];
    rf_blake2b("", 0, &h);
    rf_hash_to_hex(&h, hex);
    RF_CHECK_EQ_STR(hex, "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");
    rf_blake2b("abc", 3, &h);
    rf_hash_to_hex(&h, hex);
    RF_CHECK_EQ_STR(hex, "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");
    rf_blake2b(s_fox, strlen(s_fox), &h);
    rf_hash_to_hex(&h, hex);
    RF_CHECK_EQ_STR(hex, "01718cec35cd3d796dd00020e0bfecb473ad23457d063b75eff29c0ffa2e58a9");
}

/* 3,000,000 'a': larger than the file reader's 1 MiB piece, not a multiple of it. */
RF_TEST(streams_and_files_match_one_shot)
{
    size_t n = 3000000;
    char *buf = malloc(n);
    RF_CHECK(buf != NULL);
    memset(buf, 'a', n);
    char path[1024];
    RF_CHECK_EQ_INT(rf_test_write_file(rf_test_path(path, sizeof(path), "a.bin"), buf, n), 0);

    rf_xxh64_stream *xs = rf_xxh64_stream_new(7);
    rf_blake2b_stream *bs = rf_blake2b_stream_new();
    RF_CHECK(xs && bs);
    for (size_t at = 0, step = 1; at < n; at += step, step = step * 3 + 1) {
        size_t k = n - at < step ? n - at : step;
        rf_xxh64_stream_update(xs, buf + at, k);
        rf_blake2b_stream_update(bs, buf + at, k);
    }
    rf_xxh64_stream_update(xs, NULL, 0);
    RF_CHECK(rf_xxh64_stream_digest(xs) == rf_xxh64(buf, n, 7));
    rf_hash a, b, c;
    rf_blake2b_stream_final(bs, &a);
    rf_blake2b(buf, n, &b);
    RF_CHECK(rf_hash_equal(&a, &b));
    rf_xxh64_stream_destroy(&xs);
    rf_blake2b_stream_destroy(&bs);
    RF_CHECK(xs == NULL && bs == NULL);
    rf_xxh64_stream_destroy(&xs); /* twice is safe */

    rf_error err = {0};
    RF_CHECK_EQ_INT(rf_blake2b_file(path, &c, &err), 0);
    char hex[RF_HASH_HEX];
    rf_hash_to_hex(&c, hex);
    RF_CHECK_EQ_STR(hex, "7c4c718fdcf413e4e25e10e42217483703725fc4f66300208d154287305641b7");
    uint64_t x = 0;
    RF_CHECK_EQ_INT(rf_xxh64_file(path, &x, &err), 0);
    RF_CHECK(x == 0x3448CE532243BCD2ull);
    free(buf);

    RF_CHECK_EQ_INT(rf_test_write_file(rf_test_path(path, sizeof(path), "e.bin"), "", 0), 0);
    RF_CHECK_EQ_INT(rf_xxh64_file(path, &x, &err), 0);
    RF_CHECK(x == 0xEF46DB3751D8E999ull);

    RF_CHECK_EQ_INT(rf_blake2b_file(rf_test_path(path, sizeof(path), "missing.bin"), &c, &err),
                    RF_ENOTFOUND);
    RF_CHECK_CONTAINS(err.msg, "missing.bin");
    RF_CHECK(rf_xxh64_file(rf_test_tmpdir(), &x, &err) != 0); /* a directory cannot be read */
    RF_CHECK_EQ_INT(err.code, RF_EIO);
}

RF_TEST(hex_round_trip_and_refusals)
{
    rf_hash h, back;
    rf_blake2b("reelfarm", 8, &h);
    char hex[RF_HASH_HEX];
    rf_hash_to_hex(&h, hex);
    RF_CHECK_EQ_INT(strlen(hex), 64);
    RF_CHECK_EQ_INT(rf_hash_from_hex(hex, &back), 0);
    RF_CHECK(rf_hash_equal(&h, &back));
    const char *upper = "0E5751C026E543B2E8AB2EB06099DAA1D1E5DF47778F7787FAAB45CDF12FE3A8";
    RF_CHECK_EQ_INT(rf_hash_from_hex(upper, &back), 0);
    rf_blake2b("", 0, &h);
    RF_CHECK(rf_hash_equal(&h, &back));
    rf_hash keep = back;
    RF_CHECK_EQ_INT(rf_hash_from_hex("0e57", &back), -1); /* short */
    RF_CHECK_EQ_INT(rf_hash_from_hex(NULL, &back), -1);
    char bad[80];
    snprintf(bad, sizeof(bad), "%s0", hex); /* one digit too many */
    RF_CHECK_EQ_INT(rf_hash_from_hex(bad, &back), -1);
    snprintf(bad, sizeof(bad), "%s", hex);
    bad[10] = 'g';
    RF_CHECK_EQ_INT(rf_hash_from_hex(bad, &back), -1);
    RF_CHECK(rf_hash_equal(&keep, &back)); /* untouched on failure */
}
