/* test_atomic_file.c - whole-or-nothing files and the simulated full disk. */
#include "atomic_file.h"
#include "rf_test.h"

#include <stdio.h>
#include <sys/stat.h>

static long s_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

RF_TEST(write_then_replace)
{
    char p[512], tmp[600];
    rf_test_path(p, sizeof(p), "a.bin");
    RF_CHECK_EQ_INT(rf_atomic_write(p, "hello", 5, NULL), 0);
    RF_CHECK_EQ_INT(s_size(p), 5);
    RF_CHECK_EQ_INT(rf_atomic_write(p, "hi", 2, NULL), 0);
    RF_CHECK_EQ_INT(s_size(p), 2);
    snprintf(tmp, sizeof(tmp), "%s.tmp", p);
    RF_CHECK_EQ_INT(s_size(tmp), -1);
}

RF_TEST(full_disk_keeps_the_old_file)
{
    char p[512], tmp[600];
    rf_test_path(p, sizeof(p), "b.bin");
    RF_CHECK_EQ_INT(rf_atomic_write(p, "old contents", 12, NULL), 0);
    rf_atomic_file_inject_enospc(4);
    rf_error err;
    int rc = rf_atomic_write(p, "new contents!", 13, &err);
    rf_atomic_file_inject_enospc(-1);
    RF_CHECK_EQ_INT(rc, RF_ENOSPC);
    RF_CHECK_CONTAINS(err.msg, "disk full");
    RF_CHECK_CONTAINS(err.msg, p);
    RF_CHECK_EQ_INT(s_size(p), 12);
    snprintf(tmp, sizeof(tmp), "%s.tmp", p);
    RF_CHECK_EQ_INT(s_size(tmp), -1);
}

RF_TEST(abort_leaves_nothing)
{
    char p[512];
    rf_test_path(p, sizeof(p), "c.bin");
    rf_atomic_file *f = rf_atomic_file_begin(p, NULL);
    RF_CHECK(f);
    RF_CHECK_EQ_INT(rf_atomic_file_write(f, "x", 1, NULL), 0);
    rf_atomic_file_abort(&f);
    RF_CHECK(f == NULL);
    rf_atomic_file_abort(&f);
    RF_CHECK_EQ_INT(s_size(p), -1);
}

RF_TEST(unwritable_directory_is_reported)
{
    rf_error err;
    RF_CHECK(rf_atomic_write("/nonexistent-dir/x.bin", "x", 1, &err) != 0);
    RF_CHECK_CONTAINS(err.msg, "/nonexistent-dir/x.bin.tmp");
}

RF_TEST(mkdirs_creates_parents)
{
    char p[512];
    rf_test_path(p, sizeof(p), "d/e/f");
    RF_CHECK_EQ_INT(rf_mkdirs(p, 0700, NULL), 0);
    RF_CHECK_EQ_INT(rf_mkdirs(p, 0700, NULL), 0);
    char f[600];
    snprintf(f, sizeof(f), "%s/g", p);
    RF_CHECK_EQ_INT(rf_atomic_write(f, "1", 1, NULL), 0);
    rf_error err;
    RF_CHECK(rf_mkdirs(f, 0700, &err) != 0);
    RF_CHECK_CONTAINS(err.msg, "not a directory");
}

/* A log: written in place at the offsets given (a later batch over an earlier one's tail),
 * kept by close, removed by abort; a full disk is reported as for any file. */
RF_TEST(log_is_written_in_place_batch_by_batch)
{
    char p[512];
    rf_test_path(p, sizeof(p), "log.bin");
    rf_atomic_file *f = rf_atomic_file_open_log(p, NULL);
    RF_CHECK(f != NULL);
    if (!f)
        return;
    RF_CHECK_EQ_INT(rf_atomic_file_pwrite(f, "hello", 5, 0, NULL), 0);
    RF_CHECK_EQ_INT(rf_atomic_file_sync(f, NULL), 0);
    RF_CHECK_EQ_INT(rf_atomic_file_pwrite(f, " world", 6, 5, NULL), 0);
    RF_CHECK_EQ_INT(rf_atomic_file_pwrite(f, "!!", 2, 5, NULL), 0); /* over the tail */
    RF_CHECK_EQ_INT(rf_atomic_file_sync(f, NULL), 0);
    char buf[12] = {0};
    RF_CHECK_EQ_INT(rf_atomic_file_pread(f, buf, 11, 0, NULL), 0);
    RF_CHECK_EQ_STR(buf, "hello!!orld");
    rf_atomic_file_inject_enospc(0);
    rf_error err;
    int rc = rf_atomic_file_pwrite(f, "x", 1, 11, &err);
    rf_atomic_file_inject_enospc(-1);
    RF_CHECK_EQ_INT(rc, RF_ENOSPC);
    RF_CHECK_CONTAINS(err.msg, p);
    rf_atomic_file_close(&f);
    RF_CHECK(f == NULL);
    rf_atomic_file_close(&f);
    RF_CHECK_EQ_INT(s_size(p), 11);       /* kept */
    f = rf_atomic_file_open_log(p, NULL); /* truncated */
    RF_CHECK(f != NULL);
    RF_CHECK_EQ_INT(s_size(p), 0);
    rf_atomic_file_abort(&f);
    RF_CHECK_EQ_INT(s_size(p), -1); /* removed */
}
