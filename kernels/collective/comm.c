/* comm.c - the backend-independent side of collectives: argument checks and dispatch.
 *
 * A NULL comm is a group of one, so single-rank code calls the same functions (its
 * all_gather is a host memmove: host memory only). A comm of size 1 still dispatches, so a
 * one-GPU NCCL group runs its collectives through NCCL.
 */
#include "collective.h"

#include <string.h>

int rf_comm_all_reduce_sum(rf_comm *comm, rf_tensor *t, rf_error *err)
{
    if (t->dtype != RF_DTYPE_F32)
        return rf_error_set(err, RF_ESHAPE, "all_reduce: tensors must be F32");
    if (!comm)
        return 0;
    return comm->ops->all_reduce_sum(comm->ctx, comm->rank, t, err);
}

int rf_comm_all_gather(rf_comm *comm, rf_tensor *out, const rf_tensor *in, rf_error *err)
{
    int n = comm ? comm->size : 1;
    if (out->dtype != in->dtype || rf_tensor_numel(out) != (size_t)n * rf_tensor_numel(in))
        return rf_error_set(
            err, RF_ESHAPE,
            "all_gather: out holds %zu elements, expected %d x %zu of the same dtype",
            rf_tensor_numel(out), n, rf_tensor_numel(in));
    if (!comm) {
        memmove(out->data, in->data, rf_tensor_nbytes(in));
        return 0;
    }
    return comm->ops->all_gather(comm->ctx, comm->rank, out, in, err);
}

int rf_comm_broadcast(rf_comm *comm, rf_tensor *t, int root, rf_error *err)
{
    if (!comm)
        return 0;
    if (root < 0 || root >= comm->size)
        return rf_error_set(err, RF_EINVAL, "broadcast: root %d outside 0..%d", root,
                            comm->size - 1);
    return comm->ops->broadcast(comm->ctx, comm->rank, t, root, err);
}

void rf_comm_abort(rf_comm *comm)
{
    if (comm)
        comm->ops->abort(comm->ctx);
}
