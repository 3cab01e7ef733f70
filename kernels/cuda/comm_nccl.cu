/* comm_nccl.cu - the rf_comm interface on NCCL (contract in comm_nccl.h).
 *
 * NCCL is opened with dlopen the first time a group is made, and its entry points looked
 * up by name; its types come from nccl.h at build time (RF_HAVE_NCCL). Each collective
 * binds the caller's thread to the rank's GPU and queues the NCCL call on the rank's
 * backend stream; nothing waits on the host. abort() aborts every communicator of the
 * group (which unblocks ranks whose kernels wait on a failed peer) and makes every later
 * collective return RF_ECANCELED.
 */
#include "comm_nccl.h"

#include "cuda_internal.cuh"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef RF_HAVE_NCCL

#include <dlfcn.h>
#include <nccl.h>

typedef struct {
    int ok;
    char why[512];
    int version;
    ncclResult_t (*comm_init_all)(ncclComm_t *, int, const int *);
    ncclResult_t (*comm_destroy)(ncclComm_t);
    ncclResult_t (*comm_abort)(ncclComm_t);
    ncclResult_t (*all_reduce)(const void *, void *, size_t, ncclDataType_t, ncclRedOp_t,
                               ncclComm_t, cudaStream_t);
    ncclResult_t (*all_gather)(const void *, void *, size_t, ncclDataType_t, ncclComm_t,
                               cudaStream_t);
    ncclResult_t (*broadcast)(const void *, void *, size_t, ncclDataType_t, int, ncclComm_t,
                              cudaStream_t);
    const char *(*error_string)(ncclResult_t);
    ncclResult_t (*get_version)(int *);
} s_lib;

static s_lib s_nccl;
static pthread_once_t s_once = PTHREAD_ONCE_INIT;

static void s_load(void)
{
    const char *env = getenv("RF_NCCL_LIB");
    const char *names[3] = {env && *env ? env : NULL, "libnccl.so.2", "libnccl.so"};
    void *h = NULL;
    char tried[256] = "";
    size_t len = 0;
    for (int i = 0; i < 3 && !h; i++) {
        if (!names[i])
            continue;
        h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (!h && len < sizeof(tried))
            len += (size_t)snprintf(tried + len, sizeof(tried) - len, "%s%s", len ? ", " : "",
                                    names[i]);
    }
    if (!h) {
        snprintf(s_nccl.why, sizeof(s_nccl.why),
                 "NCCL library not found (tried %s); install NCCL, or set RF_NCCL_LIB to a "
                 "libnccl.so.2 (PyTorch's pip install has one under "
                 "site-packages/nvidia/nccl/lib)",
                 tried);
        return;
    }
#define SYM(field, name)                                                                     \
    do {                                                                                     \
        *(void **)&s_nccl.field = dlsym(h, name);                                            \
        if (!s_nccl.field) {                                                                 \
            snprintf(s_nccl.why, sizeof(s_nccl.why), "NCCL library lacks %s; it is too old", \
                     name);                                                                  \
            return;                                                                          \
        }                                                                                    \
    } while (0)
    SYM(comm_init_all, "ncclCommInitAll");
    SYM(comm_destroy, "ncclCommDestroy");
    SYM(comm_abort, "ncclCommAbort");
    SYM(all_reduce, "ncclAllReduce");
    SYM(all_gather, "ncclAllGather");
    SYM(broadcast, "ncclBroadcast");
    SYM(error_string, "ncclGetErrorString");
    SYM(get_version, "ncclGetVersion");
#undef SYM
    if (s_nccl.get_version(&s_nccl.version) != ncclSuccess)
        s_nccl.version = 0;
    s_nccl.ok = 1;
}

struct rf_comm_nccl_group {
    int n;
    ncclComm_t *comms;
    rf_comm *ranks;
    cudaStream_t *streams;
    int *devices;
    int aborted;
    pthread_mutex_t mu;
};

static int s_fail(rf_error *err, ncclResult_t r, const char *what, int rank)
{
    return rf_error_set(err, RF_EIO, "nccl: %s on rank %d failed: %s", what, rank,
                        s_nccl.error_string(r));
}

static int s_prepare(rf_comm_nccl_group *g, int rank, rf_error *err)
{
    if (__atomic_load_n(&g->aborted, __ATOMIC_ACQUIRE))
        return rf_error_set(err, RF_ECANCELED,
                            "collective: another rank failed and the NCCL group was aborted; "
                            "reload the model");
    cudaError_t e = cudaSetDevice(g->devices[rank]);
    return e == cudaSuccess ? 0 : rf_cuda_fail(err, e, "cudaSetDevice (collective)");
}

static int s_dtype(rf_dtype dt, ncclDataType_t *out)
{
    switch (dt) {
    case RF_DTYPE_F32: *out = ncclFloat32; return 0;
    case RF_DTYPE_BF16: *out = ncclBfloat16; return 0;
    case RF_DTYPE_F16: *out = ncclFloat16; return 0;
    case RF_DTYPE_F64: *out = ncclFloat64; return 0;
    case RF_DTYPE_I32: *out = ncclInt32; return 0;
    case RF_DTYPE_I64: *out = ncclInt64; return 0;
    case RF_DTYPE_U8: *out = ncclUint8; return 0;
    default: return -1;
    }
}

static int s_all_reduce(void *ctx, int rank, rf_tensor *t, rf_error *err)
{
    rf_comm_nccl_group *g = (rf_comm_nccl_group *)ctx;
    int rc = s_prepare(g, rank, err);
    if (rc)
        return rc;
    ncclResult_t r = s_nccl.all_reduce(t->data, t->data, rf_tensor_numel(t), ncclFloat32, ncclSum,
                                       g->comms[rank], g->streams[rank]);
    return r == ncclSuccess ? 0 : s_fail(err, r, "all_reduce", rank);
}

static int s_all_gather(void *ctx, int rank, rf_tensor *out, const rf_tensor *in, rf_error *err)
{
    rf_comm_nccl_group *g = (rf_comm_nccl_group *)ctx;
    ncclDataType_t dt;
    if (s_dtype(in->dtype, &dt))
        return rf_error_set(err, RF_EUNSUPPORTED, "nccl: all_gather of %s tensors",
                            rf_dtype_name(in->dtype));
    int rc = s_prepare(g, rank, err);
    if (rc)
        return rc;
    ncclResult_t r = s_nccl.all_gather(in->data, out->data, rf_tensor_numel(in), dt, g->comms[rank],
                                       g->streams[rank]);
    return r == ncclSuccess ? 0 : s_fail(err, r, "all_gather", rank);
}

static int s_broadcast(void *ctx, int rank, rf_tensor *t, int root, rf_error *err)
{
    rf_comm_nccl_group *g = (rf_comm_nccl_group *)ctx;
    ncclDataType_t dt;
    if (s_dtype(t->dtype, &dt))
        return rf_error_set(err, RF_EUNSUPPORTED, "nccl: broadcast of %s tensors",
                            rf_dtype_name(t->dtype));
    int rc = s_prepare(g, rank, err);
    if (rc)
        return rc;
    ncclResult_t r = s_nccl.broadcast(t->data, t->data, rf_tensor_numel(t), dt, root,
                                      g->comms[rank], g->streams[rank]);
    return r == ncclSuccess ? 0 : s_fail(err, r, "broadcast", rank);
}

static void s_abort(void *ctx)
{
    rf_comm_nccl_group *g = (rf_comm_nccl_group *)ctx;
    pthread_mutex_lock(&g->mu);
    if (!g->aborted) {
        __atomic_store_n(&g->aborted, 1, __ATOMIC_RELEASE);
        for (int r = 0; r < g->n; r++)
            if (g->comms[r]) {
                s_nccl.comm_abort(g->comms[r]);
                g->comms[r] = NULL;
            }
    }
    pthread_mutex_unlock(&g->mu);
}

static rf_comm_ops s_make_ops(void)
{
    rf_comm_ops o;
    memset(&o, 0, sizeof(o));
    o.name = "nccl";
    o.all_reduce_sum = s_all_reduce;
    o.all_gather = s_all_gather;
    o.broadcast = s_broadcast;
    o.abort = s_abort;
    return o;
}

static const rf_comm_ops s_ops = s_make_ops();

int rf_comm_nccl_available(char *buf, size_t cap)
{
    pthread_once(&s_once, s_load);
    if (!s_nccl.ok) {
        snprintf(buf, cap, "%s", s_nccl.why);
        return 0;
    }
    snprintf(buf, cap, "NCCL %d.%d.%d", s_nccl.version / 10000, (s_nccl.version / 100) % 100,
             s_nccl.version % 100);
    return 1;
}

void rf_comm_nccl_group_destroy(rf_comm_nccl_group **gp)
{
    if (!gp || !*gp)
        return;
    rf_comm_nccl_group *g = *gp;
    for (int r = 0; g->comms && r < g->n; r++)
        if (g->comms[r])
            s_nccl.comm_destroy(g->comms[r]);
    pthread_mutex_destroy(&g->mu);
    free(g->comms);
    free(g->ranks);
    free(g->streams);
    free(g->devices);
    free(g);
    *gp = NULL;
}

rf_comm_nccl_group *rf_comm_nccl_group_new(int n, rf_backend *const *backends, rf_error *err)
{
    char why[512];
    if (!rf_comm_nccl_available(why, sizeof(why))) {
        rf_error_set(err, RF_EUNSUPPORTED, "%s", why);
        return NULL;
    }
    if (n < 1 || n > 64) {
        rf_error_set(err, RF_EINVAL, "nccl: group size must be 1..64, got %d", n);
        return NULL;
    }
    for (int r = 0; r < n; r++) {
        if (!rf_backend_is_cuda(backends[r])) {
            rf_error_set(err, RF_EINVAL, "nccl: rank %d is on the %s backend; NCCL needs cuda", r,
                         rf_backend_name(backends[r]));
            return NULL;
        }
        for (int q = 0; q < r; q++)
            if (rf_backend_cuda_device(backends[q]) == rf_backend_cuda_device(backends[r])) {
                rf_error_set(err, RF_EINVAL,
                             "nccl: ranks %d and %d are both on GPU %d; NCCL needs one GPU per "
                             "rank (on one GPU use --tp 1)",
                             q, r, rf_backend_cuda_device(backends[r]));
                return NULL;
            }
    }
    rf_comm_nccl_group *g = (rf_comm_nccl_group *)calloc(1, sizeof(*g));
    if (g) {
        g->comms = (ncclComm_t *)calloc((size_t)n, sizeof(*g->comms));
        g->ranks = (rf_comm *)calloc((size_t)n, sizeof(*g->ranks));
        g->streams = (cudaStream_t *)calloc((size_t)n, sizeof(*g->streams));
        g->devices = (int *)calloc((size_t)n, sizeof(*g->devices));
    }
    if (!g || !g->comms || !g->ranks || !g->streams || !g->devices) {
        if (g) {
            free(g->comms);
            free(g->ranks);
            free(g->streams);
            free(g->devices);
        }
        free(g);
        rf_error_set(err, RF_ENOMEM, "nccl: out of memory");
        return NULL;
    }
    g->n = n;
    pthread_mutex_init(&g->mu, NULL);
    for (int r = 0; r < n; r++) {
        g->devices[r] = rf_backend_cuda_device(backends[r]);
        g->streams[r] = (cudaStream_t)rf_backend_cuda_stream(backends[r]);
        g->ranks[r].ops = &s_ops;
        g->ranks[r].ctx = g;
        g->ranks[r].rank = r;
        g->ranks[r].size = n;
    }
    ncclResult_t res = s_nccl.comm_init_all(g->comms, n, g->devices);
    if (res != ncclSuccess) {
        rf_error_set(err, RF_EIO, "nccl: ncclCommInitAll over %d GPU%s failed: %s", n,
                     n == 1 ? "" : "s", s_nccl.error_string(res));
        memset(g->comms, 0, sizeof(*g->comms) * (size_t)n);
        rf_comm_nccl_group_destroy(&g);
        return NULL;
    }
    return g;
}

rf_comm *rf_comm_nccl_rank(rf_comm_nccl_group *g, int rank)
{
    return rank >= 0 && rank < g->n ? &g->ranks[rank] : NULL;
}

#else /* no nccl.h at build time */

int rf_comm_nccl_available(char *buf, size_t cap)
{
    snprintf(buf, cap,
             "this build has no NCCL support (nccl.h was not found when it was built; set "
             "NCCL_INC=<dir with nccl.h> and rebuild)");
    return 0;
}

rf_comm_nccl_group *rf_comm_nccl_group_new(int n, rf_backend *const *backends, rf_error *err)
{
    (void)n;
    (void)backends;
    char why[256];
    rf_comm_nccl_available(why, sizeof(why));
    rf_error_set(err, RF_EUNSUPPORTED, "%s", why);
    return NULL;
}

rf_comm *rf_comm_nccl_rank(rf_comm_nccl_group *g, int rank)
{
    (void)g;
    (void)rank;
    return NULL;
}

void rf_comm_nccl_group_destroy(rf_comm_nccl_group **g)
{
    if (g)
        *g = NULL;
}

#endif
