/* test_vae.c - the C Wan-VAE against the PyTorch reference's golden fixtures.
 *
 * tests/fixtures/vae/ (made by tools/reference/make_vae_fixtures.py) holds a base-8 VAE
 * with every parameter random, a whole decode, segment decodes (continuations and
 * from-frame-0), a whole encode and segment encodes. Parity: NMSE <= 1e-6 in f32.
 * Also: streams allocate nothing per push, memory does not grow with the timeline,
 * the default normalization, and hostile inputs (bad files, shapes, segments).
 */
#include "cpu/cpu.h"
#include "rf_test.h"
#include "safetensors.h"
#include "vae/vae.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static char s_path[512];

static const char *s_fx(const char *name)
{
    snprintf(s_path, sizeof(s_path), "%s/vae/%s", rf_test_fixtures(), name);
    return s_path;
}

typedef struct {
    rf_backend *be;
    rf_vae *vae;
    rf_safetensors *dec, *enc;
} s_env;

static s_env s_open(int threads)
{
    s_env e;
    memset(&e, 0, sizeof(e));
    rf_error err = {0};
    e.be = rf_backend_cpu_new(threads, &err);
    RF_CHECK_MSG(e.be, "%s", err.msg);
    e.vae = rf_vae_load(s_fx("vae_tiny.safetensors"), e.be, &err);
    RF_CHECK_MSG(e.vae, "%s", err.msg);
    e.dec = rf_st_open(s_fx("decode.safetensors"), &err);
    RF_CHECK_MSG(e.dec, "%s", err.msg);
    e.enc = rf_st_open(s_fx("encode.safetensors"), &err);
    RF_CHECK_MSG(e.enc, "%s", err.msg);
    return e;
}

static void s_close(s_env *e)
{
    rf_st_destroy(&e->dec);
    rf_st_destroy(&e->enc);
    rf_vae_destroy(&e->vae);
    rf_backend_destroy(&e->be);
}

static float *s_read(rf_safetensors *st, const char *name, const rf_st_tensor **t)
{
    rf_error err = {0};
    *t = rf_st_find(st, name);
    RF_CHECK_MSG(*t, "fixture tensor %s missing", name);
    float *p = malloc(rf_st_numel(*t) * sizeof(float));
    RF_CHECK(p);
    RF_CHECK_MSG(rf_st_read_f32(*t, p, &err) == 0, "%s", err.msg);
    return p;
}

RF_TEST(load_reads_dims_and_normalization)
{
    s_env e = s_open(1);
    RF_CHECK_EQ_INT(rf_vae_z_dim(e.vae), 16);
    RF_CHECK_EQ_INT(rf_vae_spatial_factor(e.vae), 8);
    RF_CHECK_EQ_INT(rf_vae_temporal_factor(e.vae), 4);
    RF_CHECK(rf_vae_has_encoder(e.vae));
    RF_CHECK_EQ_INT(rf_vae_pixel_frames(e.vae, 0, 5), 17);
    RF_CHECK_EQ_INT(rf_vae_pixel_frames(e.vae, 2, 5), 12);
    rf_error err = {0};
    rf_safetensors *w = rf_st_open(s_fx("vae_tiny.safetensors"), &err);
    RF_CHECK(w);
    float mean[16];
    RF_CHECK(rf_st_read_f32(rf_st_find(w, "latents_mean"), mean, &err) == 0);
    RF_CHECK(memcmp(mean, rf_vae_latent_mean(e.vae), sizeof(mean)) == 0);
    rf_st_destroy(&w);
    s_close(&e);
}

static void s_decode_case(int threads)
{
    s_env e = s_open(threads);
    const rf_st_tensor *zt, *vt;
    float *z = s_read(e.dec, "z", &zt), *ref = s_read(e.dec, "video", &vt);
    int64_t T = zt->shape[2], h = zt->shape[3], w = zt->shape[4];
    size_t n = rf_st_numel(vt);
    float *out = calloc(n, sizeof(float));
    rf_error err = {0};
    RF_CHECK_MSG(rf_vae_decode_segment(e.vae, z, T, (int)h, (int)w, 0, T, 0, out, &err) == 0, "%s",
                 err.msg);
    double nm = rf_test_nmse(out, ref, n);
    printf("  decode %d thread(s): NMSE %.3g\n", threads, nm);
    RF_CHECK_MSG(nm <= 1e-6, "decode NMSE %g", nm);
    free(z);
    free(ref);
    free(out);
    s_close(&e);
}

RF_TEST(decode_whole_matches_reference)
{
    s_decode_case(1);
}
RF_TEST(decode_whole_matches_reference_2_threads)
{
    s_decode_case(2);
}

RF_TEST(decode_segments_match_reference)
{
    s_env e = s_open(2);
    const rf_st_tensor *zt, *st;
    float *z = s_read(e.dec, "z", &zt);
    int64_t T = zt->shape[2], h = zt->shape[3], w = zt->shape[4];
    const char *segs = rf_st_metadata(e.dec, "segments");
    RF_CHECK(segs);
    int count = 0;
    for (const char *p = segs; p && *p; count++) {
        int a, b, wu;
        RF_CHECK(sscanf(p, "%d:%d:%d", &a, &b, &wu) == 3);
        char name[64];
        snprintf(name, sizeof(name), "seg_%d_%d_w%d", a, b, wu);
        float *ref = s_read(e.dec, name, &st);
        RF_CHECK_EQ_INT(st->shape[2], rf_vae_pixel_frames(e.vae, a, b));
        size_t n = rf_st_numel(st);
        float *out = calloc(n, sizeof(float));
        rf_error err = {0};
        RF_CHECK_MSG(rf_vae_decode_segment(e.vae, z, T, (int)h, (int)w, a, b, wu, out, &err) == 0,
                     "%s", err.msg);
        double nm = rf_test_nmse(out, ref, n);
        printf("  %s (%s): NMSE %.3g\n", name, a - wu > 0 ? "continuation" : "from frame 0", nm);
        RF_CHECK_MSG(nm <= 1e-6, "%s NMSE %g", name, nm);
        free(ref);
        free(out);
        p = strchr(p, ';');
        p = p ? p + 1 : NULL;
    }
    RF_CHECK(count >= 3);
    free(z);
    s_close(&e);
}

RF_TEST(encode_whole_and_segments_match_reference)
{
    s_env e = s_open(2);
    const rf_st_tensor *vt, *zt, *st;
    float *video = s_read(e.enc, "video", &vt), *ref = s_read(e.enc, "z", &zt);
    int64_t F = vt->shape[2], H = vt->shape[3], W = vt->shape[4], T = zt->shape[2];
    size_t n = rf_st_numel(zt);
    float *out = calloc(n, sizeof(float));
    rf_error err = {0};
    RF_CHECK_MSG(rf_vae_encode_segment(e.vae, video, F, (int)H, (int)W, 0, T, 0, out, &err) == 0,
                 "%s", err.msg);
    double nm = rf_test_nmse(out, ref, n);
    printf("  encode: NMSE %.3g\n", nm);
    RF_CHECK_MSG(nm <= 1e-6, "encode NMSE %g", nm);
    const char *segs = rf_st_metadata(e.enc, "segments");
    for (const char *p = segs; p && *p;) {
        int a, b, wu;
        RF_CHECK(sscanf(p, "%d:%d:%d", &a, &b, &wu) == 3);
        char name[64];
        snprintf(name, sizeof(name), "seg_%d_%d_w%d", a, b, wu);
        float *sref = s_read(e.enc, name, &st);
        float *sout = calloc(rf_st_numel(st), sizeof(float));
        RF_CHECK_MSG(rf_vae_encode_segment(e.vae, video, F, (int)H, (int)W, a, b, wu, sout, &err) ==
                         0,
                     "%s", err.msg);
        nm = rf_test_nmse(sout, sref, rf_st_numel(st));
        printf("  encode %s: NMSE %.3g\n", name, nm);
        RF_CHECK_MSG(nm <= 1e-6, "%s NMSE %g", name, nm);
        free(sref);
        free(sout);
        p = strchr(p, ';');
        p = p ? p + 1 : NULL;
    }
    free(video);
    free(ref);
    free(out);
    s_close(&e);
}

/* A long timeline through one stream: no allocation per push, the arena never grows. */
RF_TEST(stream_memory_is_bounded_by_the_push)
{
    s_env e = s_open(1);
    rf_error err = {0};
    rf_vae_stream *s = rf_vae_decoder_new(e.vae, 2, 3, 1, &err);
    RF_CHECK_MSG(s, "%s", err.msg);
    size_t bytes = rf_vae_stream_bytes(s);
    float z[16 * 6], out[3 * 4 * 16 * 24];
    uint64_t allocs = 0;
    for (int i = 0; i < 40; i++) {
        for (int k = 0; k < 16 * 6; k++)
            z[k] = (float)((k * 7 + i * 3) % 11) / 5.0f - 1.0f;
        int n = 0;
        RF_CHECK_MSG(rf_vae_decode_push(s, z, out, &n, &err) == 0, "%s", err.msg);
        RF_CHECK_EQ_INT(n, i == 0 ? 1 : 4);
        for (int k = 0; k < 3 * n * 16 * 24; k++)
            RF_CHECK(out[k] >= -1.0f && out[k] <= 1.0f);
        if (i == 1)
            allocs = rf_kernels_alloc_count();
    }
    RF_CHECK_EQ_INT(rf_kernels_alloc_count(), allocs);
    RF_CHECK_EQ_INT(rf_vae_stream_bytes(s), bytes);
    RF_CHECK(rf_vae_stream_high_water(s) <= bytes);
    rf_vae_stream_destroy(&s);
    rf_vae_stream_destroy(&s);
    s_close(&e);
}

RF_TEST(hostile_inputs_are_refused)
{
    s_env e = s_open(1);
    rf_error err = {0};
    float z[16], out[3 * 64];
    RF_CHECK(rf_vae_decode_segment(e.vae, z, 1, 1, 1, 0, 2, 0, out, &err) != 0);
    RF_CHECK_CONTAINS(err.msg, "segment");
    RF_CHECK(rf_vae_decode_segment(e.vae, z, 1, 1, 1, 0, 1, -1, out, &err) != 0);
    RF_CHECK(rf_vae_encoder_new(e.vae, 12, 16, 1, &err) == NULL);
    RF_CHECK_CONTAINS(err.msg, "multiples of 8");
    RF_CHECK(rf_vae_decoder_new(e.vae, 0, 4, 1, &err) == NULL);
    float v[3 * 2 * 8 * 8] = {0};
    RF_CHECK(rf_vae_encode_segment(e.vae, v, 2, 8, 8, 0, 1, 0, z, &err) != 0);
    RF_CHECK_CONTAINS(err.msg, "1 + 4 n frames");
    rf_vae_stream *s = rf_vae_encoder_new(e.vae, 8, 8, 1, &err);
    RF_CHECK(s);
    RF_CHECK(rf_vae_encode_push(s, v, 4, z, &err) != 0); /* the first push is frame 0 alone */
    RF_CHECK_CONTAINS(err.msg, "expected 1");
    rf_vae_stream_destroy(&s);
    /* not a VAE: the DiT-style names are missing */
    char path[512];
    rf_test_path(path, sizeof(path), "empty.safetensors");
    rf_st_writer *wr = rf_st_writer_new();
    int64_t shp[1] = {4};
    float four[4] = {0};
    RF_CHECK(rf_st_writer_add(wr, "latents_mean", RF_DTYPE_F32, 1, shp, four, &err) == 0);
    RF_CHECK(rf_st_writer_write(wr, path, &err) == 0);
    rf_st_writer_destroy(&wr);
    RF_CHECK(rf_vae_load(path, e.be, &err) == NULL);
    RF_CHECK_CONTAINS(err.msg, "conv2.weight");
    RF_CHECK(rf_vae_load("/nonexistent/vae.safetensors", e.be, &err) == NULL);
    s_close(&e);
}

/* Without latents_mean/latents_std the Wan2.1 constants are used. */
RF_TEST(default_normalization_is_wan21)
{
    rf_error err = {0};
    rf_backend *be = rf_backend_cpu_new(1, &err);
    rf_safetensors *src = rf_st_open(s_fx("vae_tiny.safetensors"), &err);
    RF_CHECK(be && src);
    char path[512];
    rf_test_path(path, sizeof(path), "nonorm.safetensors");
    rf_st_writer *wr = rf_st_writer_new();
    for (size_t i = 0; i < rf_st_count(src); i++) {
        const rf_st_tensor *t = rf_st_at(src, i);
        if (strncmp(t->name, "latents_", 8) == 0 || strncmp(t->name, "encoder.", 8) == 0)
            continue;
        RF_CHECK(rf_st_writer_add(wr, t->name, t->dtype, t->ndim, t->shape, t->data, &err) == 0);
    }
    RF_CHECK(rf_st_writer_write(wr, path, &err) == 0);
    rf_st_writer_destroy(&wr);
    rf_vae *v = rf_vae_load(path, be, &err);
    RF_CHECK_MSG(v, "%s", err.msg);
    RF_CHECK(!rf_vae_has_encoder(v)); /* decoder-only files load */
    RF_CHECK_NEAR(rf_vae_latent_mean(v)[0], -0.7571, 1e-7);
    RF_CHECK_NEAR(rf_vae_latent_std(v)[15], 1.9160, 1e-7);
    RF_CHECK(rf_vae_encoder_new(v, 8, 8, 1, &err) == NULL);
    RF_CHECK_CONTAINS(err.msg, "no encoder");
    rf_vae_destroy(&v);
    rf_st_destroy(&src);
    rf_backend_destroy(&be);
}

static long s_rss_kb(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, key, strlen(key)))
            v = atol(line + strlen(key));
    if (f)
        fclose(f);
    return v;
}

/* Ten minutes at 16 fps (2401 latent frames -> 9601 pixel frames) through one decoder
 * stream at tiny scale: resident memory does not grow with the timeline. */
RF_TEST(ten_minute_timeline_in_constant_memory)
{
    s_env e = s_open(1);
    rf_error err = {0};
    rf_vae_stream *s = rf_vae_decoder_new(e.vae, 1, 1, 1, &err);
    RF_CHECK_MSG(s, "%s", err.msg);
    float z[16], out[3 * 4 * 64];
    long rss_early = 0;
    int64_t frames = 0;
    for (int i = 0; i < 2401; i++) {
        for (int k = 0; k < 16; k++)
            z[k] = sinf(0.37f * (float)(i + 3 * k));
        int n = 0;
        RF_CHECK_MSG(rf_vae_decode_push(s, z, out, &n, &err) == 0, "%s", err.msg);
        frames += n;
        if (i == 100)
            rss_early = s_rss_kb("VmRSS:");
    }
    long rss_end = s_rss_kb("VmRSS:"), peak = s_rss_kb("VmHWM:");
    printf("  %lld pixel frames decoded; stream holds %zu KiB; RSS after 100 latent frames %ld "
           "KiB, after 2401 %ld KiB, peak %ld KiB\n",
           (long long)frames, rf_vae_stream_bytes(s) / 1024, rss_early, rss_end, peak);
    RF_CHECK_EQ_INT(frames, 9601);
    RF_CHECK(rss_end - rss_early < 1024);
    rf_vae_stream_destroy(&s);
    s_close(&e);
}

/* ---- the binary ------------------------------------------------------------------ */

static int s_run_engine(const char *args)
{
    const char *b = getenv("RF_BUILD");
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "%s/bin/reelfarm-engine %s >/dev/null 2>&1",
             b ? b : RF_SOURCE_DIR "/build", args);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static double s_file_nmse(const char *path, const char *name, rf_safetensors *ref,
                          const char *refname)
{
    rf_error err = {0};
    rf_safetensors *st = rf_st_open(path, &err);
    RF_CHECK_MSG(st, "%s", err.msg);
    const rf_st_tensor *a, *b;
    float *x = s_read(st, name, &a), *y = s_read(ref, refname, &b);
    RF_CHECK_EQ_INT(rf_st_numel(a), rf_st_numel(b));
    for (int i = 0; i < 5; i++)
        RF_CHECK_EQ_INT(a->shape[i], b->shape[i]);
    double nm = rf_test_nmse(x, y, rf_st_numel(a));
    free(x);
    free(y);
    rf_st_destroy(&st);
    return nm;
}

RF_TEST(binary_decodes_encodes_and_measures)
{
    s_env e = s_open(1);
    char out[512], args[2048], json[512];
    rf_test_path(out, sizeof(out), "video.safetensors");
    snprintf(args, sizeof(args),
             "vae-decode --vae %s/vae/vae_tiny.safetensors --input %s/vae/decode.safetensors "
             "--output %s --threads 2",
             rf_test_fixtures(), rf_test_fixtures(), out);
    RF_CHECK_EQ_INT(s_run_engine(args), 0);
    RF_CHECK(s_file_nmse(out, "video", e.dec, "video") <= 1e-6);
    snprintf(args, sizeof(args),
             "vae-decode --vae %s/vae/vae_tiny.safetensors --input %s/vae/decode.safetensors "
             "--output %s --segment 2:5 --warmup 1",
             rf_test_fixtures(), rf_test_fixtures(), out);
    RF_CHECK_EQ_INT(s_run_engine(args), 0);
    RF_CHECK(s_file_nmse(out, "video", e.dec, "seg_2_5_w1") <= 1e-6);
    rf_test_path(out, sizeof(out), "z.safetensors");
    snprintf(args, sizeof(args),
             "vae-encode --vae %s/vae/vae_tiny.safetensors --input %s/vae/encode.safetensors "
             "--output %s",
             rf_test_fixtures(), rf_test_fixtures(), out);
    RF_CHECK_EQ_INT(s_run_engine(args), 0);
    RF_CHECK(s_file_nmse(out, "z", e.enc, "z") <= 1e-6);
    rf_test_path(json, sizeof(json), "vae_warmup.json");
    snprintf(args, sizeof(args),
             "vae-warmup --vae %s/vae/vae_tiny.safetensors --latent 1x2 --max 2 --output %s",
             rf_test_fixtures(), json);
    RF_CHECK_EQ_INT(s_run_engine(args), 0);
    FILE *f = fopen(json, "r");
    RF_CHECK(f);
    char buf[4096] = {0};
    RF_CHECK(fread(buf, 1, sizeof(buf) - 1, f) > 0);
    fclose(f);
    RF_CHECK_CONTAINS(buf, "\"warmup_8bit\": ");
    RF_CHECK_CONTAINS(buf, "\"max_abs\": [");
    /* usage errors exit 2, world errors 1 */
    RF_CHECK_EQ_INT(s_run_engine("vae-decode --vae x.safetensors"), 2);
    RF_CHECK_EQ_INT(s_run_engine("vae-decode --vae x --input y --output z --segment 3"), 2);
    RF_CHECK_EQ_INT(s_run_engine("vae-encode --bogus"), 2);
    snprintf(args, sizeof(args),
             "vae-decode --vae %s/vae/vae_tiny.safetensors --input %s/vae/decode.safetensors "
             "--output %s --segment 4:9",
             rf_test_fixtures(), rf_test_fixtures(), out);
    RF_CHECK_EQ_INT(s_run_engine(args), 1);
    snprintf(args, sizeof(args),
             "vae-encode --vae %s/vae/vae_tiny.safetensors --input %s/vae/vae_tiny.safetensors "
             "--output %s",
             rf_test_fixtures(), rf_test_fixtures(), out); /* no `video` tensor */
    RF_CHECK_EQ_INT(s_run_engine(args), 1);
    s_close(&e);
}
