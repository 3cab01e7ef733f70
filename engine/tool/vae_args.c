/* vae_args.c - the command line shared by `reelfarm-engine vae-decode` and `vae-encode`.
 *
 * See vae_args.h. Only parses and checks the flags; never opens a file.
 */
#include "vae_args.h"

#include <stdlib.h>
#include <string.h>

int rf_vae_args_parse(rf_vae_args *o, const char *cmd, int argc, char **argv,
                      int (*usage)(FILE *, int))
{
    memset(o, 0, sizeof(*o));
    o->a = o->b = -1;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(f, "--help") || !strcmp(f, "-h"))
            return usage(stdout, 0);
        else if (!strcmp(f, "--vae") && more)
            o->vae = argv[++i];
        else if (!strcmp(f, "--input") && more)
            o->input = argv[++i];
        else if (!strcmp(f, "--output") && more)
            o->output = argv[++i];
        else if (!strcmp(f, "--threads") && more)
            o->threads = atoi(argv[++i]);
        else if (!strcmp(f, "--warmup") && more)
            o->warmup = atoll(argv[++i]);
        else if (!strcmp(f, "--segment") && more) {
            o->segment = 1;
            if (sscanf(argv[++i], "%lld:%lld", &o->a, &o->b) != 2) {
                fprintf(stderr, "%s: --segment wants A:B, got '%s'\n", cmd, argv[i]);
                return 2;
            }
        } else {
            fprintf(stderr, "%s: unknown or incomplete option '%s' (see --help)\n", cmd, f);
            return 2;
        }
    }
    if (!o->vae || !o->input || !o->output) {
        fprintf(stderr, "%s: --vae, --input and --output are required (see --help)\n", cmd);
        return 2;
    }
    if (o->warmup < 0 || (!o->segment && o->warmup)) {
        fprintf(stderr, "%s: --warmup needs --segment and must be >= 0\n", cmd);
        return 2;
    }
    return -1;
}
