/* registry.c - backend names to constructors; the CUDA one only when it was built.
 *
 * RF_HAVE_CUDA is defined by the Makefile when kernels/cuda/ was compiled with nvcc.
 */
#include "registry.h"

#include "cpu/cpu.h"
#ifdef RF_HAVE_CUDA
#include "cuda/backend_cuda.h"
#endif

#include <string.h>

int rf_backend_have_cuda(void)
{
#ifdef RF_HAVE_CUDA
    return 1;
#else
    return 0;
#endif
}

rf_backend *rf_backend_open(const char *name, int threads, int device, rf_error *err)
{
    if (!name || !strcmp(name, "cpu"))
        return rf_backend_cpu_new(threads, err);
    if (!strcmp(name, "cuda")) {
#ifdef RF_HAVE_CUDA
        return rf_backend_cuda_new(device, err);
#else
        (void)device;
        rf_error_set(err, RF_EUNSUPPORTED,
                     "backend cuda: this build has no CUDA backend (nvcc was not found when it "
                     "was built); install the CUDA toolkit and rebuild with `make CUDA=on`, or "
                     "use --backend cpu");
        return NULL;
#endif
    }
    rf_error_set(err, RF_EINVAL, "unknown backend \"%s\": use cpu or cuda", name);
    return NULL;
}
