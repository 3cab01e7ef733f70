/* cmd_t5.c - `reelfarm-engine t5`: run the umT5 text encoder on ids or a prompt.
 *
 * Loads the encoder from safetensors on the CPU backend, takes token ids (--ids) or a
 * prompt and a tokenizer (--prompt, --tokenizer: the same path as `tokenize`), and
 * writes OUT.safetensors holding `context` [1, L, dim] F32 for the L tokens (no
 * padding: Wan trims the encoder output to the real tokens). Prints L, dim and the
 * encode time.
 */
#include "cpu/cpu.h"
#include "safetensors.h"
#include "t5.h"
#include "tokenizer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void s_help(FILE *out)
{
    fprintf(out,
            "usage: reelfarm-engine t5 --t5 FILE.safetensors (--ids 12,7,1 | --tokenizer "
            "FILE.model --prompt TEXT)\n"
            "                          --output OUT.safetensors [--threads N]\n\n"
            "Runs the umT5 text encoder (fp32, CPU backend) and writes the tensor `context`\n"
            "[1, L, dim] for the L tokens to OUT. --ids takes comma-separated token ids\n"
            "(end them with </s> yourself); --prompt is cleaned and tokenized as\n"
            "`reelfarm-engine tokenize` does (</s> appended, at most %d ids).\n"
            "--threads: compute threads (default all cores).\n\n"
            "example: reelfarm-engine t5 --t5 models_t5_umt5-xxl-enc.safetensors \\\n"
            "           --tokenizer spiece.model --prompt \"a cat\" --output ctx.safetensors\n",
            RF_TOKENIZER_CONTEXT_LEN);
}

/* Parses "12,7,1" into a malloc'd array. Returns 0 or -1 with a message printed. */
static int s_parse_ids(const char *s, int32_t **ids, size_t *n)
{
    size_t cap = 1;
    for (const char *p = s; *p; p++)
        cap += *p == ',';
    *ids = malloc(cap * sizeof(int32_t));
    *n = 0;
    if (!*ids)
        return -1;
    const char *p = s;
    for (;;) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > INT32_MAX || (*end != ',' && *end != '\0')) {
            fprintf(stderr, "t5: --ids must be comma-separated non-negative integers, got '%s'\n",
                    s);
            free(*ids);
            *ids = NULL;
            return -1;
        }
        (*ids)[(*n)++] = (int32_t)v;
        if (*end == '\0')
            return 0;
        p = end + 1;
    }
}

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int rf_cmd_t5(int argc, char **argv)
{
    const char *t5_path = NULL, *ids_arg = NULL, *tok_path = NULL, *prompt = NULL, *out = NULL;
    int threads = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            s_help(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--t5") && i + 1 < argc) {
            t5_path = argv[++i];
        } else if (!strcmp(argv[i], "--ids") && i + 1 < argc) {
            ids_arg = argv[++i];
        } else if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc) {
            tok_path = argv[++i];
        } else if (!strcmp(argv[i], "--prompt") && i + 1 < argc) {
            prompt = argv[++i];
        } else if ((!strcmp(argv[i], "--output") || !strcmp(argv[i], "-o")) && i + 1 < argc) {
            out = argv[++i];
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            threads = atoi(argv[++i]);
        } else {
            fprintf(stderr, "t5: unknown or incomplete option '%s' (see --help)\n", argv[i]);
            return 2;
        }
    }
    if (!t5_path || !out || (!ids_arg == !prompt) || (prompt && !tok_path)) {
        fprintf(stderr, "t5: needs --t5, --output and either --ids or --tokenizer with --prompt "
                        "(see --help)\n");
        return 2;
    }
    int32_t *ids = NULL;
    size_t n = 0;
    rf_error err = {0};
    if (ids_arg) {
        if (s_parse_ids(ids_arg, &ids, &n))
            return 2;
    } else {
        rf_tokenizer *tok = rf_tokenizer_load(tok_path, &err);
        if (!tok || rf_tokenizer_encode(tok, prompt, RF_TOKENIZER_CONTEXT_LEN, &ids, &n, &err)) {
            fprintf(stderr, "t5: %s\n", err.msg);
            rf_tokenizer_destroy(&tok);
            return 1;
        }
        rf_tokenizer_destroy(&tok);
    }
    int status = 1;
    rf_backend *be = rf_backend_cpu_new(threads, &err);
    rf_t5 *t5 = be ? rf_t5_load(be, t5_path, (int64_t)n, &err) : NULL;
    float *ctx = NULL;
    rf_st_writer *w = NULL;
    if (!t5)
        goto done;
    const rf_t5_config *c = rf_t5_get_config(t5);
    ctx = malloc(n * (size_t)c->dim * sizeof(float));
    if (!ctx) {
        rf_error_set(&err, RF_ENOMEM, "out of memory for the output");
        goto done;
    }
    double t0 = s_now();
    if (rf_t5_encode(t5, ids, NULL, 1, (int64_t)n, ctx, &err))
        goto done;
    double dt = s_now() - t0;
    int64_t shape[3] = {1, (int64_t)n, c->dim};
    w = rf_st_writer_new();
    if (!w) {
        rf_error_set(&err, RF_ENOMEM, "out of memory");
        goto done;
    }
    if (rf_st_writer_add(w, "context", RF_DTYPE_F32, 3, shape, ctx, &err) ||
        rf_st_writer_write(w, out, &err))
        goto done;
    printf("t5: %zu tokens, dim %lld, %d layers, %.3f s (%.1f tokens/s) -> %s\n", n,
           (long long)c->dim, (int)c->layers, dt, dt > 0 ? (double)n / dt : 0.0, out);
    status = 0;
done:
    if (status)
        fprintf(stderr, "t5: %s\n", err.msg);
    rf_st_writer_destroy(&w);
    free(ctx);
    rf_t5_destroy(&t5);
    rf_backend_destroy(&be);
    free(ids);
    return status;
}
