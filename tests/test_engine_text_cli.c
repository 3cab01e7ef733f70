/* test_engine_text_cli.c - `reelfarm-engine tokenize` as a user runs it.
 *
 * Runs the built binary (RF_BUILD/bin/reelfarm-engine) with fork/exec, no shell, on
 * fixture strings of tests/fixtures/tokenizer and compares the printed ids with
 * sentencepiece's; checks usage errors (exit 2) and a broken model (exit 1 with a
 * message naming the file).
 */
#include "rf_test.h"

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
