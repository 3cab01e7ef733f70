/* main.c - reelctl: submit, watch and steer reelfarm jobs; render on one machine.
 *
 * Strips the options every command takes (--api, --json, --timeout) wherever they
 * appear and dispatches to the command (cli/commands.h). Exit status: 0 ok, 1 failed,
 * 2 usage, 3 coordinator unreachable.
 */
#include "reelctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name, *summary;
    int (*run)(rf_ctl *, int, char **);
} s_cmd;

static const s_cmd s_cmds[] = {
#define RF_CMD(name, summary) {#name, summary, rf_ctl_##name},
#include "commands.h"
#undef RF_CMD
};

static void s_usage(FILE *f)
{
    fprintf(f, "reelctl: operate a reelfarm render farm.\n\n"
               "usage: reelctl [--api ENDPOINT] [--key K --server-key S] [--json] [--timeout SEC]\n"
               "               <command> [args]\n"
               "       reelctl <command> --help\n\n"
               "commands:\n");
    for (size_t i = 0; i < sizeof(s_cmds) / sizeof(s_cmds[0]); i++)
        fprintf(f, "  %-8s %s\n", s_cmds[i].name, s_cmds[i].summary);
    fprintf(f, "\nThe coordinator's API endpoint comes from --api or REELFARM_API, e.g.\n"
               "  export REELFARM_API=tcp://farm.example:5556\n"
               "A coordinator serving CURVE needs --key (this client's BASE.key_secret, made by\n"
               "`reelctl keygen BASE`) and --server-key (the coordinator's public .key file), or\n"
               "REELFARM_KEY and REELFARM_SERVER_KEY; add the client's public key to the\n"
               "coordinator's allowed-client-keys file.\n"
               "`reelctl render` needs neither: it starts its own private farm.\n");
}

int main(int argc, char **argv)
{
    rf_ctl ctl = {NULL, 0, 10000, getenv("REELFARM_KEY"), getenv("REELFARM_SERVER_KEY")};
    if (ctl.key && !*ctl.key)
        ctl.key = NULL;
    if (ctl.server_key && !*ctl.server_key)
        ctl.server_key = NULL;
    char **rest = calloc((size_t)argc + 1, sizeof(char *));
    int n = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--api") && i + 1 < argc) {
            ctl.api = argv[++i];
        } else if (!strcmp(argv[i], "--key") && i + 1 < argc) {
            ctl.key = argv[++i];
        } else if (!strcmp(argv[i], "--server-key") && i + 1 < argc) {
            ctl.server_key = argv[++i];
        } else if (!strcmp(argv[i], "--json")) {
            ctl.json = 1;
        } else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
            double s = atof(argv[++i]);
            if (s <= 0 || s > 3600) {
                fprintf(stderr, "reelctl: --timeout needs seconds in (0, 3600]\n");
                free(rest);
                return 2;
            }
            ctl.timeout_ms = (int)(s * 1000);
        } else {
            rest[n++] = argv[i];
        }
    }
    if (n == 0 || !strcmp(rest[0], "--help") || !strcmp(rest[0], "-h") ||
        !strcmp(rest[0], "help")) {
        s_usage(n == 0 ? stderr : stdout);
        free(rest);
        return n == 0 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof(s_cmds) / sizeof(s_cmds[0]); i++) {
        if (!strcmp(rest[0], s_cmds[i].name)) {
            int rc = s_cmds[i].run(&ctl, n, rest);
            free(rest);
            return rc;
        }
    }
    fprintf(stderr, "reelctl: unknown command '%s'\n\n", rest[0]);
    s_usage(stderr);
    free(rest);
    return 2;
}
