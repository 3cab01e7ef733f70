/* test_model_id.c - the model hash follows its documented definition (checked against
 * Python's hashlib), ignores hidden files, and refuses what is not a model folder. */
#include "common/model_id.h"
#include "rf_test.h"

#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static void s_make(const char *root)
{
    char p[1024];
    mkdir(root, 0700);
    snprintf(p, sizeof(p), "%s/sub", root);
    mkdir(p, 0700);
    snprintf(p, sizeof(p), "%s/model.json", root);
    RF_CHECK_EQ_INT(rf_test_write_file(p, "{}\n", 3), 0);
    snprintf(p, sizeof(p), "%s/sub/w.bin", root);
    RF_CHECK_EQ_INT(rf_test_write_file(p, "xyz", 3), 0);
    snprintf(p, sizeof(p), "%s/a.txt", root);
    RF_CHECK_EQ_INT(rf_test_write_file(p, "hello", 5), 0);
}

RF_TEST(hash_matches_the_definition)
{
    char root[512];
    rf_test_path(root, sizeof(root), "m1");
    s_make(root);
    rf_hash h;
    char hex[RF_HASH_HEX];
    rf_error err;
    RF_CHECK_MSG(rf_model_hash(root, &h, hex, &err) == 0, "%s", err.msg);
    /* /usr/bin/python3: blake2b(digest_size=32) over sorted (path NUL digest) */
    RF_CHECK_EQ_STR(hex, "954d81f16e7e43b06b97ecda52b59c09a6ee50a5e1f58421b14d9844ee406f24");
    /* hidden files do not count; a changed byte does */
    char p[1024];
    snprintf(p, sizeof(p), "%s/.cache", root);
    RF_CHECK_EQ_INT(rf_test_write_file(p, "junk", 4), 0);
    char hex2[RF_HASH_HEX];
    RF_CHECK_EQ_INT(rf_model_hash(root, &h, hex2, NULL), 0);
    RF_CHECK_EQ_STR(hex2, hex);
    snprintf(p, sizeof(p), "%s/a.txt", root);
    RF_CHECK_EQ_INT(rf_test_write_file(p, "hellO", 5), 0);
    RF_CHECK_EQ_INT(rf_model_hash(root, &h, hex2, NULL), 0);
    RF_CHECK(strcmp(hex2, hex) != 0);
}

RF_TEST(refuses_missing_empty_and_files)
{
    char root[512];
    rf_hash h;
    rf_error err;
    rf_test_path(root, sizeof(root), "absent");
    RF_CHECK_EQ_INT(rf_model_hash(root, &h, NULL, &err), RF_ENOTFOUND);
    RF_CHECK_CONTAINS(err.msg, "absent");
    rf_test_path(root, sizeof(root), "empty");
    mkdir(root, 0700);
    RF_CHECK_EQ_INT(rf_model_hash(root, &h, NULL, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "no file");
    rf_test_path(root, sizeof(root), "plain");
    RF_CHECK_EQ_INT(rf_test_write_file(root, "x", 1), 0);
    RF_CHECK_EQ_INT(rf_model_hash(root, &h, NULL, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "not a folder");
}
