/* crash.c - RF_CRASH_AT=NAME:N (see crash.h). The variable is read once; a malformed
 * value is reported on stderr and ignored. Single-threaded callers only (the counter is
 * not atomic), which is what the coordinator's loop is. */
#include "crash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int s_read;
static char s_name[64];
static long s_left = -1;

static void s_init(void)
{
    s_read = 1;
    const char *v = getenv("RF_CRASH_AT");
    if (!v || !*v)
        return;
    const char *colon = strrchr(v, ':');
    char *end = NULL;
    long n = colon ? strtol(colon + 1, &end, 10) : 1;
    size_t len = colon ? (size_t)(colon - v) : strlen(v);
    if ((colon && (!*(colon + 1) || *end || n < 1)) || len == 0 || len >= sizeof(s_name)) {
        fprintf(stderr, "RF_CRASH_AT='%s' ignored: expected NAME:N with N >= 1\n", v);
        return;
    }
    memcpy(s_name, v, len);
    s_name[len] = 0;
    s_left = n;
}

int rf_crash_armed(const char *name)
{
    if (!s_read)
        s_init();
    return s_left > 0 && strcmp(name, s_name) == 0;
}

void rf_crash_point(const char *name)
{
    if (!s_read)
        s_init();
    if (s_left < 0 || strcmp(name, s_name) != 0)
        return;
    if (--s_left > 0)
        return;
    static const char head[] = "crash point reached: ";
    ssize_t r = write(2, head, sizeof(head) - 1);
    r += write(2, name, strlen(name));
    r += write(2, "\n", 1);
    (void)r;
    _exit(RF_CRASH_EXIT);
}
