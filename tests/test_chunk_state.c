/* test_chunk_state.c - the chunk-state struct: tensors with frame axes, scalars, spans,
 * extracting the overlap frames and applying them back, and hostile arguments. */
#include "chunk_state.h"
#include "rf_test.h"
#include "safetensors.h"

#include <stdlib.h>

static rf_chunk_state *s_sample_state(void)
{
    rf_error err = {0};
    rf_chunk_state *s = rf_chunk_state_new(10, 6, &err);
    RF_CHECK_MSG(s, "%s", err.msg);
    int64_t shape[4] = {3, 6, 2, 2};
    rf_cs_tensor *x = rf_chunk_state_add(s, "latent", 4, shape, 1, NULL, &err);
    RF_CHECK_MSG(x, "%s", err.msg);
    for (size_t i = 0; i < rf_cs_numel(x); i++)
        x->data[i] = (float)i;
    RF_CHECK_EQ_INT(rf_chunk_state_set_i64(s, "step", 4, &err), 0);
    RF_CHECK_EQ_INT(rf_chunk_state_set_f64(s, "shift", 5.0, &err), 0);
    RF_CHECK_EQ_INT(rf_chunk_state_set_str(s, "sampler", "dpm++", &err), 0);
    return s;
}

RF_TEST(tensors_scalars_and_lookup)
{
    rf_chunk_state *s = s_sample_state();
    RF_CHECK_EQ_INT(rf_chunk_state_held(s), 6);
    RF_CHECK_EQ_INT(rf_chunk_state_frame_pos(s, 10), 0);
    RF_CHECK_EQ_INT(rf_chunk_state_frame_pos(s, 15), 5);
    RF_CHECK_EQ_INT(rf_chunk_state_frame_pos(s, 16), -1);
    RF_CHECK_EQ_INT(rf_chunk_state_frame_pos(s, 9), -1);
    RF_CHECK(rf_chunk_state_tensor(s, "latent") != NULL);
    RF_CHECK(rf_chunk_state_tensor(s, "nope") == NULL);
    int64_t v;
    double d;
    rf_error err = {0};
    RF_CHECK_EQ_INT(rf_chunk_state_get_i64(s, "step", &v, &err), 0);
    RF_CHECK_EQ_INT(v, 4);
    RF_CHECK_EQ_INT(rf_chunk_state_get_f64(s, "shift", &d, &err), 0);
    RF_CHECK(d == 5.0);
    RF_CHECK_EQ_INT(rf_chunk_state_get_i64(s, "shift", &v, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "'shift' is a float");
    RF_CHECK_EQ_INT(rf_chunk_state_get_i64(s, "missing", &v, &err), RF_ENOTFOUND);
    RF_CHECK_CONTAINS(err.msg, "'missing'");
    RF_CHECK_EQ_INT(rf_chunk_state_set_i64(s, "step", 5, &err), 0); /* replaces */
    RF_CHECK_EQ_INT(rf_chunk_state_get_i64(s, "step", &v, &err), 0);
    RF_CHECK_EQ_INT(v, 5);
    RF_CHECK_EQ_INT(s->nscalars, 3);
    RF_CHECK_EQ_INT(rf_chunk_state_set_str(s, "step", "x", &err), RF_EINVAL); /* kind */
    rf_chunk_state *c = rf_chunk_state_clone(s, &err);
    RF_CHECK(c && c->tensors[0].data != s->tensors[0].data);
    RF_CHECK(memcmp(c->tensors[0].data, s->tensors[0].data, 72 * sizeof(float)) == 0);
    RF_CHECK_EQ_INT(rf_chunk_state_compatible(s, c, &err), 0);
    rf_chunk_state_destroy(&c);
    rf_chunk_state_destroy(&c); /* twice is fine */
    rf_chunk_state_destroy(&s);
}

RF_TEST(hostile_arguments_are_refused)
{
    rf_error err = {0};
    RF_CHECK(rf_chunk_state_new(-1, 4, &err) == NULL);
    RF_CHECK(rf_chunk_state_new(0, 0, &err) == NULL);
    rf_chunk_state *s = s_sample_state();
    int64_t bad[2] = {5, 3};
    RF_CHECK(rf_chunk_state_add(s, "x", 2, bad, 0, NULL, &err) == NULL); /* 5 != 6 frames */
    RF_CHECK_CONTAINS(err.msg, "'x'");
    int64_t ok[2] = {6, 3};
    RF_CHECK(rf_chunk_state_add(s, "latent", 2, ok, 0, NULL, &err) == NULL); /* twice */
    RF_CHECK(rf_chunk_state_add(s, "y", 2, ok, 2, NULL, &err) == NULL);      /* axis */
    RF_CHECK(rf_chunk_state_add(s, "y", 0, ok, -1, NULL, &err) == NULL);
    int64_t neg[2] = {6, -3};
    RF_CHECK(rf_chunk_state_add(s, "y", 2, neg, 0, NULL, &err) == NULL);
    int64_t huge[3] = {6, 1 << 30, 1 << 30};
    RF_CHECK(rf_chunk_state_add(s, "y", 3, huge, 0, NULL, &err) == NULL);
    RF_CHECK(rf_chunk_state_add(s, "a\"b", 2, ok, 0, NULL, &err) == NULL);
    RF_CHECK(rf_chunk_state_add(s, "", 2, ok, 0, NULL, &err) == NULL);
    char longname[100];
    memset(longname, 'n', sizeof(longname) - 1);
    longname[99] = 0;
    RF_CHECK(rf_chunk_state_add(s, longname, 2, ok, 0, NULL, &err) == NULL);
    RF_CHECK_EQ_INT(rf_chunk_state_set_str(s, "sampler", longname, &err), RF_EINVAL);
    RF_CHECK(rf_chunk_state_add(s, "unframed", 2, bad, -1, NULL, &err) != NULL);
    /* spans: outside the window, overlapping, descending */
    rf_cs_span sp[2] = {{8, 3}, {14, 2}};
    RF_CHECK(rf_chunk_state_extract(s, sp, 2, &err) == NULL);
    rf_cs_span sp2[2] = {{13, 2}, {11, 2}};
    RF_CHECK(rf_chunk_state_extract(s, sp2, 2, &err) == NULL);
    rf_cs_span sp3[2] = {{10, 3}, {12, 2}};
    RF_CHECK(rf_chunk_state_extract(s, sp3, 2, &err) == NULL);
    RF_CHECK(rf_chunk_state_extract(s, sp3, 3, &err) == NULL);
    rf_chunk_state_destroy(&s);
}

RF_TEST(extract_and_apply_move_exactly_the_named_frames)
{
    rf_error err = {0};
    rf_chunk_state *s = s_sample_state();
    rf_cs_span sp[2] = {{10, 2}, {14, 2}};
    rf_chunk_state *p = rf_chunk_state_extract(s, sp, 2, &err);
    RF_CHECK_MSG(p, "%s", err.msg);
    RF_CHECK_EQ_INT(rf_chunk_state_held(p), 4);
    const rf_cs_tensor *t = rf_chunk_state_tensor(p, "latent");
    RF_CHECK(t && t->shape[1] == 4 && t->frame_axis == 1);
    /* element (c=1, frame 14 = local 4 in s, pos 2 in p, h=1, w=0) */
    RF_CHECK(t->data[(1 * 4 + 2) * 4 + 2] == s->tensors[0].data[(1 * 6 + 4) * 4 + 2]);
    RF_CHECK_EQ_INT(rf_chunk_state_frame_pos(p, 14), 2);
    RF_CHECK_EQ_INT(rf_chunk_state_frame_pos(p, 12), -1);
    /* modify the piece, apply back: only frames 10, 11, 14, 15 change */
    for (size_t i = 0; i < rf_cs_numel(t); i++)
        t->data[i] = -1.0f;
    rf_chunk_state *before = rf_chunk_state_clone(s, NULL);
    RF_CHECK_MSG(rf_chunk_state_apply(s, p, &err) == 0, "%s", err.msg);
    for (int c = 0; c < 3; c++)
        for (int f = 0; f < 6; f++)
            for (int j = 0; j < 4; j++) {
                size_t i = (size_t)(c * 6 + f) * 4 + (size_t)j;
                if (f < 2 || f >= 4)
                    RF_CHECK(s->tensors[0].data[i] == -1.0f);
                else
                    RF_CHECK(s->tensors[0].data[i] == before->tensors[0].data[i]);
            }
    /* a piece from another step or window is refused */
    RF_CHECK_EQ_INT(rf_chunk_state_set_i64(p, "step", 99, NULL), 0);
    RF_CHECK_EQ_INT(rf_chunk_state_apply(s, p, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "'step'");
    RF_CHECK_EQ_INT(rf_chunk_state_set_i64(p, "step", 4, NULL), 0);
    p->window_start = 11;
    RF_CHECK_EQ_INT(rf_chunk_state_apply(s, p, &err), RF_EINVAL);
    /* an empty extraction (a chunk that overlaps nothing) is valid and holds nothing */
    rf_chunk_state *e = rf_chunk_state_extract(s, NULL, 0, &err);
    RF_CHECK_MSG(e, "%s", err.msg);
    RF_CHECK_EQ_INT(rf_chunk_state_held(e), 0);
    RF_CHECK_EQ_INT(rf_chunk_state_apply(s, e, &err), 0);
    rf_chunk_state_destroy(&e);
    rf_chunk_state_destroy(&before);
    rf_chunk_state_destroy(&p);
    rf_chunk_state_destroy(&s);
}

static int s_states_equal(const rf_chunk_state *a, const rf_chunk_state *b)
{
    if (a->window_start != b->window_start || a->window_len != b->window_len ||
        a->nspans != b->nspans || a->ntensors != b->ntensors || a->nscalars != b->nscalars)
        return 0;
    for (int i = 0; i < a->nspans; i++)
        if (a->spans[i].start != b->spans[i].start || a->spans[i].len != b->spans[i].len)
            return 0;
    for (int i = 0; i < a->ntensors; i++) {
        const rf_cs_tensor *x = &a->tensors[i], *y = &b->tensors[i];
        if (strcmp(x->name, y->name) || x->ndim != y->ndim || x->frame_axis != y->frame_axis ||
            memcmp(x->shape, y->shape, (size_t)x->ndim * sizeof(int64_t)) ||
            memcmp(x->data, y->data, rf_cs_numel(x) * sizeof(float)))
            return 0;
    }
    for (int i = 0; i < a->nscalars; i++) {
        const rf_cs_scalar *x = &a->scalars[i], *y = &b->scalars[i];
        if (strcmp(x->name, y->name) || x->kind != y->kind || x->i != y->i ||
            memcmp(&x->f, &y->f, sizeof(double)) || strcmp(x->s, y->s))
            return 0;
    }
    return 1;
}

RF_TEST(save_load_round_trip_is_bit_exact)
{
    rf_error err = {0};
    rf_chunk_state *s = s_sample_state();
    int64_t su[2] = {2, 3};
    rf_cs_tensor *u = rf_chunk_state_add(s, "unframed", 2, su, -1, NULL, &err);
    RF_CHECK(u);
    u->data[0] = -0.0f;
    u->data[1] = 1e-45f; /* subnormal */
    u->data[2] = 3.4028235e38f;
    u->data[3] = INFINITY;
    u->data[4] = 0.1f;
    u->data[5] = -7.0f;
    RF_CHECK_EQ_INT(rf_chunk_state_set_f64(s, "sigma", 0.1, &err), 0);
    RF_CHECK_EQ_INT(rf_chunk_state_set_f64(s, "neg_zero", -0.0, &err), 0);
    RF_CHECK_EQ_INT(rf_chunk_state_set_f64(s, "tiny", 4.9e-324, &err), 0);
    RF_CHECK_EQ_INT(rf_chunk_state_set_i64(s, "big", INT64_MIN, &err), 0);
    RF_CHECK_EQ_INT(rf_chunk_state_set_str(s, "empty", "", &err), 0);
    RF_CHECK_EQ_INT(rf_chunk_state_set_str(s, "text", "a \"quoted\", odd: string\\", &err), 0);
    char path[512];
    rf_test_path(path, sizeof(path), "state.safetensors");
    RF_CHECK_MSG(rf_chunk_state_save(s, path, &err) == 0, "%s", err.msg);
    rf_chunk_state *l = rf_chunk_state_load(path, &err);
    RF_CHECK_MSG(l, "%s", err.msg);
    RF_CHECK(s_states_equal(s, l));
    rf_chunk_state_destroy(&l);
    /* a partial state (two spans) and an empty one round-trip too */
    rf_cs_span sp[2] = {{10, 1}, {13, 3}};
    for (int n = 0; n <= 2; n += 2) {
        rf_chunk_state *p = rf_chunk_state_extract(s, sp, n, &err);
        RF_CHECK_MSG(p, "%s", err.msg);
        RF_CHECK_MSG(rf_chunk_state_save(p, path, &err) == 0, "%s", err.msg);
        l = rf_chunk_state_load(path, &err);
        RF_CHECK_MSG(l, "%s", err.msg);
        RF_CHECK(s_states_equal(p, l));
        rf_chunk_state_destroy(&l);
        rf_chunk_state_destroy(&p);
    }
    rf_chunk_state_destroy(&s);
}

/* Writes a file with one F32 tensor "x" [2,3] and the given metadata pairs. */
static void s_write_raw(const char *path, const char **kv, int nkv, rf_dtype dt)
{
    rf_st_writer *w = rf_st_writer_new();
    int64_t shape[2] = {2, 3};
    double buf[6] = {0};
    RF_CHECK_EQ_INT(rf_st_writer_add(w, "x", dt, 2, shape, buf, NULL), 0);
    for (int i = 0; i < nkv; i++)
        RF_CHECK_EQ_INT(rf_st_writer_set_metadata(w, kv[2 * i], kv[2 * i + 1], NULL), 0);
    RF_CHECK_EQ_INT(rf_st_writer_write(w, path, NULL), 0);
    rf_st_writer_destroy(&w);
}

RF_TEST(hostile_files_are_refused_with_the_field_named)
{
    char path[512];
    rf_test_path(path, sizeof(path), "bad.safetensors");
    rf_error err = {0};
    RF_CHECK(rf_chunk_state_load(path, &err) == NULL); /* missing file */
    struct {
        const char *kv[12];
        int nkv;
        rf_dtype dt;
        const char *needle;
    } cases[] = {
        {{"window", "0,2"}, 1, RF_DTYPE_F32, "reelfarm.chunk_state"},
        {{"reelfarm.chunk_state", "2", "window", "0,2"}, 2, RF_DTYPE_F32, "reelfarm.chunk_state"},
        {{"reelfarm.chunk_state", "1", "window", "0;2"}, 2, RF_DTYPE_F32, "'window'"},
        {{"reelfarm.chunk_state", "1", "window", "0,-2"}, 2, RF_DTYPE_F32, "window"},
        {{"reelfarm.chunk_state", "1", "window", "0,2", "spans", "0:3"},
         3,
         RF_DTYPE_F32,
         "'spans'"},
        {{"reelfarm.chunk_state", "1", "window", "0,4", "spans", "2:1,0:1"},
         3,
         RF_DTYPE_F32,
         "'spans'"},
        {{"reelfarm.chunk_state", "1", "window", "0,2", "spans", "0:2"},
         3,
         RF_DTYPE_F32,
         "frame_axis.x"},
        {{"reelfarm.chunk_state", "1", "window", "0,2", "spans", "0:2", "frame_axis.x", "2"},
         4,
         RF_DTYPE_F32,
         "frame_axis.x"},
        {{"reelfarm.chunk_state", "1", "window", "0,2", "spans", "0:2", "frame_axis.x", "1"},
         4,
         RF_DTYPE_F32,
         "'x'"}, /* 3 frames on axis 1, 2 held */
        {{"reelfarm.chunk_state", "1", "window", "0,2", "spans", "0:2", "frame_axis.x", "0"},
         4,
         RF_DTYPE_F64,
         "F32"},
        {{"reelfarm.chunk_state", "1", "window", "0,2", "spans", "0:2", "frame_axis.x", "0"},
         4,
         RF_DTYPE_F32,
         "'scalars'"},
        {{"reelfarm.chunk_state", "1", "window", "0,2", "spans", "0:2", "frame_axis.x", "0",
          "scalars", "step"},
         5,
         RF_DTYPE_F32,
         "scalar.step"},
        {{"reelfarm.chunk_state", "1", "window", "0,2", "spans", "0:2", "frame_axis.x", "0",
          "scalars", "step", "scalar.step", "i64:12x"},
         6,
         RF_DTYPE_F32,
         "scalar.step"},
        {{"reelfarm.chunk_state", "1", "window", "0,2", "spans", "0:2", "frame_axis.x", "0",
          "scalars", "s", "scalar.s", "f64:"},
         6,
         RF_DTYPE_F32,
         "scalar.s"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        s_write_raw(path, cases[i].kv, cases[i].nkv, cases[i].dt);
        rf_chunk_state *s = rf_chunk_state_load(path, &err);
        RF_CHECK_MSG(s == NULL, "case %zu loaded", i);
        RF_CHECK_MSG(strstr(err.msg, cases[i].needle), "case %zu: '%s' lacks '%s'", i, err.msg,
                     cases[i].needle);
    }
    /* and the good version of the same file loads */
    const char *good[] = {"reelfarm.chunk_state", "1", "window",  "5,2",  "spans",       "5:2",
                          "frame_axis.x",         "0", "scalars", "step", "scalar.step", "i64:12"};
    s_write_raw(path, good, 6, RF_DTYPE_F32);
    rf_chunk_state *s = rf_chunk_state_load(path, &err);
    RF_CHECK_MSG(s, "%s", err.msg);
    int64_t v;
    RF_CHECK_EQ_INT(rf_chunk_state_get_i64(s, "step", &v, &err), 0);
    RF_CHECK_EQ_INT(v, 12);
    RF_CHECK_EQ_INT(rf_chunk_state_frame_pos(s, 6), 1);
    rf_chunk_state_destroy(&s);
}
