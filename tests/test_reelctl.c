/* test_reelctl.c - reelctl as a user meets it: help, usage errors, an unreachable
 * coordinator, a bad spec refused before anything starts. */
#include "rf_test.h"
#include "support/proc.h"

#include <stdio.h>
#include <stdlib.h>

/* Runs reelctl with args; returns its exit status and its output in *log (caller frees). */
static int s_run(const char *const *args, char **log)
{
    char bin[1024];
    rf_proc_bin(bin, sizeof(bin), "reelctl");
    const char *argv[16] = {bin};
    int n = 1;
    for (; args[n - 1] && n < 15; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    const char *env[] = {"REELFARM_API", NULL};
    rf_error err;
    rf_proc *p = rf_proc_start(argv, env, &err);
    RF_CHECK_MSG(p, "%s", err.msg);
    int status = -1;
    RF_CHECK_MSG(rf_proc_wait(p, 30000, &status, &err) == 0, "%s", err.msg);
    *log = rf_proc_log(p, NULL);
    rf_proc_destroy(&p);
    return status;
}

RF_TEST(help_lists_every_command)
{
    char *log;
    const char *a[] = {"--help", NULL};
    RF_CHECK_EQ_INT(s_run(a, &log), 0);
    RF_CHECK_CONTAINS(log, "submit");
    RF_CHECK_CONTAINS(log, "render");
    RF_CHECK_CONTAINS(log, "workers");
    RF_CHECK_CONTAINS(log, "REELFARM_API");
    free(log);
    const char *b[] = {"render", "--help", NULL};
    RF_CHECK_EQ_INT(s_run(b, &log), 0);
    RF_CHECK_CONTAINS(log, "private farm");
    free(log);
}

RF_TEST(unknown_command_is_a_usage_error)
{
    char *log;
    const char *a[] = {"frobnicate", NULL};
    RF_CHECK_EQ_INT(s_run(a, &log), 2);
    RF_CHECK_CONTAINS(log, "unknown command 'frobnicate'");
    free(log);
}

RF_TEST(no_endpoint_says_how_to_give_one)
{
    char *log;
    const char *a[] = {"jobs", NULL};
    RF_CHECK_EQ_INT(s_run(a, &log), 3);
    RF_CHECK_CONTAINS(log, "--api ENDPOINT");
    RF_CHECK_CONTAINS(log, "REELFARM_API");
    free(log);
}

RF_TEST(unreachable_coordinator_is_reported_not_hung)
{
    char *log, ep[600], sock[512];
    rf_test_path(sock, sizeof(sock), "nobody.sock");
    snprintf(ep, sizeof(ep), "ipc://%s", sock);
    const char *a[] = {"--api", ep, "--timeout", "1", "status", NULL};
    RF_CHECK_EQ_INT(s_run(a, &log), 3);
    RF_CHECK_CONTAINS(log, "cannot reach the coordinator");
    RF_CHECK_CONTAINS(log, ep);
    free(log);
}

RF_TEST(render_refuses_a_bad_spec_before_starting_a_farm)
{
    char *log, spec[512];
    rf_test_path(spec, sizeof(spec), "bad.yaml");
    const char *text = "name: x\nmodel: reel-tiny\nwidth: 100\nshots:\n  - prompt: a\n"
                       "    seconds: 2\n";
    RF_CHECK_EQ_INT(rf_test_write_file(spec, text, strlen(text)), 0);
    const char *a[] = {"render", spec, NULL};
    RF_CHECK_EQ_INT(s_run(a, &log), 1);
    RF_CHECK_CONTAINS(log, "bad.yaml:3");
    RF_CHECK_CONTAINS(log, "width");
    RF_CHECK(strstr(log, "private farm") == NULL);
    free(log);
}
