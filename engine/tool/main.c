/* main.c - reelfarm-engine: command-line access to the engine, one subcommand per file.
 *
 * `reelfarm-engine <command> [options]`; the commands are listed in commands.h (one line
 * each) and implemented in cmd_<name>.c. This file only dispatches and prints the list.
 * Exit status: 0 success, 1 the command failed, 2 usage error.
 */
#include "cpu/cpu.h"

#include <stdio.h>
#include <string.h>

#define RF_CMD(name, summary) int rf_cmd_##name(int argc, char **argv);
#include "commands.h"
#undef RF_CMD

typedef struct {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} s_cmd;

static const s_cmd s_cmds[] = {
#define RF_CMD(name, summary) {#name, summary, rf_cmd_##name},
#include "commands.h"
#undef RF_CMD
};

/* Command names are C identifiers (vae_decode); users type and see them with dashes
 * (vae-decode); both spellings are accepted. */
static int s_name_eq(const char *typed, const char *name)
{
    for (; *typed && *name; typed++, name++)
        if (*typed != *name && !(*typed == '-' && *name == '_'))
            return 0;
    return *typed == *name;
}

static void s_usage(FILE *out)
{
    fprintf(out,
            "reelfarm-engine: run parts of the reelfarm engine (the Wan2.1 model) by hand.\n\n"
            "usage: reelfarm-engine <command> [options]\n"
            "       reelfarm-engine <command> --help   (details and examples of one command)\n\n"
            "commands:\n");
    for (size_t i = 0; i < sizeof(s_cmds) / sizeof(s_cmds[0]); i++) {
        char shown[64];
        snprintf(shown, sizeof(shown), "%s", s_cmds[i].name);
        for (char *c = shown; *c; c++)
            *c = *c == '_' ? '-' : *c;
        fprintf(out, "  %-12s %s\n", shown, s_cmds[i].summary);
    }
}

int main(int argc, char **argv)
{
    rf_cpu_blas_reexec(argv); /* AVX-512 GEMM kernels on CPUs OpenBLAS does not know */
    if (argc < 2) {
        s_usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        s_usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof(s_cmds) / sizeof(s_cmds[0]); i++)
        if (s_name_eq(argv[1], s_cmds[i].name))
            return s_cmds[i].run(argc - 1, argv + 1);
    fprintf(stderr, "reelfarm-engine: unknown command '%s'\n\n", argv[1]);
    s_usage(stderr);
    return 2;
}
