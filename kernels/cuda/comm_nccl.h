/* comm_nccl.h - collectives across GPUs through NCCL: one rank per GPU, one process.
 *
 * The group is made once from the ranks' CUDA backends (one per GPU, in rank order) with
 * ncclCommInitAll; each rank's collectives are queued on its backend's stream, so they
 * are ordered with that rank's ops and never wait on the host. NCCL refuses two ranks on
 * one GPU, so on a one-GPU machine the only NCCL group is TP = 1 (still run through NCCL);
 * the multi-rank math is covered by the CPU collective's tests. Sums are identical on
 * every rank (NCCL reduces each chunk once and distributes it) and deterministic for a
 * given GPU count and topology, but not in rank order like the CPU group. The library is
 * opened at run time (libnccl.so.2, or the file RF_NCCL_LIB names), so binaries start on
 * machines without it. An aborted group stays aborted: reload the model.
 */
#ifndef RF_COMM_NCCL_H
#define RF_COMM_NCCL_H

#ifdef __cplusplus
extern "C" {
#endif

#include "../backend.h"
#include "../collective.h"

typedef struct rf_comm_nccl_group rf_comm_nccl_group;

/* A group of n ranks; rank r runs on backends[r] (a CUDA backend; all on distinct GPUs).
 * NULL + err: NCCL not found (names what was tried and what to do), a GPU used twice, or
 * NCCL's own failure. */
rf_comm_nccl_group *rf_comm_nccl_group_new(int n, rf_backend *const *backends, rf_error *err);
/* Rank r's handle (valid while the group lives). */
rf_comm *rf_comm_nccl_rank(rf_comm_nccl_group *g, int rank);
/* Frees the group (no rank may be inside a collective); NULLs *g; safe on NULL. */
void rf_comm_nccl_group_destroy(rf_comm_nccl_group **g);
/* "NCCL 2.27.3" or why it is unavailable, into buf; returns 1 when it can be loaded. */
int rf_comm_nccl_available(char *buf, size_t cap);

#ifdef __cplusplus
}
#endif

#endif
