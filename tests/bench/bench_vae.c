/* bench_vae.c - Wan-VAE decode frames per second beside the PyTorch reference, same run.
 *
 * Writes a Wan2.1-structured VAE with random weights (base width RF_BENCH_VAE_DIM,
 * default 16; the real layer structure) and random latents [1,16,5,h,w] (h x w from
 * RF_BENCH_VAE_LATENT, default 8x8) to a temporary
 * folder, times our decoder (best of 2, after one warm run), then runs the PyTorch peer
 * (tools/reference/vae_bench_peer.py) on the same files and threads and prints the
 * ratio. Then the warm-up table: segment vs whole-timeline error per warm-up w on the
 * same VAE (rf_vae_measure_warmup). Timing lives only here, never in tests.
 */
#include "cpu/cpu.h"
#include "safetensors.h"
#include "vae/vae.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t s_seed = 7;

static float s_gauss(void)
{
    double u[2];
    for (int i = 0; i < 2; i++) {
        s_seed = s_seed * 6364136223846793005ull + 1442695040888963407ull;
        u[i] = ((double)(s_seed >> 11) + 0.5) / 9007199254740992.0;
    }
    return (float)(sqrt(-2.0 * log(u[0])) * cos(6.283185307179586 * u[1]));
}

static int s_add(rf_st_writer *wr, const char *name, int ndim, const int64_t *shape, int kind,
                 float gain, rf_error *err)
{
    size_t n = 1, fan = 1;
    for (int i = 0; i < ndim; i++) {
        n *= (size_t)shape[i];
        if (i)
            fan *= (size_t)shape[i];
    }
    float *d = malloc(n * sizeof(float));
    if (!d)
        return rf_error_set(err, RF_ENOMEM, "bench: out of memory");
    for (size_t i = 0; i < n; i++)
        d[i] = kind == 0   ? 1.0f + 0.1f * s_gauss()               /* gamma */
               : kind == 1 ? 0.05f * s_gauss()                     /* bias */
                           : gain * s_gauss() / sqrtf((float)fan); /* weight */
    int rc = rf_st_writer_add(wr, name, RF_DTYPE_F32, ndim, shape, d, err);
    free(d);
    return rc;
}

static int s_conv(rf_st_writer *wr, const char *p, int64_t o, int64_t i, int kt, int k, float gain,
                  rf_error *err)
{
    char n[160];
    int64_t s5[5] = {o, i, kt, k, k}, s4[4] = {o, i, k, k}, b[1] = {o};
    snprintf(n, sizeof(n), "%s.weight", p);
    int rc = kt ? s_add(wr, n, 5, s5, 2, gain, err) : s_add(wr, n, 4, s4, 2, gain, err);
    snprintf(n, sizeof(n), "%s.bias", p);
    return rc ? rc : s_add(wr, n, 1, b, 1, 0, err);
}

static int s_res(rf_st_writer *wr, const char *p, int64_t ci, int64_t co, rf_error *err)
{
    char n[160];
    int64_t g1[4] = {ci, 1, 1, 1}, g2[4] = {co, 1, 1, 1};
    int rc = 0;
    snprintf(n, sizeof(n), "%s.residual.0.gamma", p);
    rc = rc ? rc : s_add(wr, n, 4, g1, 0, 0, err);
    snprintf(n, sizeof(n), "%s.residual.2", p);
    rc = rc ? rc : s_conv(wr, n, co, ci, 3, 3, 1, err);
    snprintf(n, sizeof(n), "%s.residual.3.gamma", p);
    rc = rc ? rc : s_add(wr, n, 4, g2, 0, 0, err);
    snprintf(n, sizeof(n), "%s.residual.6", p);
    rc = rc ? rc : s_conv(wr, n, co, co, 3, 3, 1, err);
    snprintf(n, sizeof(n), "%s.shortcut", p);
    if (!rc && ci != co)
        rc = s_conv(wr, n, co, ci, 1, 1, 1, err);
    return rc;
}

static int s_attn(rf_st_writer *wr, const char *p, int64_t c, rf_error *err)
{
    char n[160];
    int64_t g[3] = {c, 1, 1};
    snprintf(n, sizeof(n), "%s.norm.gamma", p);
    int rc = s_add(wr, n, 3, g, 0, 0, err);
    snprintf(n, sizeof(n), "%s.to_qkv", p);
    rc = rc ? rc : s_conv(wr, n, 3 * c, c, 0, 1, 1, err);
    snprintf(n, sizeof(n), "%s.proj", p);
    return rc ? rc : s_conv(wr, n, c, c, 0, 1, 1, err);
}

/* The Wan2.1 structure (dim_mult 1,2,4,4; 2 res blocks; temporal down no,yes,yes). */
static int s_write_vae(const char *path, int64_t d, rf_error *err)
{
    rf_st_writer *wr = rf_st_writer_new();
    int64_t mult[4] = {1, 2, 4, 4}, z = 16;
    int tdown[3] = {0, 1, 1};
    char p[160];
    int rc = 0, n = 0;
    /* encoder */
    int64_t dims[5] = {d, d * mult[0], d * mult[1], d * mult[2], d * mult[3]};
    rc = s_conv(wr, "encoder.conv1", dims[0], 3, 3, 3, 1, err);
    for (int i = 0; i < 4 && !rc; i++) {
        int64_t ci = dims[i], co = dims[i + 1];
        for (int r = 0; r < 2 && !rc; r++, ci = co) {
            snprintf(p, sizeof(p), "encoder.downsamples.%d", n++);
            rc = s_res(wr, p, ci, co, err);
        }
        if (i < 3 && !rc) {
            snprintf(p, sizeof(p), "encoder.downsamples.%d.resample.1", n);
            rc = s_conv(wr, p, co, co, 0, 3, 1, err);
            snprintf(p, sizeof(p), "encoder.downsamples.%d.time_conv", n++);
            if (!rc && tdown[i]) {
                int64_t s[5] = {co, co, 3, 1, 1};
                char nn[200];
                snprintf(nn, sizeof(nn), "%s.weight", p);
                rc = s_add(wr, nn, 5, s, 2, 1, err);
                int64_t b[1] = {co};
                snprintf(nn, sizeof(nn), "%s.bias", p);
                rc = rc ? rc : s_add(wr, nn, 1, b, 1, 0, err);
            }
        }
    }
    int64_t c = dims[4];
    rc = rc ? rc : s_res(wr, "encoder.middle.0", c, c, err);
    rc = rc ? rc : s_attn(wr, "encoder.middle.1", c, err);
    rc = rc ? rc : s_res(wr, "encoder.middle.2", c, c, err);
    int64_t g[4] = {c, 1, 1, 1};
    rc = rc ? rc : s_add(wr, "encoder.head.0.gamma", 4, g, 0, 0, err);
    rc = rc ? rc : s_conv(wr, "encoder.head.2", 2 * z, c, 3, 3, 1, err);
    rc = rc ? rc : s_conv(wr, "conv1", 2 * z, 2 * z, 1, 1, 1, err);
    rc = rc ? rc : s_conv(wr, "conv2", z, z, 1, 1, 1, err);
    /* decoder */
    int64_t dd[5] = {d * 4, d * 4, d * 4, d * 2, d};
    rc = rc ? rc : s_conv(wr, "decoder.conv1", dd[0], z, 3, 3, 1, err);
    rc = rc ? rc : s_res(wr, "decoder.middle.0", dd[0], dd[0], err);
    rc = rc ? rc : s_attn(wr, "decoder.middle.1", dd[0], err);
    rc = rc ? rc : s_res(wr, "decoder.middle.2", dd[0], dd[0], err);
    n = 0;
    for (int i = 0; i < 4 && !rc; i++) {
        int64_t ci = i ? dd[i] / 2 : dd[i], co = dd[i + 1];
        for (int r = 0; r < 3 && !rc; r++, ci = co) {
            snprintf(p, sizeof(p), "decoder.upsamples.%d", n++);
            rc = s_res(wr, p, ci, co, err);
        }
        if (i < 3 && !rc) {
            snprintf(p, sizeof(p), "decoder.upsamples.%d.resample.1", n);
            rc = s_conv(wr, p, co / 2, co, 0, 3, 1, err);
            if (!rc && i < 2) {
                char nn[200];
                int64_t s[5] = {2 * co, co, 3, 1, 1}, b[1] = {2 * co};
                snprintf(nn, sizeof(nn), "decoder.upsamples.%d.time_conv.weight", n);
                rc = s_add(wr, nn, 5, s, 2, 1, err);
                snprintf(nn, sizeof(nn), "decoder.upsamples.%d.time_conv.bias", n);
                rc = rc ? rc : s_add(wr, nn, 1, b, 1, 0, err);
            }
            n++;
        }
    }
    int64_t gd[4] = {d, 1, 1, 1};
    rc = rc ? rc : s_add(wr, "decoder.head.0.gamma", 4, gd, 0, 0, err);
    rc = rc ? rc : s_conv(wr, "decoder.head.2", 3, d, 3, 3, 0.7f, err);
    rc = rc ? rc : rf_st_writer_write(wr, path, err);
    rf_st_writer_destroy(&wr);
    return rc;
}

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(void)
{
    const char *e = getenv("RF_BENCH_VAE_DIM");
    int64_t dim = e ? atoll(e) : 16;
    e = getenv("RF_BENCH_THREADS");
    int threads = e ? atoi(e) : (int)sysconf(_SC_NPROCESSORS_ONLN);
    int T = 5, h = 8, w = 8;
    e = getenv("RF_BENCH_VAE_LATENT"); /* HxW, default 8x8 */
    if (e && (sscanf(e, "%dx%d", &h, &w) != 2 || h < 1 || w < 1 || h > 512 || w > 512)) {
        fprintf(stderr, "bench_vae: RF_BENCH_VAE_LATENT wants HxW, got '%s'\n", e);
        return 2;
    }
    char dir[] = "/tmp/rf_bench_vae_XXXXXX", vpath[256], zpath[256];
    rf_error err = {0};
    if (!mkdtemp(dir)) {
        fprintf(stderr, "bench_vae: cannot create a temporary folder\n");
        return 1;
    }
    snprintf(vpath, sizeof(vpath), "%s/vae.safetensors", dir);
    snprintf(zpath, sizeof(zpath), "%s/z.safetensors", dir);
    size_t nz = (size_t)16 * T * h * w;
    float *z = malloc(nz * sizeof(float));
    for (size_t i = 0; i < nz; i++)
        z[i] = s_gauss();
    int64_t zs[5] = {1, 16, T, h, w};
    rf_st_writer *wr = rf_st_writer_new();
    if (s_write_vae(vpath, dim, &err) || rf_st_writer_add(wr, "z", RF_DTYPE_F32, 5, zs, z, &err) ||
        rf_st_writer_write(wr, zpath, &err)) {
        fprintf(stderr, "bench_vae: %s\n", err.msg);
        return 1;
    }
    rf_st_writer_destroy(&wr);
    rf_backend *be = rf_backend_cpu_new(threads, &err);
    rf_vae *vae = be ? rf_vae_load(vpath, be, &err) : NULL;
    if (!vae) {
        fprintf(stderr, "bench_vae: %s\n", err.msg);
        return 1;
    }
    int64_t F = rf_vae_pixel_frames(vae, 0, T), H = 8 * h, W = 8 * w;
    float *out = malloc((size_t)(3 * F * H * W) * sizeof(float));
    double best = 1e30;
    for (int rep = 0; rep < 3; rep++) { /* the first run is a warm-up */
        double t0 = s_now();
        if (rf_vae_decode_segment(vae, z, T, h, w, 0, T, 0, out, &err)) {
            fprintf(stderr, "bench_vae: %s\n", err.msg);
            return 1;
        }
        double dt = s_now() - t0;
        if (rep && dt < best)
            best = dt;
    }
    double fps = (double)F / best;
    printf("vae decode: base %lld, z [1,16,%d,%d,%d] -> %lld frames %lldx%lld, %d threads\n",
           (long long)dim, T, h, w, (long long)F, (long long)H, (long long)W, threads);
    printf("  reelfarm  %8.2f frames/s (%.3f s)\n", fps, best);
    const char *py = getenv("RF_PYTHON") ? getenv("RF_PYTHON") : "/usr/bin/python3";
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "%s %s/tools/reference/vae_bench_peer.py --vae %s --input %s --threads %d 2>&1", py,
             RF_SOURCE_DIR, vpath, zpath, threads);
    FILE *pp = popen(cmd, "r");
    double peer = 0, whole = 0;
    char line[512];
    while (pp && fgets(line, sizeof(line), pp))
        if (sscanf(line, "peer_fps %lf", &peer) != 1 &&
            sscanf(line, "peer_whole_fps %lf", &whole) != 1)
            fputs(line, stdout);
    if (pp)
        pclose(pp);
    if (peer > 0)
        printf("  pytorch   %8.2f frames/s (the release's streamed path, same threads)\n"
               "  ratio     %8.2fx (goal >= 2x)\n",
               peer, fps / peer);
    if (whole > 0)
        printf("  pytorch   %8.2f frames/s (whole-sequence convs, not streamed)\n"
               "  ratio     %8.2fx\n",
               whole, fps / whole);
    else
        printf("  pytorch   (peer unavailable: needs %s with torch)\n", py);

    /* the warm-up table on the same VAE, small latent */
    e = getenv("RF_BENCH_VAE_WARMUP_MAX");
    int maxw = e ? atoi(e) : 32;
    double *mx = calloc((size_t)maxw + 1, sizeof(double));
    int w8 = -1, w3 = -1;
    double t0 = s_now();
    if (rf_vae_measure_warmup(vae, 4, 4, maxw, 1, mx, &w8, &w3, &err)) {
        fprintf(stderr, "bench_vae: %s\n", err.msg);
        return 1;
    }
    printf("vae warm-up (base %lld, random weights, latent 4x4, %.1f s):\n  w  max_abs   8-bit\n",
           (long long)dim, s_now() - t0);
    for (int i = 0; i <= maxw; i++)
        printf("  %-2d %-9.3g %.2f\n", i, mx[i], mx[i] * 127.5);
    printf("  smallest w within one 8-bit level: %d, within 1e-3: %d (-1: beyond %d)\n", w8, w3,
           maxw);
    free(mx);
    free(out);
    free(z);
    rf_vae_destroy(&vae);
    rf_backend_destroy(&be);
    remove(vpath);
    remove(zpath);
    rmdir(dir);
    return 0;
}
