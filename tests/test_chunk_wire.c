/* test_chunk_wire.c - chunk states survive the wire form and the packed form bit for bit,
 * and hostile inputs (truncations, spans outside the window, wrong frame starts) are
 * refused with a message. */
#include "common/chunk_wire.h"
#include "rf_test.h"

#include <stdlib.h>

static rf_chunk_state *s_state(void)
{
    rf_chunk_state *s = rf_chunk_state_new(4, 6, NULL);
    RF_CHECK(s);
    int64_t shape[4] = {2, 6, 1, 3};
    float data[36];
    for (int i = 0; i < 36; i++)
        data[i] = (float)i * 0.37f - 3.0f;
    RF_CHECK(rf_chunk_state_add(s, "latent", 4, shape, 1, data, NULL));
    int64_t shape2[1] = {3};
    RF_CHECK(rf_chunk_state_add(s, "misc", 1, shape2, -1, data, NULL));
    RF_CHECK_EQ_INT(rf_chunk_state_set_i64(s, "step", 7, NULL), 0);
    RF_CHECK_EQ_INT(rf_chunk_state_set_f64(s, "sigma", 0.1, NULL), 0);
    RF_CHECK_EQ_INT(rf_chunk_state_set_str(s, "sampler", "euler", NULL), 0);
    return s;
}

static void s_same(const rf_chunk_state *a, const rf_chunk_state *b)
{
    RF_CHECK_EQ_INT(a->window_start, b->window_start);
    RF_CHECK_EQ_INT(a->window_len, b->window_len);
    RF_CHECK_EQ_INT(a->nspans, b->nspans);
    RF_CHECK_EQ_INT(a->ntensors, b->ntensors);
    RF_CHECK_EQ_INT(rf_chunk_state_compatible(a, b, NULL), 0);
    for (int i = 0; i < a->ntensors; i++) {
        const rf_cs_tensor *t = rf_chunk_state_tensor(b, a->tensors[i].name);
        RF_CHECK(t);
        RF_CHECK(memcmp(t->data, a->tensors[i].data, rf_cs_numel(t) * 4) == 0);
    }
}

RF_TEST(pack_roundtrip_and_truncations)
{
    rf_chunk_state *s = s_state();
    void *buf;
    size_t len;
    RF_CHECK_EQ_INT(rf_chunk_state_pack(s, 7, 3, &buf, &len, NULL), 0);
    uint32_t step = 0, round = 0;
    rf_chunk_state *t = rf_chunk_state_unpack(buf, len, &step, &round, NULL);
    RF_CHECK(t);
    RF_CHECK_EQ_INT(step, 7);
    RF_CHECK_EQ_INT(round, 3);
    s_same(s, t);
    rf_error err;
    for (size_t cut = 0; cut < len; cut += 13) {
        rf_chunk_state *u = rf_chunk_state_unpack(buf, cut, NULL, NULL, &err);
        RF_CHECK_MSG(!u, "truncated to %zu accepted", cut);
    }
    ((unsigned char *)buf)[0] ^= 1;
    RF_CHECK(!rf_chunk_state_unpack(buf, len, NULL, NULL, &err));
    RF_CHECK_CONTAINS(err.msg, "magic");
    free(buf);
    rf_chunk_state_destroy(&t);
    rf_chunk_state_destroy(&s);
}

RF_TEST(wire_roundtrip_partial_state)
{
    rf_chunk_state *s = s_state();
    rf_cs_span spans[2] = {{4, 2}, {8, 2}};
    rf_chunk_state *part = rf_chunk_state_extract(s, spans, 2, NULL);
    RF_CHECK(part);
    rf_chunk_wire w;
    RF_CHECK_EQ_INT(rf_chunk_wire_from_state(&w, part, "up/", 7, 2, NULL), 0);
    RF_CHECK_EQ_INT(w.n_blobs, 1); /* the unframed tensor does not travel */
    RF_CHECK_EQ_STR(w.blobs[0].name, "up/latent");
    RF_CHECK_EQ_INT(w.blobs[0].frame_start, 4);
    rf_error err;
    rf_chunk_state *back = rf_chunk_wire_to_state(&w.msg, w.blobs, w.n_blobs, "up/", &err);
    RF_CHECK_MSG(back, "%s", err.msg);
    s_same(part, back);
    RF_CHECK_EQ_INT(back->nspans, 2);
    rf_chunk_state_destroy(&back);

    /* hostile: a held span outside the window, a wrong frame start, a short blob */
    w.held[1].end = 11;
    RF_CHECK(!rf_chunk_wire_to_state(&w.msg, w.blobs, w.n_blobs, "up/", &err));
    RF_CHECK_CONTAINS(err.msg, "window");
    w.held[1].end = 10;
    w.blobs[0].frame_start = 5;
    RF_CHECK(!rf_chunk_wire_to_state(&w.msg, w.blobs, w.n_blobs, "up/", &err));
    RF_CHECK_EQ_INT(err.code, RF_EPROTO);
    w.blobs[0].frame_start = 4;
    w.blobs[0].shape[1] = 3;
    RF_CHECK(!rf_chunk_wire_to_state(&w.msg, w.blobs, w.n_blobs, "up/", &err));
    RF_CHECK_EQ_INT(err.code, RF_EPROTO);
    rf_chunk_state_destroy(&part);
    rf_chunk_state_destroy(&s);
}
