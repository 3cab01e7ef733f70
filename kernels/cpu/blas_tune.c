/* blas_tune.c - pick OpenBLAS's AVX-512 GEMM kernels where its own detection misses them.
 *
 * Debian's OpenBLAS 0.3.21 (DYNAMIC_ARCH) chooses its kernels once, when the library is
 * loaded, and it does not know newer AVX-512 CPUs (AMD Zen 4 reports "Haswell"/"Zen"):
 * its AVX2 SGEMM then runs at about half the speed the SkylakeX kernels reach on the
 * same core. The only supported switch is the OPENBLAS_CORETYPE environment variable,
 * read at load time, so a program's main() asks rf_cpu_blas_reexec to set it and
 * re-execute itself once. A user's own OPENBLAS_CORETYPE always wins.
 */
#include "cpu.h"

#include <cblas.h>
#include <stdlib.h>
#include <strings.h>
#include <unistd.h>

const char *rf_cpu_blas_coretype_hint(void)
{
    const char *set = getenv("OPENBLAS_CORETYPE");
    if (set && *set)
        return NULL;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
        !__builtin_cpu_supports("avx512dq") || !__builtin_cpu_supports("avx512vl") ||
        !__builtin_cpu_supports("avx512cd"))
        return NULL;
    const char *core = openblas_get_corename();
    if (core && (!strcasecmp(core, "haswell") || !strcasecmp(core, "zen")))
        return "SkylakeX";
#endif
    return NULL;
}

void rf_cpu_blas_reexec(char **argv)
{
    const char *hint = rf_cpu_blas_coretype_hint();
    if (!hint || getenv("RF_BLAS_REEXEC"))
        return;
    if (setenv("OPENBLAS_CORETYPE", hint, 1) || setenv("RF_BLAS_REEXEC", "1", 1))
        return;
    execv("/proc/self/exe", argv);
    /* exec failed: carry on with the kernels already loaded */
    unsetenv("OPENBLAS_CORETYPE");
}
