/* test_tokenizer.c - engine/tokenizer and engine/text_clean against sentencepiece.
 *
 * tests/fixtures/tokenizer/ holds small models trained with python3-sentencepiece and,
 * for each, several hundred strings with the ids sentencepiece gives (see
 * tools/tokenizer/make_fixtures.py): every one must match exactly, both the raw
 * Encode and the Wan path (cleaning + </s> + truncation), and the cleaned text must
 * match Python's. Hostile inputs: truncated, garbage and empty model files, broken
 * character maps, invalid UTF-8 prompts.
 */
#include "rf_test.h"

#include "sentencepiece_model.pb-c.h"
#include "text_clean.h"
#include "tokenizer.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

static const char *s_models[] = {"nfkc_bf", "nmt_cf", "identity_raw"};

static json_t *s_load_json(const char *name)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/tokenizer/%s.json", rf_test_fixtures(), name);
    json_error_t je;
    json_t *doc = json_load_file(path, 0, &je);
    RF_CHECK_MSG(doc, "%s: %s (line %d)", path, je.text, je.line);
    return doc;
}

static rf_tokenizer *s_load_model(const char *name)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/tokenizer/%s.model", rf_test_fixtures(), name);
    rf_error err = {0};
    rf_tokenizer *t = rf_tokenizer_load(path, &err);
    RF_CHECK_MSG(t, "%s: %s", path, err.msg);
    return t;
}

static void s_print_ids(const char *what, const int32_t *ids, size_t n)
{
    fprintf(stderr, "  %s (%zu):", what, n);
    for (size_t i = 0; i < n && i < 40; i++)
        fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, "%s\n", n > 40 ? " ..." : "");
}

/* 1 when ids[0..n) equals the JSON array want; prints both otherwise. */
static int s_same(const char *model, const char *text, const char *what, const int32_t *ids,
                  size_t n, json_t *want)
{
    size_t wn = json_array_size(want);
    int same = wn == n;
    for (size_t i = 0; same && i < n; i++)
        same = json_integer_value(json_array_get(want, i)) == ids[i];
    if (!same) {
        fprintf(stderr, "MISMATCH %s %s for \"%.80s\"\n", model, what, text);
        s_print_ids("got", ids, n);
        int32_t w[40];
        for (size_t i = 0; i < wn && i < 40; i++)
            w[i] = (int32_t)json_integer_value(json_array_get(want, i));
        s_print_ids("want", w, wn < 40 ? wn : 40);
    }
    return same;
}

static void s_check_model(const char *model)
{
    json_t *doc = s_load_json(model);
    rf_tokenizer *t = s_load_model(model);
    json_t *cases = json_object_get(doc, "cases");
    size_t ctx = (size_t)json_integer_value(json_object_get(doc, "context_len"));
    RF_CHECK_EQ_INT(rf_tokenizer_eos_id(t), json_integer_value(json_object_get(doc, "eos_id")));
    RF_CHECK(json_array_size(cases) >= 300);
    size_t bad = 0, total = 0;
    for (size_t i = 0; i < json_array_size(cases); i++) {
        json_t *c = json_array_get(cases, i);
        const char *text = json_string_value(json_object_get(c, "text"));
        size_t tlen = json_string_length(json_object_get(c, "text"));
        const char *want_clean = json_string_value(json_object_get(c, "clean"));
        rf_error err = {0};
        char *clean = rf_text_clean(text, tlen, &err);
        RF_CHECK_MSG(clean, "clean \"%.60s\": %s", text, err.msg);
        if (strcmp(clean, want_clean) != 0) {
            fprintf(stderr, "MISMATCH clean for \"%.80s\": got \"%.80s\" want \"%.80s\"\n", text,
                    clean, want_clean);
            bad++;
        }
        free(clean);
        int32_t *ids = NULL;
        size_t n = 0;
        RF_CHECK_MSG(rf_tokenizer_encode_raw(t, text, tlen, &ids, &n, &err) == 0, "%s", err.msg);
        bad += !s_same(model, text, "raw", ids, n, json_object_get(c, "raw"));
        free(ids);
        RF_CHECK_MSG(rf_tokenizer_encode(t, text, ctx, &ids, &n, &err) == 0, "%s", err.msg);
        bad += !s_same(model, text, "cleaned", ids, n, json_object_get(c, "ids"));
        free(ids);
        total += 3;
    }
    fprintf(stderr, "# %s: %zu of %zu checks match (%zu strings)\n", model, total - bad, total,
            json_array_size(cases));
    rf_tokenizer_destroy(&t);
    json_decref(doc);
    RF_CHECK_EQ_INT(bad, 0);
}

RF_TEST(nfkc_byte_fallback_matches_sentencepiece)
{
    s_check_model(s_models[0]);
}
RF_TEST(nmt_nfkc_cf_user_defined_matches_sentencepiece)
{
    s_check_model(s_models[1]);
}
RF_TEST(identity_no_whitespace_removal_matches_sentencepiece)
{
    s_check_model(s_models[2]);
}

RF_TEST(truncation_keeps_eos_last)
{
    rf_tokenizer *t = s_load_model("nfkc_bf");
    rf_error err = {0};
    int32_t *full = NULL, *cut = NULL;
    size_t nf = 0, nc = 0;
    const char *p = "a video of the cat dog runs jumps over lazy fox in a garden at sunset";
    RF_CHECK(rf_tokenizer_encode(t, p, 512, &full, &nf, &err) == 0);
    RF_CHECK(nf > 6);
    RF_CHECK(rf_tokenizer_encode(t, p, 5, &cut, &nc, &err) == 0);
    RF_CHECK_EQ_INT(nc, 5);
    RF_CHECK(memcmp(full, cut, 4 * sizeof(int32_t)) == 0);
    RF_CHECK_EQ_INT(cut[4], rf_tokenizer_eos_id(t));
    RF_CHECK_EQ_INT(full[nf - 1], rf_tokenizer_eos_id(t));
    RF_CHECK(rf_tokenizer_encode(t, p, 1, &cut, &nc, &err) != 0);
    free(full);
    free(cut);
    rf_tokenizer_destroy(&t);
    rf_tokenizer_destroy(&t);
}

RF_TEST(accessors)
{
    rf_tokenizer *t = s_load_model("nfkc_bf");
    RF_CHECK_EQ_INT(rf_tokenizer_vocab_size(t), 1500);
    RF_CHECK_EQ_INT(rf_tokenizer_eos_id(t), 1);
    RF_CHECK_EQ_INT(rf_tokenizer_unk_id(t), 2);
    RF_CHECK_EQ_INT(rf_tokenizer_pad_id(t), 0);
    RF_CHECK_EQ_STR(rf_tokenizer_piece(t, 1), "</s>");
    RF_CHECK_EQ_STR(rf_tokenizer_piece(t, 3), "<0x00>");
    RF_CHECK(rf_tokenizer_piece(t, 1500) == NULL);
    RF_CHECK(rf_tokenizer_piece(t, -1) == NULL);
    rf_tokenizer_destroy(&t);
}

RF_TEST(invalid_utf8_prompt_is_refused)
{
    rf_tokenizer *t = s_load_model("nmt_cf");
    rf_error err = {0};
    int32_t *ids = NULL;
    size_t n = 0;
    RF_CHECK_EQ_INT(rf_tokenizer_encode(t, "ok \xff bad", 512, &ids, &n, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "UTF-8");
    RF_CHECK_CONTAINS(err.msg, "offset 3");
    RF_CHECK(ids == NULL);
    /* the raw encoder follows sentencepiece: each bad byte is one U+FFFD (unknown) */
    RF_CHECK(rf_tokenizer_encode_raw(t, "\xff\xfe", 2, &ids, &n, &err) == 0);
    RF_CHECK(n >= 1);
    free(ids);
    rf_tokenizer_destroy(&t);
}

static char *s_read(const char *name, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/tokenizer/%s", rf_test_fixtures(), name);
    FILE *f = fopen(path, "rb");
    RF_CHECK(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n);
    RF_CHECK(buf && fread(buf, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

RF_TEST(hostile_model_files)
{
    size_t len = 0;
    char *buf = s_read("nfkc_bf.model", &len);
    rf_error err = {0};
    /* truncated at many points: a clear error, never a crash */
    size_t cuts[] = {1, 2, 7, 100, 1000, len / 3, len / 2, len - 1};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        rf_error_clear(&err);
        rf_tokenizer *t = rf_tokenizer_from_memory(buf, cuts[i], "cut.model", &err);
        RF_CHECK_MSG(t == NULL, "a model cut at %zu bytes loaded", cuts[i]);
        RF_CHECK_CONTAINS(err.msg, "cut.model");
    }
    char path[1024];
    rf_test_path(path, sizeof(path), "half.model");
    RF_CHECK(rf_test_write_file(path, buf, len / 2) == 0);
    rf_tokenizer *t = rf_tokenizer_load(path, &err);
    RF_CHECK(t == NULL);
    RF_CHECK_CONTAINS(err.msg, "half.model");
    RF_CHECK_CONTAINS(err.msg, "not a SentencePiece model");
    /* garbage and empty files */
    char junk[4096];
    unsigned x = 12345;
    for (size_t i = 0; i < sizeof(junk); i++) {
        x = x * 1103515245u + 12345u;
        junk[i] = (char)(x >> 16);
    }
    RF_CHECK(rf_tokenizer_from_memory(junk, sizeof(junk), "junk.model", &err) == NULL);
    RF_CHECK_CONTAINS(err.msg, "junk.model");
    RF_CHECK(rf_tokenizer_from_memory("", 0, "empty.model", &err) == NULL);
    RF_CHECK_CONTAINS(err.msg, "no pieces");
    rf_test_path(path, sizeof(path), "missing.model");
    RF_CHECK(rf_tokenizer_load(path, &err) == NULL);
    RF_CHECK_EQ_INT(err.code, RF_ENOTFOUND);
    free(buf);
}

/* Re-packs the fixture with its character map replaced by blob[0..n). */
static rf_tokenizer *s_with_charsmap(const uint8_t *blob, size_t n, rf_error *err)
{
    size_t len = 0;
    char *buf = s_read("nfkc_bf.model", &len);
    Sentencepiece__ModelProto *mp =
        sentencepiece__model_proto__unpack(NULL, len, (const uint8_t *)buf);
    RF_CHECK(mp && mp->normalizer_spec);
    ProtobufCBinaryData saved = mp->normalizer_spec->precompiled_charsmap;
    mp->normalizer_spec->precompiled_charsmap.data = (uint8_t *)blob;
    mp->normalizer_spec->precompiled_charsmap.len = n;
    size_t plen = sentencepiece__model_proto__get_packed_size(mp);
    uint8_t *packed = malloc(plen);
    sentencepiece__model_proto__pack(mp, packed);
    mp->normalizer_spec->precompiled_charsmap = saved;
    sentencepiece__model_proto__free_unpacked(mp, NULL);
    free(buf);
    rf_tokenizer *t = rf_tokenizer_from_memory(packed, plen, "edited.model", err);
    free(packed);
    return t;
}

RF_TEST(hostile_character_maps)
{
    rf_error err = {0};
    uint8_t tiny[3] = {1, 0, 0};
    RF_CHECK(s_with_charsmap(tiny, sizeof(tiny), &err) == NULL);
    RF_CHECK_CONTAINS(err.msg, "precompiled_charsmap");
    uint8_t big[12] = {0xff, 0xff, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8};
    RF_CHECK(s_with_charsmap(big, sizeof(big), &err) == NULL);
    RF_CHECK_CONTAINS(err.msg, "trie");
    /* a trie whose root sends every byte far outside the array: loads (sentencepiece
     * cannot tell either), then encoding fails cleanly instead of reading out of bounds */
    uint8_t wild[12] = {4, 0, 0, 0, 0x00, 0xfc, 0xff, 0x7f, 'x', 0, 'y', 0};
    rf_tokenizer *t = s_with_charsmap(wild, sizeof(wild), &err);
    RF_CHECK_MSG(t, "%s", err.msg);
    int32_t *ids = NULL;
    size_t n = 0;
    RF_CHECK(rf_tokenizer_encode_raw(t, "abc", 3, &ids, &n, &err) != 0);
    RF_CHECK_CONTAINS(err.msg, "outside");
    rf_tokenizer_destroy(&t);
}

RF_TEST(text_clean_examples)
{
    struct {
        const char *in, *want;
    } cases[] = {
        {"  a \t\n b  ", "a b"},
        {"&amp;amp;", "&"},
        {"&lt;b&gt;", "<b>"},
        {"&ampfoo", "&foo"},
        {"&notit;", "\xc2\xac"
                    "it;"},
        {"&#x1F600;", "\xf0\x9f\x98\x80"},
        {"&#128;", "\xe2\x82\xac"},
        {"&#0;", "\xef\xbf\xbd"},
        {"&#1;x", "x"},
        {"&#99999999999999999999;", "\xef\xbf\xbd"},
        {"&#;&#x;", "&#;&#x;"},
        {"a\xe3\x80\x80"
         "b\xc2\xa0"
         "c",
         "a b c"},
        {"&nbsp;x&nbsp;", "x"},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rf_error err = {0};
        char *got = rf_text_clean(cases[i].in, strlen(cases[i].in), &err);
        RF_CHECK_MSG(got, "%s", err.msg);
        RF_CHECK_EQ_STR(got, cases[i].want);
        free(got);
    }
    size_t bad = 0;
    RF_CHECK(rf_utf8_validate("\xed\xa0\x80", 3, &bad) == -1); /* a surrogate */
    RF_CHECK(rf_utf8_validate("\xc0\xaf", 2, &bad) == -1);     /* overlong */
    RF_CHECK(rf_utf8_validate("ab\xf4\x90\x80\x80", 6, &bad) == -1);
    RF_CHECK_EQ_INT(bad, 2);
    RF_CHECK(rf_utf8_validate("\xf0\x9f\x98\x80", 4, NULL) == 0);
}
