/* cmd_dit.c - `reelfarm-engine dit`: one forward of the Wan DiT, safetensors in and out.
 *
 * Reads x, t and context from the input file, loads the model folder (any of the three
 * forms, optionally split over --tp ranks), sizes the scratch for exactly this input,
 * runs one forward and writes v. Errors say which file, tensor or option is wrong.
 */
#include "dit/dit_tp.h"
#include "safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void s_help(FILE *out)
{
    fprintf(
        out,
        "usage: reelfarm-engine dit --model DIR --input IN.safetensors --output OUT.safetensors\n"
        "                           [--backend cpu|cuda] [--gpus 0,1,...] [--threads N] [--tp N]\n"
        "\n"
        "Runs ONE forward pass of a Wan2.1 text-to-video diffusion transformer (the DiT):\n"
        "given a noisy video latent x, a timestep t and the text encoder's output, it\n"
        "writes the model's prediction v (the flow-matching velocity). A full video\n"
        "generation calls this once per sampler step; this command is for checking a\n"
        "model, comparing against a reference, or timing.\n"
        "\n"
        "  --model DIR     the model folder, in any of these forms:\n"
        "                    official release: config.json + diffusion_pytorch_model.safetensors\n"
        "                      (or the sharded set with its .safetensors.index.json)\n"
        "                    single-file repack: one .safetensors with names starting\n"
        "                      'model.diffusion_model.' (dims read from the shapes)\n"
        "                    diffusers: config.json (num_attention_heads, ...) + weights\n"
        "                  F32 or BF16 weights; computation is F32 on the CPU; on cuda the\n"
        "                  matrices become BF16 (f32 accumulation), everything else is F32.\n"
        "  --input FILE    safetensors with:\n"
        "                    x        [B,16,F,H,W] F32   latent (F frames, H and W even)\n"
        "                    t        [B] F32            timestep the model receives (0..1000)\n"
        "                    context  [B,L,4096] F32     text encoder output, L <= 512 rows\n"
        "                                                (zero-padded to 512 as in Wan2.1)\n"
        "  --output FILE   written with v [B,16,F,H,W] F32\n"
        "  --backend B     cpu (default) or cuda (needs a build with the CUDA toolkit and a GPU)\n"
        "  --gpus LIST     cuda: the GPU of each rank, e.g. 0,1 (default 0 .. tp-1)\n"
        "  --threads N     CPU threads in total (default: all cores)\n"
        "  --tp N          split the model over N tensor-parallel ranks (default 1); N must\n"
        "                  divide the heads and the FFN width (the error lists valid N); on\n"
        "                  cuda one rank per GPU (NCCL refuses two ranks on one GPU)\n"
        "\n"
        "example:\n"
        "  reelfarm-engine dit --model tests/fixtures/dit/official \\\n"
        "      --input tests/fixtures/dit/io.safetensors --output /tmp/v.safetensors\n");
}

static int s_int_arg(const char *opt, const char *s, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < 0 || v > 1 << 20) {
        fprintf(stderr, "dit: %s takes a non-negative integer, got '%s'\n", opt, s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* Finds tensor name in the input with ndim dims; converts it to a fresh F32 array. */
static float *s_read(const rf_safetensors *st, const char *path, const char *name, int ndim,
                     const rf_st_tensor **out)
{
    const rf_st_tensor *t = rf_st_find(st, name);
    if (!t) {
        fprintf(stderr, "dit: %s has no tensor '%s' (see --help for the input format)\n", path,
                name);
        return NULL;
    }
    if (t->ndim != ndim) {
        fprintf(stderr, "dit: %s: tensor '%s' has %d dims, expected %d (see --help)\n", path, name,
                t->ndim, ndim);
        return NULL;
    }
    float *buf = malloc(rf_st_numel(t) * sizeof(float) + 1);
    rf_error err = {0};
    if (!buf || rf_st_read_f32(t, buf, &err)) {
        fprintf(stderr, "dit: %s: tensor '%s': %s\n", path, name, buf ? err.msg : "out of memory");
        free(buf);
        return NULL;
    }
    *out = t;
    return buf;
}

/* Parses "0,1,3" into gpus (at most cap); returns the count or -1. */
static int s_gpus_arg(const char *s, int *gpus, int cap)
{
    int n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v > 1023 || n == cap || (*end && *end != ',')) {
            fprintf(stderr, "dit: --gpus takes a list like 0,1 (GPU numbers), got '%s'\n", s);
            return -1;
        }
        gpus[n++] = (int)v;
        p = *end ? end + 1 : end;
    }
    if (n == 0)
        fprintf(stderr, "dit: --gpus is empty\n");
    return n ? n : -1;
}

int rf_cmd_dit(int argc, char **argv)
{
    const char *model = NULL, *in = NULL, *outp = NULL, *backend = "cpu";
    int threads = 0, tp = 1, ngpus = 0, tp_given = 0;
    int gpus[256];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            s_help(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "dit: unknown option or missing value: '%s' (see --help)\n", a);
            return 2;
        }
        if (!strcmp(a, "--model"))
            model = argv[++i];
        else if (!strcmp(a, "--input"))
            in = argv[++i];
        else if (!strcmp(a, "--output"))
            outp = argv[++i];
        else if (!strcmp(a, "--threads")) {
            if (s_int_arg(a, argv[++i], &threads))
                return 2;
        } else if (!strcmp(a, "--tp")) {
            if (s_int_arg(a, argv[++i], &tp))
                return 2;
            tp_given = 1;
        } else if (!strcmp(a, "--backend")) {
            backend = argv[++i];
        } else if (!strcmp(a, "--gpus")) {
            if ((ngpus = s_gpus_arg(argv[++i], gpus, 256)) < 0)
                return 2;
        } else {
            fprintf(stderr, "dit: unknown option '%s' (see --help)\n", a);
            return 2;
        }
    }
    if (!model || !in || !outp) {
        fprintf(stderr, "dit: --model, --input and --output are required (see --help)\n");
        return 2;
    }
    if (strcmp(backend, "cpu") && strcmp(backend, "cuda")) {
        fprintf(stderr, "dit: --backend must be cpu or cuda, got '%s'\n", backend);
        return 2;
    }
    if (ngpus && strcmp(backend, "cuda")) {
        fprintf(stderr, "dit: --gpus needs --backend cuda\n");
        return 2;
    }
    if (ngpus && !tp_given)
        tp = ngpus;
    if (ngpus && ngpus != tp) {
        fprintf(stderr, "dit: --gpus lists %d GPU%s but --tp is %d; give one GPU per rank\n", ngpus,
                ngpus == 1 ? "" : "s", tp);
        return 2;
    }
    rf_error err = {0};
    int status = 1;
    float *x = NULL, *t = NULL, *ctx = NULL, *v = NULL;
    rf_dit_tp *g = NULL;
    rf_st_writer *w = NULL;
    rf_safetensors *st = rf_st_open(in, &err);
    if (!st) {
        fprintf(stderr, "dit: %s\n", err.msg);
        return 1;
    }
    const rf_st_tensor *tx, *tt, *tc;
    if (!(x = s_read(st, in, "x", 5, &tx)) || !(t = s_read(st, in, "t", 1, &tt)) ||
        !(ctx = s_read(st, in, "context", 3, &tc)))
        goto done;
    int64_t B = tx->shape[0];
    if (tt->shape[0] != B || tc->shape[0] != B) {
        fprintf(stderr,
                "dit: %s: x has batch %lld but t has %lld and context %lld; they must agree\n", in,
                (long long)B, (long long)tt->shape[0], (long long)tc->shape[0]);
        goto done;
    }
    rf_dit_tp_opts opts = {backend, tp, threads, ngpus ? gpus : NULL};
    if (!(g = rf_dit_tp_open(model, &opts, &err))) {
        fprintf(stderr, "dit: %s\n", err.msg);
        goto done;
    }
    const rf_dit_config *c = rf_dit_get_config(rf_dit_tp_rank(g, 0));
    if (tx->shape[1] != c->in_dim || tc->shape[2] != c->text_dim) {
        fprintf(
            stderr,
            "dit: %s: x has %lld channels and context width %lld; the model takes %lld and %lld\n",
            in, (long long)tx->shape[1], (long long)tc->shape[2], (long long)c->in_dim,
            (long long)c->text_dim);
        goto done;
    }
    int64_t F = tx->shape[2], H = tx->shape[3], W = tx->shape[4];
    int64_t T = (F / c->patch[0]) * (H / c->patch[1]) * (W / c->patch[2]);
    if (rf_dit_tp_reserve(g, B, T > 0 ? T : 1, &err)) {
        fprintf(stderr, "dit: %s\n", err.msg);
        goto done;
    }
    size_t nv = (size_t)B * (size_t)c->out_dim * (size_t)F * (size_t)H * (size_t)W;
    v = malloc(nv * sizeof(float) + 1);
    if (!v) {
        fprintf(stderr, "dit: out of memory\n");
        goto done;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (rf_dit_tp_forward(g, B, F, H, W, x, t, ctx, tc->shape[1], v, &err)) {
        fprintf(stderr, "dit: %s\n", err.msg);
        goto done;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    int64_t vs[5] = {B, c->out_dim, F, H, W};
    w = rf_st_writer_new();
    if (!w || rf_st_writer_add(w, "v", RF_DTYPE_F32, 5, vs, v, &err) ||
        rf_st_writer_write(w, outp, &err)) {
        fprintf(stderr, "dit: writing %s: %s\n", outp, w ? err.msg : "out of memory");
        goto done;
    }
    fprintf(stderr,
            "dit: wrote %s (v [%lld,%lld,%lld,%lld,%lld], %lld tokens, forward %.3f s, %s, tp %d, "
            "collective %s)\n",
            outp, (long long)B, (long long)c->out_dim, (long long)F, (long long)H, (long long)W,
            (long long)T,
            (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec), backend, tp,
            rf_dit_tp_comm_name(g));
    status = 0;
done:
    rf_st_writer_destroy(&w);
    rf_dit_tp_destroy(&g);
    rf_st_destroy(&st);
    free(x), free(t), free(ctx), free(v);
    return status;
}
