/* test_log.c - logfmt lines: fields, quoting, levels. */
#include "log.h"
#include "rf_test.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

static char s_buf[8192];

/* Runs fn with the log redirected to a temp file and returns what it wrote. */
static const char *s_capture(void (*fn)(void))
{
    char path[512];
    rf_test_path(path, sizeof(path), "log.txt");
    int fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0600);
    RF_CHECK(fd >= 0);
    rf_log_set_fd(fd);
    fn();
    rf_log_set_fd(2);
    lseek(fd, 0, SEEK_SET);
    ssize_t n = read(fd, s_buf, sizeof(s_buf) - 1);
    close(fd);
    s_buf[n > 0 ? n : 0] = '\0';
    return s_buf;
}

static void s_one(void)
{
    rf_log_kv(RF_LOG_INFO, "wire", "peer joined", "peer=%s n=%d", "w1", 3);
}
static void s_quoted(void)
{
    RF_WARN("spec", "bad \"value\"\nnext");
}
static void s_filtered(void)
{
    rf_log_set_level(RF_LOG_WARN);
    RF_INFO("x", "hidden");
    RF_ERROR("x", "shown");
    rf_log_set_level(RF_LOG_INFO);
}

RF_TEST(logfmt_fields)
{
    const char *out = s_capture(s_one);
    RF_CHECK(strncmp(out, "ts=", 3) == 0);
    RF_CHECK_CONTAINS(out, " level=info comp=wire msg=\"peer joined\" peer=w1 n=3\n");
}

RF_TEST(message_is_escaped_on_one_line)
{
    const char *out = s_capture(s_quoted);
    RF_CHECK_CONTAINS(out, "msg=\"bad \\\"value\\\"\\nnext\"\n");
    RF_CHECK(strchr(out, '\n') == out + strlen(out) - 1);
}

RF_TEST(level_filter)
{
    const char *out = s_capture(s_filtered);
    RF_CHECK(strstr(out, "hidden") == NULL);
    RF_CHECK_CONTAINS(out, "level=error");
}

RF_TEST(parse_level)
{
    rf_log_level l;
    RF_CHECK_EQ_INT(rf_log_parse_level("debug", &l), 0);
    RF_CHECK_EQ_INT(l, RF_LOG_DEBUG);
    RF_CHECK_EQ_INT(rf_log_parse_level("loud", &l), -1);
}
