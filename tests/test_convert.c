/* test_convert.c - tools/convert turns .pth checkpoints into safetensors the C side reads.
 *
 * Runs the converter (Debian's python3 + numpy, no torch) on .pth files written once
 * with torch (tests/fixtures/convert, see tools/convert/make_fixtures.py) and checks
 * every value, strided and offset views included, and that a checkpoint that tries to
 * run code is refused.
 */
#include "rf_test.h"
#include "safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#define PY "/usr/bin/python3"

static int s_run(const char *args, char *log, size_t cap)
{
    char cmd[4096];
    char logpath[512];
    rf_test_path(logpath, sizeof(logpath), "convert.log");
    snprintf(cmd, sizeof(cmd), PY " %s/tools/convert/convert.py %s >%s 2>&1", RF_SOURCE_DIR, args,
             logpath);
    int rc = system(cmd);
    FILE *f = fopen(logpath, "r");
    size_t n = f ? fread(log, 1, cap - 1, f) : 0;
    if (f)
        fclose(f);
    log[n] = '\0';
    return rc;
}

static void s_need_python(void)
{
    if (system(PY " -c 'import numpy' >/dev/null 2>&1") != 0)
        RF_SKIP("Debian's python3-numpy is not installed (make deps installs it)");
}

static float s_f32(const rf_st_tensor *t, size_t i)
{
    float v[64];
    RF_CHECK(rf_st_numel(t) <= 64);
    RF_CHECK_EQ_INT(rf_st_read_f32(t, v, NULL), 0);
    return v[i];
}

RF_TEST(converts_every_dtype_and_view)
{
    s_need_python();
    char out[512], args[2048], log[4096];
    rf_test_path(out, sizeof(out), "sd.safetensors");
    snprintf(args, sizeof(args), "--pth %s/convert/state_dict.pth --out %s", rf_test_fixtures(),
             out);
    RF_CHECK_MSG(s_run(args, log, sizeof(log)) == 0, "convert failed: %s", log);
    rf_error err;
    rf_safetensors *st = rf_st_open(out, &err);
    RF_CHECK_MSG(st, "%s", err.msg);
    RF_CHECK_EQ_INT(rf_st_count(st), 5);

    const rf_st_tensor *a = rf_st_find(st, "a.weight");
    RF_CHECK(a && a->dtype == RF_DTYPE_F32 && a->ndim == 2 && a->shape[0] == 3 && a->shape[1] == 4);
    for (int i = 0; i < 12; i++)
        RF_CHECK(s_f32(a, (size_t)i) == i * 0.5f - 1);
    const rf_st_tensor *b = rf_st_find(st, "b.weight");
    RF_CHECK(b && b->dtype == RF_DTYPE_BF16 && b->ndim == 3 && b->shape[2] == 2);
    for (int i = 0; i < 12; i++)
        RF_CHECK(s_f32(b, (size_t)i) == (float)(i - 6));
    const rf_st_tensor *c = rf_st_find(st, "c.t"); /* a transposed view, made contiguous */
    RF_CHECK(c && c->shape[0] == 4 && c->shape[1] == 3);
    for (int r = 0; r < 4; r++)
        for (int k = 0; k < 3; k++)
            RF_CHECK(s_f32(c, (size_t)(r * 3 + k)) == (float)(k * 4 + r));
    const rf_st_tensor *d = rf_st_find(st, "d.view"); /* an offset slice of a larger storage */
    RF_CHECK(d && d->dtype == RF_DTYPE_F16 && d->shape[0] == 2);
    for (int r = 0; r < 2; r++)
        for (int k = 0; k < 2; k++)
            RF_CHECK(s_f32(d, (size_t)(r * 2 + k)) == (float)((r + 1) * 4 + k + 1));
    const rf_st_tensor *e = rf_st_find(st, "e.count");
    RF_CHECK(e && e->dtype == RF_DTYPE_I64 && e->nbytes == 24);
    const int64_t *ev = e->data;
    RF_CHECK(ev[0] == 10 && ev[1] == 20 && ev[2] == 30);
    RF_CHECK_EQ_STR(rf_st_metadata(st, "converted_from"), "state_dict.pth");
    rf_st_destroy(&st);
}

RF_TEST(unwraps_nested_state_dict)
{
    s_need_python();
    char out[512], args[2048], log[4096];
    rf_test_path(out, sizeof(out), "w.safetensors");
    snprintf(args, sizeof(args), "--pth %s/convert/wrapped.pth --out %s", rf_test_fixtures(), out);
    RF_CHECK_MSG(s_run(args, log, sizeof(log)) == 0, "convert failed: %s", log);
    rf_safetensors *st = rf_st_open(out, NULL);
    RF_CHECK(st && rf_st_find(st, "weight") && rf_st_find(st, "bias"));
    rf_st_destroy(&st);
}

RF_TEST(refuses_a_checkpoint_that_runs_code)
{
    s_need_python();
    char out[512], args[2048], log[4096];
    rf_test_path(out, sizeof(out), "evil.safetensors");
    snprintf(args, sizeof(args), "--pth %s/convert/evil.pth --out %s", rf_test_fixtures(), out);
    RF_CHECK(s_run(args, log, sizeof(log)) != 0);
    RF_CHECK_CONTAINS(log, "only tensors and dicts are accepted");
    RF_CHECK(strstr(log, "pwned") == NULL);
    struct stat sb;
    RF_CHECK(stat(out, &sb) != 0);
}

RF_TEST(refuses_a_file_that_is_not_a_checkpoint)
{
    s_need_python();
    char in[512], args[2048], log[4096];
    rf_test_path(in, sizeof(in), "junk.pth");
    RF_CHECK_EQ_INT(rf_test_write_file(in, "not a zip", 9), 0);
    snprintf(args, sizeof(args), "--pth %s", in);
    RF_CHECK(s_run(args, log, sizeof(log)) != 0);
    RF_CHECK_CONTAINS(log, "is not a zip-format PyTorch checkpoint");
}

RF_TEST(converts_a_release_folder_and_writes_model_json)
{
    s_need_python();
    char dir[512], cmd[4096], log[4096];
    rf_test_path(dir, sizeof(dir), "Wan2.1-T2V-1.3B");
    snprintf(cmd, sizeof(cmd),
             "mkdir -p %s/google/umt5-xxl && cp %s/convert/state_dict.pth %s/Wan2.1_VAE.pth && "
             "cp %s/convert/state_dict.pth %s/models_t5_umt5-xxl-enc-bf16.pth && "
             "echo '{}' > %s/config.json && echo x > %s/google/umt5-xxl/spiece.model",
             dir, rf_test_fixtures(), dir, rf_test_fixtures(), dir, dir, dir);
    RF_CHECK_EQ_INT(system(cmd), 0);
    RF_CHECK_MSG(s_run(dir, log, sizeof(log)) == 0, "convert failed: %s", log);
    char path[1024];
    snprintf(path, sizeof(path), "%s/Wan2.1_VAE.safetensors", dir);
    rf_safetensors *st = rf_st_open(path, NULL);
    RF_CHECK(st && rf_st_count(st) == 5);
    rf_st_destroy(&st);
    snprintf(path, sizeof(path), "%s/model.json", dir);
    FILE *f = fopen(path, "r");
    RF_CHECK(f);
    char json[8192];
    size_t n = fread(json, 1, sizeof(json) - 1, f);
    fclose(f);
    json[n] = '\0';
    RF_CHECK_CONTAINS(json, "\"vae\": \"Wan2.1_VAE.safetensors\"");
    RF_CHECK_CONTAINS(json, "\"t5\": \"models_t5_umt5-xxl-enc-bf16.safetensors\"");
    RF_CHECK_CONTAINS(json, "\"tokenizer\": \"google/umt5-xxl/spiece.model\"");
    RF_CHECK_CONTAINS(json, "\"sampler\": \"unipc\"");
}

RF_TEST(a_folder_without_the_release_files_is_explained)
{
    s_need_python();
    char dir[512], log[4096];
    rf_test_path(dir, sizeof(dir), "empty-release");
    mkdir(dir, 0700);
    RF_CHECK(s_run(dir, log, sizeof(log)) != 0);
    RF_CHECK_CONTAINS(log, "is it the release folder?");
}
