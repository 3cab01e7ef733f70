/* rf_test.c - runner for the tests registered with RF_TEST in one test binary.
 *
 * Runs each test in registration order (or those named in argv), catching a failed
 * check with longjmp, and prints one line per test plus a summary line that
 * tests/run.sh adds up. A crash kills the binary; run.sh counts that as a failure.
 */
#include "rf_test.h"

#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#ifndef RF_FIXTURES_DIR
#define RF_FIXTURES_DIR "tests/fixtures"
#endif

#define RF_TEST_MAX 1024

static struct {
    const char *name;
    rf_test_fn fn;
} s_tests[RF_TEST_MAX];
static int s_count;
static jmp_buf s_jmp;
static char s_reason[2048];
static char s_tmpdir[512];

void rf_test_register(const char *name, rf_test_fn fn)
{
    if (s_count < RF_TEST_MAX) {
        s_tests[s_count].name = name;
        s_tests[s_count].fn = fn;
        s_count++;
    }
}

void rf_test_fail(const char *file, int line, const char *fmt, ...)
{
    int n = snprintf(s_reason, sizeof(s_reason), "%s:%d: ", file, line);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s_reason + n, sizeof(s_reason) - (size_t)n, fmt, ap);
    va_end(ap);
    longjmp(s_jmp, 1);
}

void rf_test_skip(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s_reason, sizeof(s_reason), fmt, ap);
    va_end(ap);
    longjmp(s_jmp, 2);
}

const char *rf_test_fixtures(void)
{
    const char *env = getenv("RF_FIXTURES");
    return env && *env ? env : RF_FIXTURES_DIR;
}

static int s_rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void s_cleanup(void)
{
    const char *keep = getenv("RF_TEST_KEEP");
    if (s_tmpdir[0] && !(keep && *keep == '1'))
        nftw(s_tmpdir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
}

const char *rf_test_tmpdir(void)
{
    if (!s_tmpdir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(s_tmpdir, sizeof(s_tmpdir), "%s/rftest.XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(s_tmpdir)) {
            fprintf(stderr, "rf_test: mkdtemp %s: %s\n", s_tmpdir, strerror(errno));
            exit(2);
        }
        atexit(s_cleanup);
    }
    return s_tmpdir;
}

char *rf_test_path(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", rf_test_tmpdir(), name);
    return buf;
}

int rf_test_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = len ? fwrite(data, 1, len, f) : 0;
    int rc = fclose(f);
    return (w == len && rc == 0) ? 0 : -1;
}

double rf_test_nmse(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(a[i]) || !isfinite(b[i]))
            return INFINITY;
        double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)b[i] * (double)b[i];
    }
    return den > 0 ? num / den : num;
}

/* Runs test i; returns 0 passed, 1 failed, 2 skipped. Kept apart from main's counters
 * so longjmp cannot clobber them. */
static int s_run_one(int i)
{
    s_reason[0] = '\0';
    int r = setjmp(s_jmp);
    if (r == 0)
        s_tests[i].fn();
    return r;
}

static int s_selected(int argc, char **argv, const char *name)
{
    if (argc <= 1)
        return 1;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    const char *self = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    int passed = 0, failed = 0, skipped = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 0; i < s_count; i++) {
        if (!s_selected(argc, argv, s_tests[i].name))
            continue;
        int r = s_run_one(i);
        if (r == 0) {
            printf("ok %s\n", s_tests[i].name);
            passed++;
        } else if (r == 1) {
            printf("FAIL %s: %s\n", s_tests[i].name, s_reason);
            failed++;
        } else {
            printf("skip %s: %s\n", s_tests[i].name, s_reason);
            skipped++;
        }
    }
    printf("# %s: %d passed, %d failed, %d skipped\n", self, passed, failed, skipped);
    return failed ? 1 : 0;
}
