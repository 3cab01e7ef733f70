/* rf_test.h - the unit-test harness: tests register themselves, one binary per file.
 *
 *   RF_TEST(parses_minimal_spec) {
 *       RF_CHECK(x == 1);
 *       RF_CHECK_EQ_INT(rc, 0);
 *       if (!have_gpu) RF_SKIP("no GPU");
 *   }
 *
 * Each test binary (tests/test_*.c linked with tests/rf_test.c) runs its tests in
 * order (or only those named on its command line), prints "ok NAME", "FAIL NAME: ..."
 * or "skip NAME: ...", and ends with "# BINARY: P passed, F failed, S skipped", which
 * tests/run.sh sums. A failed check ends its test (later checks would only cascade).
 */
#ifndef RF_TEST_H
#define RF_TEST_H

#include <math.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef void (*rf_test_fn)(void);
void rf_test_register(const char *name, rf_test_fn fn);
void rf_test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));
void rf_test_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Directory of committed fixtures (tests/fixtures), absolute; from RF_FIXTURES or the
 * build's compiled-in default. */
const char *rf_test_fixtures(void);
/* A fresh private temporary directory for this test binary (removed at exit unless
 * RF_TEST_KEEP=1). */
const char *rf_test_tmpdir(void);
/* Fills buf with "<tmpdir>/<name>" and returns buf. */
char *rf_test_path(char *buf, size_t cap, const char *name);
/* Writes len bytes to path (creating it); returns 0 or -1. */
int rf_test_write_file(const char *path, const void *data, size_t len);

#define RF_TEST(name)                                                 \
    static void rf_test_##name(void);                                 \
    __attribute__((constructor)) static void rf_test_reg_##name(void) \
    {                                                                 \
        rf_test_register(#name, rf_test_##name);                      \
    }                                                                 \
    static void rf_test_##name(void)

#define RF_CHECK(cond)                                                   \
    do {                                                                 \
        if (!(cond))                                                     \
            rf_test_fail(__FILE__, __LINE__, "check failed: %s", #cond); \
    } while (0)

#define RF_CHECK_MSG(cond, ...)                            \
    do {                                                   \
        if (!(cond))                                       \
            rf_test_fail(__FILE__, __LINE__, __VA_ARGS__); \
    } while (0)

#define RF_CHECK_EQ_INT(a, b)                                                                 \
    do {                                                                                      \
        long long rf_a_ = (long long)(a), rf_b_ = (long long)(b);                             \
        if (rf_a_ != rf_b_)                                                                   \
            rf_test_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, rf_a_, rf_b_); \
    } while (0)

#define RF_CHECK_EQ_STR(a, b)                                                      \
    do {                                                                           \
        const char *rf_a_ = (a), *rf_b_ = (b);                                     \
        if (!rf_a_ || !rf_b_ || strcmp(rf_a_, rf_b_) != 0)                         \
            rf_test_fail(__FILE__, __LINE__, "%s == %s: \"%s\" != \"%s\"", #a, #b, \
                         rf_a_ ? rf_a_ : "(null)", rf_b_ ? rf_b_ : "(null)");      \
    } while (0)

/* Checks that string hay contains needle (e.g. an error message names the field). */
#define RF_CHECK_CONTAINS(hay, needle)                                         \
    do {                                                                       \
        const char *rf_h_ = (hay), *rf_n_ = (needle);                          \
        if (!rf_h_ || !strstr(rf_h_, rf_n_))                                   \
            rf_test_fail(__FILE__, __LINE__, "\"%s\" does not contain \"%s\"", \
                         rf_h_ ? rf_h_ : "(null)", rf_n_);                     \
    } while (0)

#define RF_CHECK_NEAR(a, b, tol)                                                              \
    do {                                                                                      \
        double rf_a_ = (double)(a), rf_b_ = (double)(b);                                      \
        if (!(fabs(rf_a_ - rf_b_) <= (tol)))                                                  \
            rf_test_fail(__FILE__, __LINE__, "%s ~ %s: %.9g vs %.9g (tol %g)", #a, #b, rf_a_, \
                         rf_b_, (double)(tol));                                               \
    } while (0)

#define RF_SKIP(...) rf_test_skip(__VA_ARGS__)

/* Normalized mean squared error sum((a-b)^2)/sum(b^2) of n floats (b the reference);
 * returns INFINITY if either holds a NaN or Inf. */
double rf_test_nmse(const float *a, const float *b, size_t n);

#endif
