/* cmd_info.c - `reelfarm-engine info`: what compute this build and machine provide.
 *
 * Prints the backend, the thread count it would use, the CPU vector extensions and the
 * BLAS library's own description, so a user can check a worker before trusting a bench.
 */
#include "cpu/cpu.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int rf_cmd_info(int argc, char **argv)
{
    int threads = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: reelfarm-engine info [--threads N]\n\n"
                   "Shows the compute backend, how many threads it runs (default: all cores),\n"
                   "the CPU's vector extensions and the BLAS library used for matrix products.\n");
            return 0;
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            threads = atoi(argv[++i]);
        } else {
            fprintf(stderr, "info: unknown option '%s' (see --help)\n", argv[i]);
            return 2;
        }
    }
    rf_error err = {0};
    rf_backend *be = rf_backend_cpu_new(threads, &err);
    if (!be) {
        fprintf(stderr, "info: %s\n", err.msg);
        return 1;
    }
    __builtin_cpu_init();
    printf("backend: %s\nthreads: %d\n", rf_backend_name(be), rf_backend_cpu_threads(be));
    printf("cpu: avx2=%d fma=%d avx512f=%d\n", __builtin_cpu_supports("avx2") != 0,
           __builtin_cpu_supports("fma") != 0, __builtin_cpu_supports("avx512f") != 0);
    printf("blas: %s (core %s)\n", openblas_get_config(), openblas_get_corename());
    rf_backend_destroy(&be);
    return 0;
}
