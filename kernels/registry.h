/* registry.h - opening a backend by name ("cpu", "cuda"), whatever this build contains.
 *
 * Tools and workers take `--backend NAME`; this is the one place that maps the name to a
 * constructor, so a build without the CUDA toolkit still links and answers "cuda" with
 * an error that says why (built without nvcc) instead of failing to link or crashing.
 */
#ifndef RF_REGISTRY_H
#define RF_REGISTRY_H

#include "backend.h"
#include "error.h"

/* Opens backend `name`: "cpu" with `threads` worker threads (0 = all cores), or "cuda"
 * on GPU `device`. NULL + err naming the backend and what to do: an unknown name lists
 * the known ones; "cuda" in a build without CUDA says to rebuild with CUDA=on; "cuda" on
 * a machine without a GPU says "no CUDA GPU available: ...". */
rf_backend *rf_backend_open(const char *name, int threads, int device, rf_error *err);
/* 1 when this build contains the CUDA backend (nvcc was found at build time). */
int rf_backend_have_cuda(void);

#endif
