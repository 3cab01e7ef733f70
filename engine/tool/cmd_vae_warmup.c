/* cmd_vae_warmup.c - `reelfarm-engine vae-warmup`: measure a VAE's segment warm-up, record it.
 *
 * Decodes a random latent timeline whole and as segments with w = 0..max warm-up frames
 * (rf_vae_measure_warmup) and writes JSON beside the VAE (default: vae_warmup.json in the
 * VAE's folder) with the smallest w within one 8-bit level (max abs * 127.5 <= 1) and
 * within 1e-3, plus the per-w errors, so the farm picks its DECODE warm-up from a file.
 */
#include "atomic_file.h"
#include "cpu/cpu.h"
#include "vae/vae.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int s_usage(FILE *f, int rc)
{
    fprintf(f,
            "usage: reelfarm-engine vae-warmup --vae FILE [--latent HxW] [--max W] [--seed S]\n"
            "                                  [--output JSON] [--threads N]\n\n"
            "Measures the warm-up (latent frames decoded and dropped before a segment) at which\n"
            "a segment decode equals the whole-timeline decode to within one 8-bit level\n"
            "(max abs * 127.5 <= 1 on [-1,1]) and to within 1e-3, trying w = 0..W (default 16)\n"
            "on random N(0,1) latents of HxW (default 8x8). Writes JSON (default:\n"
            "vae_warmup.json beside FILE): warmup_8bit, warmup_1e3 (-1: not reached by W),\n"
            "max_abs per w.\n"
            "Example: reelfarm-engine vae-warmup --vae models/reel-tiny/vae.safetensors\n");
    return rc;
}

int rf_cmd_vae_warmup(int argc, char **argv)
{
    const char *vae_path = NULL, *outp = NULL;
    int threads = 0, h = 8, w = 8, maxw = 16;
    unsigned long long seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(o, "--help") || !strcmp(o, "-h"))
            return s_usage(stdout, 0);
        else if (!strcmp(o, "--vae") && more)
            vae_path = argv[++i];
        else if (!strcmp(o, "--output") && more)
            outp = argv[++i];
        else if (!strcmp(o, "--threads") && more)
            threads = atoi(argv[++i]);
        else if (!strcmp(o, "--max") && more)
            maxw = atoi(argv[++i]);
        else if (!strcmp(o, "--seed") && more)
            seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(o, "--latent") && more) {
            if (sscanf(argv[++i], "%dx%d", &h, &w) != 2 || h < 1 || w < 1 || h > 4096 || w > 4096) {
                fprintf(stderr, "vae-warmup: --latent wants HxW, got '%s'\n", argv[i]);
                return 2;
            }
        } else {
            fprintf(stderr, "vae-warmup: unknown or incomplete option '%s' (see --help)\n", o);
            return 2;
        }
    }
    if (!vae_path || maxw < 0 || maxw > 256) {
        fprintf(stderr, "vae-warmup: --vae is required and --max must be 0..256 (see --help)\n");
        return 2;
    }
    char defpath[4096];
    if (!outp) {
        const char *slash = strrchr(vae_path, '/');
        int dl = slash ? (int)(slash - vae_path) : 1;
        snprintf(defpath, sizeof(defpath), "%.*s/vae_warmup.json", dl, slash ? vae_path : ".");
        outp = defpath;
    }
    rf_error err = {0};
    int rc = 1;
    rf_backend *be = rf_backend_cpu_new(threads, &err);
    rf_vae *vae = be ? rf_vae_load(vae_path, be, &err) : NULL;
    double *mx = calloc((size_t)maxw + 1, sizeof(double));
    char *json = malloc(64 + 32 * ((size_t)maxw + 1) + 4096);
    int w8 = -1, w3 = -1;
    if (!vae || !mx || !json)
        goto done;
    if (rf_vae_measure_warmup(vae, h, w, maxw, seed, mx, &w8, &w3, &err))
        goto done;
    int n = sprintf(json,
                    "{\n  \"vae\": \"%s\",\n  \"latent_hw\": [%d, %d],\n  \"seed\": %llu,\n"
                    "  \"max_tested\": %d,\n  \"warmup_8bit\": %d,\n  \"warmup_1e3\": %d,\n"
                    "  \"max_abs\": [",
                    strrchr(vae_path, '/') ? strrchr(vae_path, '/') + 1 : vae_path, h, w, seed,
                    maxw, w8, w3);
    for (int i = 0; i <= maxw; i++)
        n += sprintf(json + n, "%s%.6g", i ? ", " : "", mx[i]);
    n += sprintf(json + n, "]\n}\n");
    if (rf_atomic_write(outp, json, (size_t)n, &err))
        goto done;
    printf("vae-warmup: %s\n  w  max_abs     8-bit levels\n", outp);
    for (int i = 0; i <= maxw; i++)
        printf("  %-2d %-11.4g %.3f\n", i, mx[i], mx[i] * 127.5);
    printf("warm-up within one 8-bit level: %d; within 1e-3: %d (-1: not reached by %d)\n", w8, w3,
           maxw);
    rc = 0;
done:
    if (rc)
        fprintf(stderr, "vae-warmup: %s\n", err.msg[0] ? err.msg : "out of memory");
    free(mx);
    free(json);
    rf_vae_destroy(&vae);
    rf_backend_destroy(&be);
    return rc;
}
