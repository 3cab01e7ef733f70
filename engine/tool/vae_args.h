/* vae_args.h - the command line shared by `reelfarm-engine vae-decode` and `vae-encode`.
 *
 * Both take --vae FILE --input IN --output OUT [--segment A:B --warmup W] [--threads N];
 * one parser, so the two commands accept and refuse exactly the same things.
 */
#ifndef RF_VAE_ARGS_H
#define RF_VAE_ARGS_H

#include <stdio.h>

typedef struct rf_vae_args {
    const char *vae, *input, *output;
    long long a, b, warmup; /* --segment A:B (a = b = -1 without), --warmup W (0) */
    int segment;            /* --segment given */
    int threads;            /* 0: all cores */
} rf_vae_args;

/* Parses argv (argv[0] is skipped; cmd, e.g. "vae-decode", names it in messages). Returns -1
 * when the command should go on, else the exit status to return: 0 after --help (usage
 * printed to stdout by usage(stdout, 0)), 2 on a usage error (said on stderr). */
int rf_vae_args_parse(rf_vae_args *o, const char *cmd, int argc, char **argv,
                      int (*usage)(FILE *, int));

#endif
