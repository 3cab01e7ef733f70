/* test_collective.c - the CPU collective group: ranks are threads of this test.
 *
 * Checks all_reduce (sum, every rank bit-identical, rank-order summation), all_gather
 * (rank order), broadcast, the group-of-one shortcuts, and that an aborting rank makes
 * the others return RF_ECANCELED instead of waiting forever.
 */
#include "rf_test.h"

#include "collective.h"

#include <pthread.h>
#include <stdlib.h>

#define N   3
#define LEN 1001

typedef struct {
    rf_comm *comm;
    float buf[LEN];
    float gathered[N * 5];
    float part[5];
    float bc[7];
    int rc_reduce, rc_gather, rc_bcast, rc_abort;
    int abort_me;
} s_rank;

static void *s_body(void *p)
{
    s_rank *r = p;
    rf_error err = {0};
    int id = r->comm->rank;
    for (int i = 0; i < LEN; i++)
        r->buf[i] = (float)(id + 1) * 0.1f + (float)i * 1e-3f * (float)(id * 7 + 1);
    rf_tensor t;
    rf_tensor_init(&t, RF_DTYPE_F32, 1, (int64_t[]){LEN}, r->buf, NULL);
    r->rc_reduce = rf_comm_all_reduce_sum(r->comm, &t, &err);
    for (int i = 0; i < 5; i++)
        r->part[i] = (float)(id * 10 + i);
    rf_tensor in, out;
    rf_tensor_init(&in, RF_DTYPE_F32, 1, (int64_t[]){5}, r->part, NULL);
    rf_tensor_init(&out, RF_DTYPE_F32, 2, (int64_t[]){N, 5}, r->gathered, NULL);
    r->rc_gather = rf_comm_all_gather(r->comm, &out, &in, &err);
    for (int i = 0; i < 7; i++)
        r->bc[i] = (float)(id * 100 + i);
    rf_tensor b;
    rf_tensor_init(&b, RF_DTYPE_F32, 1, (int64_t[]){7}, r->bc, NULL);
    r->rc_bcast = rf_comm_broadcast(r->comm, &b, 2, &err);
    if (r->abort_me) {
        rf_comm_abort(r->comm);
        r->rc_abort = RF_ECANCELED;
    } else {
        r->rc_abort = rf_comm_all_reduce_sum(r->comm, &t, &err);
    }
    return NULL;
}

RF_TEST(all_reduce_gather_broadcast_across_thread_ranks)
{
    rf_error err = {0};
    rf_comm_group *g = rf_comm_cpu_group_new(N, &err);
    RF_CHECK(g);
    static s_rank ranks[N];
    pthread_t th[N];
    for (int r = 0; r < N; r++) {
        ranks[r].comm = rf_comm_cpu_rank(g, r);
        ranks[r].abort_me = r == 1;
        pthread_create(&th[r], NULL, s_body, &ranks[r]);
    }
    for (int r = 0; r < N; r++)
        pthread_join(th[r], NULL);
    for (int r = 0; r < N; r++) {
        RF_CHECK_EQ_INT(ranks[r].rc_reduce, 0);
        RF_CHECK_EQ_INT(ranks[r].rc_gather, 0);
        RF_CHECK_EQ_INT(ranks[r].rc_bcast, 0);
        RF_CHECK_EQ_INT(ranks[r].rc_abort, RF_ECANCELED);
        for (int i = 0; i < LEN; i++) {
            float want = 0.0f; /* rank order, in float, exactly as documented */
            for (int q = 0; q < N; q++)
                want += (float)(q + 1) * 0.1f + (float)i * 1e-3f * (float)(q * 7 + 1);
            RF_CHECK(ranks[r].buf[i] == want); /* the cancelled reduce touched nothing */
        }
        for (int q = 0; q < N; q++)
            for (int i = 0; i < 5; i++)
                RF_CHECK(ranks[r].gathered[q * 5 + i] == (float)(q * 10 + i));
        for (int i = 0; i < 7; i++)
            RF_CHECK(ranks[r].bc[i] == (float)(200 + i));
    }
    RF_CHECK(rf_comm_cpu_rank(g, N) == NULL);
    rf_comm_cpu_group_destroy(&g);
    rf_comm_cpu_group_destroy(&g);
    RF_CHECK(g == NULL);
}

RF_TEST(group_of_one_and_bad_arguments)
{
    rf_error err = {0};
    float a[4] = {1, 2, 3, 4}, b[8];
    rf_tensor t, out;
    rf_tensor_init(&t, RF_DTYPE_F32, 1, (int64_t[]){4}, a, NULL);
    rf_tensor_init(&out, RF_DTYPE_F32, 1, (int64_t[]){4}, b, NULL);
    RF_CHECK(rf_comm_all_reduce_sum(NULL, &t, &err) == 0);
    RF_CHECK(a[0] == 1 && a[3] == 4);
    RF_CHECK(rf_comm_all_gather(NULL, &out, &t, &err) == 0);
    RF_CHECK(b[2] == 3);
    rf_tensor big;
    rf_tensor_init(&big, RF_DTYPE_F32, 1, (int64_t[]){8}, b, NULL);
    RF_CHECK_EQ_INT(rf_comm_all_gather(NULL, &big, &t, &err), RF_ESHAPE);
    RF_CHECK(rf_comm_cpu_group_new(0, &err) == NULL);
    RF_CHECK(rf_comm_cpu_group_new(257, &err) == NULL);
    rf_comm_group *g = rf_comm_cpu_group_new(2, &err);
    RF_CHECK_EQ_INT(rf_comm_broadcast(rf_comm_cpu_rank(g, 0), &t, 5, &err), RF_EINVAL);
    rf_tensor h;
    rf_tensor_init(&h, RF_DTYPE_BF16, 1, (int64_t[]){4}, a, NULL);
    RF_CHECK_EQ_INT(rf_comm_all_reduce_sum(rf_comm_cpu_rank(g, 0), &h, &err), RF_ESHAPE);
    rf_comm_cpu_group_destroy(&g);
}
