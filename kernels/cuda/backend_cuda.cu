/* backend_cuda.cu - the CUDA backend's table, device memory, copies and creation.
 *
 * Creation checks the driver and the device first, so a machine without a GPU gets one
 * clear error ("no CUDA GPU available: ...") instead of a failure deep inside an op. The
 * backend owns one non-blocking stream, one cuBLASLt handle and its workspace; buffers are
 * cudaMalloc'd (256-byte aligned) and their sizes kept in a host list for the memory
 * report. Uploads are queued on the stream (the driver stages a pageable source before
 * the call returns); downloads wait for the stream. Nothing is allocated on the device
 * after creation except the buffers callers ask for.
 */
#include "cuda_internal.cuh"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RF_CUDA_LT_WORKSPACE (32u << 20)

static __thread int s_bound_device = -1;

typedef struct {
    void *ptr;
    size_t bytes;
} s_block;

typedef struct {
    rf_cuda_ctx c; /* first: ops receive &c */
    pthread_mutex_t mu;
    s_block *blocks;
    size_t nblocks, cap;
} s_backend;

int rf_cuda_fail(rf_error *err, cudaError_t e, const char *what)
{
    return rf_error_set(err, e == cudaErrorMemoryAllocation ? RF_ENOMEM : RF_EIO,
                        "cuda: %s failed: %s (%s)", what, cudaGetErrorString(e),
                        cudaGetErrorName(e));
}

int rf_cuda_bind(rf_cuda_ctx *c, rf_error *err)
{
    if (s_bound_device == c->device)
        return 0;
    cudaError_t e = cudaSetDevice(c->device);
    if (e != cudaSuccess)
        return rf_cuda_fail(err, e, "cudaSetDevice");
    s_bound_device = c->device;
    return 0;
}

int rf_cuda_launched(rf_error *err, const char *op)
{
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess)
        return 0;
    return rf_error_set(err, RF_EIO, "cuda: launching %s failed: %s (%s)", op,
                        cudaGetErrorString(e), cudaGetErrorName(e));
}

static void s_destroy(void *ctx)
{
    s_backend *B = (s_backend *)ctx;
    if (!B)
        return;
    rf_cuda_ctx *c = &B->c;
    cudaSetDevice(c->device);
    s_bound_device = c->device;
    if (c->stream)
        cudaStreamSynchronize(c->stream);
    rf_cuda_linear_release(c);
    if (c->lt)
        cublasLtDestroy(c->lt);
    if (c->lt_workspace)
        cudaFree(c->lt_workspace);
    if (c->stream)
        cudaStreamDestroy(c->stream);
    for (size_t i = 0; i < B->nblocks; i++)
        cudaFree(B->blocks[i].ptr);
    free(B->blocks);
    pthread_mutex_destroy(&B->mu);
    free(B);
}

static void *s_alloc(void *ctx, size_t bytes)
{
    s_backend *B = (s_backend *)ctx;
    rf_cuda_ctx *c = &B->c;
    if (rf_cuda_bind(c, NULL))
        return NULL;
    pthread_mutex_lock(&B->mu);
    if (B->nblocks == B->cap) {
        size_t cap = B->cap ? 2 * B->cap : 16;
        s_block *nb = (s_block *)realloc(B->blocks, cap * sizeof(*nb));
        if (!nb) {
            pthread_mutex_unlock(&B->mu);
            return NULL;
        }
        B->blocks = nb;
        B->cap = cap;
    }
    void *p = NULL;
    if (cudaMalloc(&p, bytes) != cudaSuccess) {
        cudaGetLastError(); /* clear it so the next op is not blamed for this one */
        pthread_mutex_unlock(&B->mu);
        return NULL;
    }
    B->blocks[B->nblocks++] = (s_block){p, bytes};
    c->mem_current += bytes;
    if (c->mem_current > c->mem_peak)
        c->mem_peak = c->mem_current;
    pthread_mutex_unlock(&B->mu);
    return p;
}

static void s_free(void *ctx, void *ptr)
{
    s_backend *B = (s_backend *)ctx;
    if (!ptr)
        return;
    rf_cuda_bind(&B->c, NULL);
    /* Work queued on the stream may still read this memory: wait for it first. */
    cudaStreamSynchronize(B->c.stream);
    pthread_mutex_lock(&B->mu);
    for (size_t i = 0; i < B->nblocks; i++)
        if (B->blocks[i].ptr == ptr) {
            B->c.mem_current -= B->blocks[i].bytes;
            B->blocks[i] = B->blocks[--B->nblocks];
            break;
        }
    pthread_mutex_unlock(&B->mu);
    cudaFree(ptr);
}

static int s_upload(void *ctx, void *dst, const void *src, size_t n, rf_error *err)
{
    rf_cuda_ctx *c = (rf_cuda_ctx *)ctx;
    int rc = rf_cuda_bind(c, err);
    if (rc || n == 0)
        return rc;
    cudaError_t e = cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, c->stream);
    return e == cudaSuccess ? 0 : rf_cuda_fail(err, e, "upload (host to device copy)");
}

static int s_download(void *ctx, void *dst, const void *src, size_t n, rf_error *err)
{
    rf_cuda_ctx *c = (rf_cuda_ctx *)ctx;
    int rc = rf_cuda_bind(c, err);
    if (rc || n == 0)
        return rc;
    cudaError_t e = cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, c->stream);
    if (e == cudaSuccess)
        e = cudaStreamSynchronize(c->stream);
    return e == cudaSuccess ? 0 : rf_cuda_fail(err, e, "download (device to host copy)");
}

static int s_sync(void *ctx, rf_error *err)
{
    rf_cuda_ctx *c = (rf_cuda_ctx *)ctx;
    int rc = rf_cuda_bind(c, err);
    if (rc)
        return rc;
    cudaError_t e = cudaStreamSynchronize(c->stream);
    return e == cudaSuccess ? 0 : rf_cuda_fail(err, e, "synchronize (a queued op)");
}

static rf_dtype s_matrix_dtype(void *ctx)
{
    (void)ctx;
    return RF_DTYPE_BF16;
}

static rf_backend_ops s_make_ops(void)
{
    rf_backend_ops o;
    memset(&o, 0, sizeof(o));
    o.name = "cuda";
    o.destroy = s_destroy;
    o.alloc = s_alloc;
    o.free = s_free;
    o.upload = s_upload;
    o.download = s_download;
    o.synchronize = s_sync;
    o.scratch_linear = rf_cuda_scratch_linear;
    o.scratch_attention = rf_cuda_scratch_attention;
    o.linear = rf_cuda_linear;
    o.layer_norm = rf_cuda_layer_norm;
    o.sumsq_rows = rf_cuda_sumsq_rows;
    o.rms_apply = rf_cuda_rms_apply;
    o.rope = rf_cuda_rope;
    o.attention = rf_cuda_attention;
    o.unary = rf_cuda_unary;
    o.binary = rf_cuda_binary;
    o.scale = rf_cuda_scale;
    o.fill = rf_cuda_fill;
    o.copy = rf_cuda_copy;
    o.modulate = rf_cuda_modulate;
    o.gated_add = rf_cuda_gated_add;
    o.patchify = rf_cuda_patchify;
    o.unpatchify = rf_cuda_unpatchify;
    o.matrix_dtype = s_matrix_dtype;
    return o;
}

static const rf_backend_ops s_cuda_ops = s_make_ops();

int rf_cuda_device_count(char *why, size_t cap)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n < 1) {
        if (why && cap)
            snprintf(why, cap, "%s",
                     e != cudaSuccess ? cudaGetErrorString(e) : "the driver reports 0 devices");
        cudaGetLastError();
        return 0;
    }
    return n;
}

const char *rf_cuda_device_name(int device, char *buf, size_t cap)
{
    cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, device) != cudaSuccess) {
        cudaGetLastError();
        snprintf(buf, cap, "cuda device %d (properties unavailable)", device);
        return buf;
    }
    snprintf(buf, cap, "%s, %.1f GiB, sm_%d%d, %d SMs", p.name,
             (double)p.totalGlobalMem / (1024.0 * 1024.0 * 1024.0), p.major, p.minor,
             p.multiProcessorCount);
    return buf;
}

rf_backend *rf_backend_cuda_new(int device, rf_error *err)
{
    char why[256] = "";
    int n = rf_cuda_device_count(why, sizeof(why));
    if (n == 0) {
        rf_error_set(err, RF_EUNSUPPORTED,
                     "no CUDA GPU available: %s (check that the NVIDIA driver is installed and "
                     "nvidia-smi lists a GPU, or use --backend cpu)",
                     why);
        return NULL;
    }
    if (device < 0 || device >= n) {
        rf_error_set(err, RF_EINVAL,
                     "cuda device %d does not exist: this machine has %d GPU%s (0..%d)", device, n,
                     n == 1 ? "" : "s", n - 1);
        return NULL;
    }
    cudaDeviceProp p;
    cudaError_t e = cudaGetDeviceProperties(&p, device);
    if (e != cudaSuccess) {
        rf_cuda_fail(err, e, "cudaGetDeviceProperties");
        return NULL;
    }
    if (p.major < 8) {
        rf_error_set(err, RF_EUNSUPPORTED,
                     "cuda device %d (%s) has compute capability %d.%d; the CUDA backend needs "
                     "8.0 or newer (A100, H100, RTX 30xx and later) for bf16 tensor cores",
                     device, p.name, p.major, p.minor);
        return NULL;
    }
    rf_backend *be = (rf_backend *)calloc(1, sizeof(*be));
    s_backend *B = (s_backend *)calloc(1, sizeof(*B));
    if (!be || !B) {
        free(be);
        free(B);
        rf_error_set(err, RF_ENOMEM, "cuda backend: out of host memory");
        return NULL;
    }
    pthread_mutex_init(&B->mu, NULL);
    rf_cuda_ctx *c = &B->c;
    c->device = device;
    c->sms = p.multiProcessorCount;
    c->smem_optin = p.sharedMemPerBlockOptin;
    be->ops = &s_cuda_ops;
    be->ctx = B;
    const char *what = "cudaSetDevice";
    s_bound_device = -1;
    e = cudaSetDevice(device);
    if (e == cudaSuccess) {
        s_bound_device = device;
        what = "cudaStreamCreate";
        e = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking);
    }
    if (e == cudaSuccess) {
        what = "allocating the cuBLASLt workspace";
        e = cudaMalloc(&c->lt_workspace, RF_CUDA_LT_WORKSPACE);
        if (e == cudaSuccess)
            c->lt_workspace_bytes = RF_CUDA_LT_WORKSPACE;
    }
    if (e != cudaSuccess) {
        rf_cuda_fail(err, e, what);
        rf_backend_destroy(&be);
        return NULL;
    }
    cublasStatus_t st = cublasLtCreate(&c->lt);
    if (st != CUBLAS_STATUS_SUCCESS) {
        rf_error_set(err, RF_EIO, "cuda: cublasLtCreate failed (status %d)", (int)st);
        c->lt = NULL;
        rf_backend_destroy(&be);
        return NULL;
    }
    return be;
}

int rf_backend_is_cuda(const rf_backend *be)
{
    return be && be->ops == &s_cuda_ops;
}

int rf_backend_cuda_device(const rf_backend *be)
{
    return ((const rf_cuda_ctx *)be->ctx)->device;
}

void *rf_backend_cuda_stream(const rf_backend *be)
{
    return (void *)((const rf_cuda_ctx *)be->ctx)->stream;
}

void rf_backend_cuda_memory(const rf_backend *be, size_t *current, size_t *peak)
{
    s_backend *B = (s_backend *)be->ctx;
    pthread_mutex_lock(&B->mu);
    if (current)
        *current = B->c.mem_current + B->c.lt_workspace_bytes;
    if (peak)
        *peak = B->c.mem_peak + B->c.lt_workspace_bytes;
    pthread_mutex_unlock(&B->mu);
}
