/* backend_cuda.h - the CUDA backend: constructor and queries (C interface).
 *
 * One backend drives one GPU through one CUDA stream: every op is queued on that stream
 * and returns at once; rf_backend download and synchronize wait for it. Memory is device
 * memory (cudaMalloc), so tensor data pointers are never dereferenced on the host. Matrices
 * are multiplied in bf16 with f32 accumulation (cuBLASLt); everything else runs in f32.
 * Only built when nvcc was found (RF_HAVE_CUDA); kernels/backend_select.c says so otherwise.
 */
#ifndef RF_BACKEND_CUDA_H
#define RF_BACKEND_CUDA_H

#ifdef __cplusplus
extern "C" {
#endif

#include "../backend.h"

#include <stddef.h>

/* Creates a backend on GPU `device` (0-based, as nvidia-smi numbers them unless
 * CUDA_VISIBLE_DEVICES says otherwise). NULL + err: "no CUDA GPU available: ..." when the
 * driver or a GPU is missing, or names the device and the count when it is out of range. */
rf_backend *rf_backend_cuda_new(int device, rf_error *err);
/* 1 when be is a CUDA backend. */
int rf_backend_is_cuda(const rf_backend *be);
/* The device index of a CUDA backend. */
int rf_backend_cuda_device(const rf_backend *be);
/* Its stream (a cudaStream_t), for collectives that must queue on the same stream. */
void *rf_backend_cuda_stream(const rf_backend *be);
/* Number of GPUs visible (0 with a reason in why[cap] when there are none). */
int rf_cuda_device_count(char *why, size_t cap);
/* Writes "NVIDIA H200, 139.8 GiB, sm_90, 132 SMs" for device d into buf. */
const char *rf_cuda_device_name(int device, char *buf, size_t cap);
/* Device bytes this backend holds now (its buffers) and the most it ever held. */
void rf_backend_cuda_memory(const rf_backend *be, size_t *current, size_t *peak);
/* Seconds per call of a bf16 n x n x n GEMM (bf16 out, f32 accumulate, cuBLASLt, random
 * data), the mean of `reps` calls after 3 warm-ups: the peak MFU is measured against.
 * Allocates its three matrices for the duration of the call. -1 + err on failure. */
double rf_cuda_bench_gemm(rf_backend *be, int n, int reps, rf_error *err);
/* Seconds spent by the work queued on be's stream between two calls (CUDA events):
 * rf_cuda_timer_start, then queue work, then rf_cuda_timer_stop returns the time. */
int rf_cuda_timer_start(rf_backend *be, rf_error *err);
double rf_cuda_timer_stop(rf_backend *be, rf_error *err);

#ifdef __cplusplus
}
#endif

#endif
