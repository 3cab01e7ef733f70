/* test_engine_text_cli.c - `reelfarm-engine tokenize` and `t5` as a user runs them.
 *
 * Runs the built binary (RF_BUILD/bin/reelfarm-engine) with fork/exec, no shell:
 * tokenize on fixture strings of tests/fixtures/tokenizer (ids as sentencepiece gives
 * them); t5 on the reference's ids (context within NMSE 1e-6 of PyTorch) and on a
 * prompt (same context as its ids); usage errors (exit 2), broken models and ids past
 * the vocabulary (exit 1 with a message naming the problem, no output written).
 */
#include "rf_test.h"

#include "safetensors.h"
#include "tokenizer.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *s_engine(void)
{
    static char path[1024];
    const char *b = getenv("RF_BUILD");
    snprintf(path, sizeof(path), "%s/bin/reelfarm-engine", b ? b : RF_SOURCE_DIR "/build");
    if (access(path, X_OK) != 0)
        RF_SKIP("%s not built", path);
    return path;
}

/* Runs argv, captures stdout+stderr into out (NUL-terminated); returns the exit status. */
static int s_run(char *const argv[], char *out, size_t cap)
{
    int fd[2];
    RF_CHECK(pipe(fd) == 0);
    pid_t pid = fork();
    RF_CHECK(pid >= 0);
    if (pid == 0) {
        dup2(fd[1], 1);
        dup2(fd[1], 2);
        close(fd[0]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fd[1]);
    size_t n = 0;
    ssize_t r;
    while ((r = read(fd[0], out + n, cap - 1 - n)) > 0 && n < cap - 1)
        n += (size_t)r;
    out[n] = '\0';
    close(fd[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

RF_TEST(tokenize_prints_sentencepiece_ids_with_eos)
{
    const char *bin = s_engine();
    char model[1024], json[1024];
    snprintf(model, sizeof(model), "%s/tokenizer/nfkc_bf.model", rf_test_fixtures());
    snprintf(json, sizeof(json), "%s/tokenizer/nfkc_bf.json", rf_test_fixtures());
    json_t *doc = json_load_file(json, 0, NULL);
    RF_CHECK(doc);
    json_t *cases = json_object_get(doc, "cases");
    static char out[1 << 16];
    int checked = 0;
    for (size_t i = 0; i < json_array_size(cases); i += 9) {
        json_t *c = json_array_get(cases, i);
        const char *text = json_string_value(json_object_get(c, "text"));
        if (strlen(text) != json_string_length(json_object_get(c, "text")) || text[0] == '-')
            continue; /* argv cannot carry NULs; '-' would read as an option */
        char *argv[] = {(char *)bin, "tokenize",   "--tokenizer", model,
                        "--prompt",  (char *)text, NULL};
        RF_CHECK_EQ_INT(s_run(argv, out, sizeof(out)), 0);
        char want[1 << 14];
        size_t w = 0;
        json_t *ids = json_object_get(c, "ids");
        for (size_t k = 0; k < json_array_size(ids); k++)
            w += (size_t)snprintf(want + w, sizeof(want) - w, "%s%lld", k ? " " : "",
                                  (long long)json_integer_value(json_array_get(ids, k)));
        snprintf(want + w, sizeof(want) - w, "\n");
        RF_CHECK_MSG(strcmp(out, want) == 0, "\"%.60s\": got %.200s want %.200s", text, out, want);
        checked++;
    }
    RF_CHECK(checked >= 40);
    json_decref(doc);
}

RF_TEST(tokenize_usage_and_errors)
{
    const char *bin = s_engine();
    static char out[1 << 14];
    char *no_prompt[] = {(char *)bin, "tokenize", "--tokenizer", "x.model", NULL};
    RF_CHECK_EQ_INT(s_run(no_prompt, out, sizeof(out)), 2);
    RF_CHECK_CONTAINS(out, "--prompt");
    char *help[] = {(char *)bin, "tokenize", "--help", NULL};
    RF_CHECK_EQ_INT(s_run(help, out, sizeof(out)), 0);
    RF_CHECK_CONTAINS(out, "usage: reelfarm-engine tokenize");
    char junk[1024];
    rf_test_path(junk, sizeof(junk), "junk.model");
    RF_CHECK(rf_test_write_file(junk, "\x0a\xff\xff\xff\xff\x0f garbage", 13) == 0);
    char *bad[] = {(char *)bin, "tokenize", "--tokenizer", junk, "--prompt", "hi", NULL};
    RF_CHECK_EQ_INT(s_run(bad, out, sizeof(out)), 1);
    RF_CHECK_CONTAINS(out, "junk.model");
    char model[1024];
    snprintf(model, sizeof(model), "%s/tokenizer/nmt_cf.model", rf_test_fixtures());
    char *pieces[] = {(char *)bin, "tokenize",  "--tokenizer", model,
                      "--prompt",  "Wan video", "--pieces",    NULL};
    RF_CHECK_EQ_INT(s_run(pieces, out, sizeof(out)), 0);
    RF_CHECK_CONTAINS(out, "</s>");
}

/* Reads `context` of a safetensors file written by `t5` into a malloc'd array. */
static float *s_context(const char *path, int64_t *l, int64_t *dim)
{
    rf_error err = {0};
    rf_safetensors *st = rf_st_open(path, &err);
    RF_CHECK_MSG(st, "%s", err.msg);
    const rf_st_tensor *t = rf_st_find(st, "context");
    RF_CHECK(t && t->dtype == RF_DTYPE_F32 && t->ndim == 3 && t->shape[0] == 1);
    *l = t->shape[1];
    *dim = t->shape[2];
    float *p = malloc(rf_st_numel(t) * sizeof(float));
    RF_CHECK(rf_st_read_f32(t, p, &err) == 0);
    rf_st_destroy(&st);
    return p;
}

RF_TEST(t5_writes_the_context_of_ids_and_prompts)
{
    const char *bin = s_engine();
    char model[1024], io_path[1024], out_path[1024], model_tok[1024];
    snprintf(model, sizeof(model), "%s/t5/umt5_tiny.safetensors", rf_test_fixtures());
    snprintf(io_path, sizeof(io_path), "%s/t5/io.safetensors", rf_test_fixtures());
    snprintf(model_tok, sizeof(model_tok), "%s/tokenizer/nfkc_bf.model", rf_test_fixtures());
    rf_test_path(out_path, sizeof(out_path), "ctx.safetensors");
    rf_error err = {0};
    rf_safetensors *io = rf_st_open(io_path, &err);
    RF_CHECK_MSG(io, "%s", err.msg);
    const rf_st_tensor *ids = rf_st_find(io, "ids_short"), *want = rf_st_find(io, "out_short");
    RF_CHECK(ids && want && ids->dtype == RF_DTYPE_I64);
    char list[512];
    size_t w = 0;
    for (size_t i = 0; i < rf_st_numel(ids); i++)
        w += (size_t)snprintf(list + w, sizeof(list) - w, "%s%lld", i ? "," : "",
                              (long long)((const int64_t *)ids->data)[i]);
    static char out[1 << 14];
    char *run_ids[] = {(char *)bin, "t5",     "--t5",      model, "--ids", list,
                       "--output",  out_path, "--threads", "2",   NULL};
    RF_CHECK_EQ_INT(s_run(run_ids, out, sizeof(out)), 0);
    int64_t l, dim;
    float *ctx = s_context(out_path, &l, &dim);
    RF_CHECK_EQ_INT(l, rf_st_numel(ids));
    RF_CHECK_EQ_INT(dim, 64);
    float *ref = malloc(rf_st_numel(want) * sizeof(float));
    RF_CHECK(rf_st_read_f32(want, ref, &err) == 0);
    RF_CHECK(rf_test_nmse(ctx, ref, (size_t)(l * dim)) <= 1e-6);
    free(ctx);
    free(ref);
    rf_st_destroy(&io);
    /* a prompt goes through the tokenizer: same context as its ids (the tiny model's
     * vocabulary is 512, so pick a prompt whose ids all fall inside it) */
    rf_tokenizer *tok = rf_tokenizer_load(model_tok, &err);
    RF_CHECK(tok);
    const char *prompts[] = {"the the", "a a a", "in the", "of", "a"};
    const char *prompt = NULL;
    int32_t *pid = NULL;
    size_t pn = 0;
    for (size_t i = 0; i < sizeof(prompts) / sizeof(prompts[0]) && !prompt; i++) {
        RF_CHECK(rf_tokenizer_encode(tok, prompts[i], 512, &pid, &pn, &err) == 0);
        int ok = 1;
        for (size_t k = 0; k < pn; k++)
            ok &= pid[k] < 512;
        if (ok)
            prompt = prompts[i];
        else
            free(pid);
    }
    RF_CHECK_MSG(prompt, "no candidate prompt fits the tiny vocabulary");
    w = 0;
    for (size_t k = 0; k < pn; k++)
        w += (size_t)snprintf(list + w, sizeof(list) - w, "%s%d", k ? "," : "", (int)pid[k]);
    free(pid);
    rf_tokenizer_destroy(&tok);
    char out2[1024];
    rf_test_path(out2, sizeof(out2), "ctx2.safetensors");
    char *run_prompt[] = {(char *)bin, "t5",           "--t5",     model, "--tokenizer", model_tok,
                          "--prompt",  (char *)prompt, "--output", out2,  NULL};
    RF_CHECK_EQ_INT(s_run(run_prompt, out, sizeof(out)), 0);
    run_ids[5] = list;
    RF_CHECK_EQ_INT(s_run(run_ids, out, sizeof(out)), 0);
    int64_t l2, d2;
    float *a = s_context(out2, &l2, &d2), *b = s_context(out_path, &l, &dim);
    RF_CHECK_EQ_INT(l2, l);
    RF_CHECK(memcmp(a, b, sizeof(float) * (size_t)(l * dim)) == 0);
    free(a);
    free(b);
}

RF_TEST(t5_usage_and_errors)
{
    const char *bin = s_engine();
    char model[1024], out_path[1024], tok[1024];
    snprintf(model, sizeof(model), "%s/t5/umt5_tiny.safetensors", rf_test_fixtures());
    snprintf(tok, sizeof(tok), "%s/tokenizer/nmt_cf.model", rf_test_fixtures());
    rf_test_path(out_path, sizeof(out_path), "never.safetensors");
    static char out[1 << 14];
    char *both[] = {(char *)bin, "t5", "--t5",     model,    "--ids", "1",
                    "--prompt",  "x",  "--output", out_path, NULL};
    RF_CHECK_EQ_INT(s_run(both, out, sizeof(out)), 2);
    char *bad_ids[] = {(char *)bin, "t5",       "--t5",   model, "--ids",
                       "1,x",       "--output", out_path, NULL};
    RF_CHECK_EQ_INT(s_run(bad_ids, out, sizeof(out)), 2);
    RF_CHECK_CONTAINS(out, "--ids");
    char *range[] = {(char *)bin, "t5",       "--t5",   model, "--ids",
                     "5,9999",    "--output", out_path, NULL};
    RF_CHECK_EQ_INT(s_run(range, out, sizeof(out)), 1);
    RF_CHECK_CONTAINS(out, "9999");
    /* a tokenizer whose ids overflow the model's vocabulary is caught, not read past */
    char *vocab[] = {(char *)bin,   "t5",     "--t5",     model,
                     "--tokenizer", tok,      "--prompt", "zebra crossing quickly",
                     "--output",    out_path, NULL};
    RF_CHECK_EQ_INT(s_run(vocab, out, sizeof(out)), 1);
    RF_CHECK_CONTAINS(out, "vocabulary");
    RF_CHECK(access(out_path, F_OK) != 0);
}
