/* dit_internal.h - the rf_dit struct, shared by the loader (dit_load.c) and the forward
 * (dit_forward.c). Nobody outside engine/dit includes it.
 *
 * Weights live in one backend buffer. Under tensor parallelism the sharded tensors hold
 * only this rank's slice: q/k/v, FFN-up, text/time embedding first layers and the time
 * projection by output rows; o, FFN-down and the embeddings' second layers by input
 * columns; the q/k RMSNorm weights by the same head slice.
 */
#ifndef RF_DIT_INTERNAL_H
#define RF_DIT_INTERNAL_H

#include "arena.h"
#include "dit.h"

typedef struct rf_dit_lin {
    rf_tensor w; /* [out, in] (this rank's slice) */
    rf_tensor b; /* [out] F32, data NULL when absent (row-split layers: ranks > 0) */
} rf_dit_lin;

typedef struct rf_dit_block {
    rf_tensor mod; /* [6 dim] F32 */
    rf_dit_lin sa_q, sa_k, sa_v, sa_o;
    rf_tensor sa_nq, sa_nk; /* [dim / tp] */
    rf_tensor n3_w, n3_b;   /* [dim] */
    rf_dit_lin ca_q, ca_k, ca_v, ca_o;
    rf_tensor ca_nq, ca_nk;
    rf_dit_lin ffn1, ffn2;
} rf_dit_block;

struct rf_dit {
    rf_dit_config cfg;
    rf_backend *be;
    rf_comm *comm;
    int rank, size;
    int64_t dim_l, ffn_l, heads_l; /* this rank's slice widths */
    rf_buffer *wbuf;
    size_t wbytes;
    rf_dit_lin patch; /* [dim, in_dim * pt*ph*pw] */
    rf_dit_lin time0, time2, tproj, text0, text2, head;
    rf_tensor head_mod; /* [2 dim] */
    rf_dit_block *blocks;
    /* forward state, sized by rf_dit_reserve */
    rf_arena *arena;
    int64_t max_batch, max_tokens;
    double *rope_host; /* 2 x max_tokens x head_dim/2 */
    float *tsin_host;  /* max_batch x freq_dim */
};

#endif
