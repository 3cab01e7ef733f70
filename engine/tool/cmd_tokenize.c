/* cmd_tokenize.c - `reelfarm-engine tokenize`: a prompt's umT5 token ids.
 *
 * Runs exactly what the render pipeline runs before the text encoder: Wan's prompt
 * cleaning (without ftfy, see engine/text_clean.h), SentencePiece encoding with the
 * given .model, truncation to the context length and </s>. Prints the ids on one line,
 * space separated, </s> included; --pieces prints the piece strings instead.
 */
#include "tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void s_help(FILE *out)
{
    fprintf(out,
            "usage: reelfarm-engine tokenize --tokenizer FILE.model --prompt TEXT [--max-len N]\n"
            "                                [--pieces]\n\n"
            "Prints the token ids of TEXT (space separated, </s> included) as the text\n"
            "encoder sees them: the prompt is cleaned (HTML entities unescaped twice,\n"
            "whitespace collapsed; ftfy's fixes are not applied), encoded with the\n"
            "SentencePiece model (umT5's spiece.model for Wan), cut to N-1 ids (default %d)\n"
            "and ended with </s>. --pieces prints the pieces instead of the ids.\n\n"
            "example: reelfarm-engine tokenize --tokenizer umt5-xxl/spiece.model \\\n"
            "           --prompt \"a cat walks on the beach\"\n",
            RF_TOKENIZER_CONTEXT_LEN);
}

int rf_cmd_tokenize(int argc, char **argv)
{
    const char *model = NULL, *prompt = NULL;
    long max_len = RF_TOKENIZER_CONTEXT_LEN;
    int pieces = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            s_help(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc) {
            model = argv[++i];
        } else if (!strcmp(argv[i], "--prompt") && i + 1 < argc) {
            prompt = argv[++i];
        } else if (!strcmp(argv[i], "--max-len") && i + 1 < argc) {
            char *end;
            max_len = strtol(argv[++i], &end, 10);
            if (*end || max_len < 2 || max_len > 1000000) {
                fprintf(stderr, "tokenize: --max-len must be an integer >= 2, got '%s'\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(argv[i], "--pieces")) {
            pieces = 1;
        } else {
            fprintf(stderr, "tokenize: unknown or incomplete option '%s' (see --help)\n", argv[i]);
            return 2;
        }
    }
    if (!model || !prompt) {
        fprintf(stderr, "tokenize: --tokenizer and --prompt are required (see --help)\n");
        return 2;
    }
    rf_error err = {0};
    rf_tokenizer *tok = rf_tokenizer_load(model, &err);
    if (!tok) {
        fprintf(stderr, "tokenize: %s\n", err.msg);
        return 1;
    }
    int32_t *ids = NULL;
    size_t n = 0;
    if (rf_tokenizer_encode(tok, prompt, (size_t)max_len, &ids, &n, &err)) {
        fprintf(stderr, "tokenize: %s\n", err.msg);
        rf_tokenizer_destroy(&tok);
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        if (pieces)
            printf("%s%s", i ? " " : "", rf_tokenizer_piece(tok, ids[i]));
        else
            printf("%s%d", i ? " " : "", (int)ids[i]);
    }
    printf("\n");
    free(ids);
    rf_tokenizer_destroy(&tok);
    return 0;
}
