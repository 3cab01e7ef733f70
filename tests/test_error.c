/* test_error.c - rf_error: bounded messages, prefixing, NULL-safety. */
#include "error.h"
#include "rf_test.h"

RF_TEST(set_returns_code_and_formats)
{
    rf_error err;
    rf_error_clear(&err);
    int rc = rf_error_set(&err, RF_EINVAL, "chunk.frames must be 4n+1, got %d", 30);
    RF_CHECK_EQ_INT(rc, RF_EINVAL);
    RF_CHECK_EQ_INT(err.code, RF_EINVAL);
    RF_CHECK_EQ_STR(err.msg, "chunk.frames must be 4n+1, got 30");
}

RF_TEST(null_error_is_safe)
{
    RF_CHECK_EQ_INT(rf_error_set(NULL, RF_EIO, "x %s", "y"), RF_EIO);
    rf_error_clear(NULL);
}

RF_TEST(prefix_keeps_code_and_old_text)
{
    rf_error err;
    rf_error_set(&err, RF_ENOTFOUND, "tensor head.head.weight missing");
    int rc = rf_error_prefix(&err, "loading %s", "models/x");
    RF_CHECK_EQ_INT(rc, RF_ENOTFOUND);
    RF_CHECK_EQ_STR(err.msg, "loading models/x: tensor head.head.weight missing");
}

RF_TEST(long_messages_are_truncated_not_overflowed)
{
    rf_error err;
    char big[4000];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    rf_error_set(&err, RF_EINVAL, "%s", big);
    RF_CHECK_EQ_INT(strlen(err.msg), RF_ERROR_MSG_MAX - 1);
    rf_error_prefix(&err, "ctx");
    RF_CHECK_EQ_INT(strlen(err.msg), RF_ERROR_MSG_MAX - 1);
}

RF_TEST(status_names)
{
    RF_CHECK_EQ_STR(rf_status_name(RF_OK), "ok");
    RF_CHECK_EQ_STR(rf_status_name(RF_EPROTO), "protocol");
    RF_CHECK_EQ_STR(rf_status_name(999), "unknown");
}
