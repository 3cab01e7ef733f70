/* test_safetensors.c - the safetensors reader against hostile files, the writer by
 * round trip, and sharded sets. Hostile files are built byte by byte here, so each
 * test says exactly which lie it tells.
 */
#include "rf_test.h"
#include "safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* Writes an 8-byte length (declared), then header, then len bytes of data. */
static const char *s_raw_len(const char *name, uint64_t declared, const char *header,
                             const void *data, size_t len)
{
    static char path[1024];
    rf_test_path(path, sizeof(path), name);
    size_t hl = strlen(header);
    unsigned char *buf = malloc(8 + hl + len + 1);
    RF_CHECK(buf != NULL);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)(declared >> (8 * i));
    memcpy(buf + 8, header, hl);
    if (len)
        memcpy(buf + 8 + hl, data, len);
    int rc = rf_test_write_file(path, buf, 8 + hl + len);
    free(buf);
    RF_CHECK_EQ_INT(rc, 0);
    return path;
}

static const char *s_raw(const char *name, const char *header, const void *data, size_t len)
{
    return s_raw_len(name, strlen(header), header, data, len);
}

static unsigned char s_zeros[4096];

/* Opening must fail with code, and the message must contain needle. */
static void s_expect_fail(const char *path, int code, const char *needle)
{
    rf_error err = {0};
    rf_safetensors *st = rf_st_open(path, &err);
    if (st)
        rf_st_destroy(&st);
    RF_CHECK_MSG(st == NULL, "opening %s succeeded; expected \"%s\"", path, needle);
    RF_CHECK_CONTAINS(err.msg, needle);
    RF_CHECK_EQ_INT(err.code, code);
}

RF_TEST(minimal_valid_file)
{
    float v[2] = {1.5f, -2.0f};
    const char *p = s_raw("ok.safetensors",
                          "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                          "\"__metadata__\":{\"format\":\"pt\"}}",
                          v, 8);
    rf_error err = {0};
    rf_safetensors *st = rf_st_open(p, &err);
    RF_CHECK_MSG(st != NULL, "%s", err.msg);
    RF_CHECK_EQ_INT(rf_st_count(st), 1);
    const rf_st_tensor *t = rf_st_find(st, "a");
    RF_CHECK(t != NULL);
    RF_CHECK_EQ_INT(t->ndim, 1);
    RF_CHECK_EQ_INT(t->shape[0], 2);
    RF_CHECK_EQ_INT(t->nbytes, 8);
    float out[2];
    RF_CHECK_EQ_INT(rf_st_read_f32(t, out, &err), 0);
    RF_CHECK(out[0] == 1.5f && out[1] == -2.0f);
    RF_CHECK_EQ_STR(rf_st_metadata(st, "format"), "pt");
    RF_CHECK(rf_st_metadata(st, "nope") == NULL);
    RF_CHECK(rf_st_find(st, "b") == NULL);
    RF_CHECK(rf_st_at(st, 1) == NULL);
    RF_CHECK_EQ_STR(rf_st_path_of(st, t), p);
    rf_st_destroy(&st);
    RF_CHECK(st == NULL);
    rf_st_destroy(&st); /* twice is safe */
}

RF_TEST(truncated_files)
{
    char zero[1024];
    rf_test_path(zero, sizeof(zero), "zero.safetensors");
    RF_CHECK_EQ_INT(rf_test_write_file(zero, "", 0), 0);
    s_expect_fail(zero, RF_EINVAL, "too short");
    s_expect_fail(s_raw_len("empty.safetensors", 0, "", NULL, 0), RF_EINVAL, "not a JSON object");
    /* 4 bytes: not even the length */
    char path[1024];
    rf_test_path(path, sizeof(path), "four.safetensors");
    RF_CHECK_EQ_INT(rf_test_write_file(path, "\x10\0\0\0", 4), 0);
    s_expect_fail(path, RF_EINVAL, "too short");
    /* the data section lost its last byte */
    s_expect_fail(s_raw("short.safetensors",
                        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", s_zeros,
                        7),
                  RF_EINVAL, "outside the data section");
    /* a file cut inside its header */
    s_expect_fail(s_raw_len("cut.safetensors", 200, "{\"a\":{\"dtype\"", NULL, 0), RF_EINVAL,
                  "larger than the file");
}

RF_TEST(huge_or_lying_header_length)
{
    s_expect_fail(s_raw_len("huge.safetensors", UINT64_MAX, "{}", NULL, 0), RF_EINVAL,
                  "exceeds the limit");
    s_expect_fail(s_raw_len("big.safetensors", (uint64_t)RF_ST_MAX_HEADER + 1, "{}", NULL, 0),
                  RF_EINVAL, "exceeds the limit");
    s_expect_fail(s_raw_len("long.safetensors", 4096, "{}", s_zeros, 100), RF_EINVAL,
                  "larger than the file");
    /* header length shorter than the JSON: the JSON is cut */
    s_expect_fail(s_raw_len("shortlen.safetensors", 5,
                            "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}",
                            s_zeros, 1),
                  RF_EINVAL, "not valid JSON");
}

RF_TEST(header_not_json)
{
    s_expect_fail(s_raw("garbage.safetensors", "hello world", NULL, 0), RF_EINVAL,
                  "not a JSON object");
    s_expect_fail(s_raw("badjson.safetensors", "{\"a\":", NULL, 0), RF_EINVAL, "not valid JSON");
    s_expect_fail(s_raw("array.safetensors", "[1,2]", NULL, 0), RF_EINVAL, "not a JSON object");
    s_expect_fail(s_raw("dup.safetensors",
                        "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                        "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
                        s_zeros, 2),
                  RF_EINVAL, "not valid JSON");
    s_expect_fail(s_raw("entry.safetensors", "{\"a\":[1,2]}", NULL, 0), RF_EINVAL, "not an object");
    s_expect_fail(s_raw("meta.safetensors", "{\"__metadata__\":{\"k\":1}}", NULL, 0), RF_EINVAL,
                  "not a string");
    /* an empty header object with no data is a valid empty file */
    rf_error err = {0};
    rf_safetensors *st = rf_st_open(s_raw("none.safetensors", "{}      ", NULL, 0), &err);
    RF_CHECK_MSG(st != NULL, "%s", err.msg);
    RF_CHECK_EQ_INT(rf_st_count(st), 0);
    rf_st_destroy(&st);
}

RF_TEST(lying_offsets)
{
    s_expect_fail(s_raw("past.safetensors",
                        "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[4,8]}}", s_zeros,
                        4),
                  RF_EINVAL, "outside the data section");
    s_expect_fail(s_raw("far.safetensors",
                        "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],"
                        "\"data_offsets\":[9223372036854775806,9223372036854775807]}}",
                        s_zeros, 4),
                  RF_EINVAL, "outside the data section");
    s_expect_fail(s_raw("backwards.safetensors",
                        "{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,0]}}", s_zeros,
                        4),
                  RF_EINVAL, "outside the data section");
    s_expect_fail(s_raw("overlap.safetensors",
                        "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
                        "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[2,6]}}",
                        s_zeros, 6),
                  RF_EINVAL, "overlaps");
    s_expect_fail(s_raw("same.safetensors",
                        "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
                        "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}",
                        s_zeros, 4),
                  RF_EINVAL, "overlaps");
    s_expect_fail(s_raw("gap.safetensors",
                        "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},"
                        "\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[4,6]}}",
                        s_zeros, 6),
                  RF_EINVAL, "unindexed bytes");
    s_expect_fail(s_raw("tail.safetensors",
                        "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}", s_zeros,
                        5),
                  RF_EINVAL, "after the last tensor");
    s_expect_fail(s_raw("real.safetensors",
                        "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0.0,2]}}",
                        s_zeros, 2),
                  RF_EINVAL, "non-negative integers");
    s_expect_fail(s_raw("str.safetensors",
                        "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[\"0\",2]}}",
                        s_zeros, 2),
                  RF_EINVAL, "non-negative integers");
    s_expect_fail(s_raw("neg.safetensors",
                        "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[-2,0]}}", s_zeros,
                        2),
                  RF_EINVAL, "non-negative integers");
    s_expect_fail(s_raw("three.safetensors",
                        "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2,4]}}",
                        s_zeros, 2),
                  RF_EINVAL, "non-negative integers");
    s_expect_fail(s_raw("toobig.safetensors",
                        "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],"
                        "\"data_offsets\":[0,99999999999999999999999]}}",
                        s_zeros, 2),
                  RF_EINVAL, "not valid JSON");
    /* out-of-order entries that tile the data exactly are fine */
    rf_error err = {0};
    unsigned char d[6] = {1, 2, 3, 4, 5, 6};
    rf_safetensors *st =
        rf_st_open(s_raw("order.safetensors",
                         "{\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[4,6]},"
                         "\"z\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,4]},"
                         "\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}",
                         d, 6),
                   &err);
    RF_CHECK_MSG(st != NULL, "%s", err.msg);
    RF_CHECK_EQ_STR(rf_st_at(st, 0)->name, "b"); /* header order kept */
    RF_CHECK_EQ_STR(rf_st_at(st, 2)->name, "a");
    RF_CHECK_EQ_INT(((const unsigned char *)rf_st_find(st, "b")->data)[0], 5);
    RF_CHECK_EQ_INT(rf_st_find(st, "z")->nbytes, 0);
    rf_st_destroy(&st);
}

RF_TEST(bad_shapes_and_dtypes)
{
    s_expect_fail(s_raw("mismatch.safetensors",
                        "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", s_zeros,
                        8),
                  RF_EINVAL, "needs 12 bytes but data_offsets span 8");
    s_expect_fail(s_raw("overflow.safetensors",
                        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1099511627776,1099511627776],"
                        "\"data_offsets\":[0,8]}}",
                        s_zeros, 8),
                  RF_EINVAL, "overflows");
    s_expect_fail(s_raw("overflow2.safetensors",
                        "{\"a\":{\"dtype\":\"F64\",\"shape\":[4611686018427387904],"
                        "\"data_offsets\":[0,8]}}",
                        s_zeros, 8),
                  RF_EINVAL, "overflows");
    /* a zero dim makes the product 0 even after a huge one: must not be fooled */
    s_expect_fail(s_raw("zerohuge.safetensors",
                        "{\"a\":{\"dtype\":\"F32\",\"shape\":[0,9223372036854775807],"
                        "\"data_offsets\":[0,8]}}",
                        s_zeros, 8),
                  RF_EINVAL, "needs 0 bytes");
    s_expect_fail(s_raw("negdim.safetensors",
                        "{\"a\":{\"dtype\":\"U8\",\"shape\":[-2,-4],\"data_offsets\":[0,8]}}",
                        s_zeros, 8),
                  RF_EINVAL, "not a non-negative integer");
    s_expect_fail(s_raw("realdim.safetensors",
                        "{\"a\":{\"dtype\":\"U8\",\"shape\":[2.5],\"data_offsets\":[0,8]}}",
                        s_zeros, 8),
                  RF_EINVAL, "not a non-negative integer");
    s_expect_fail(s_raw("dtype.safetensors",
                        "{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[8],\"data_offsets\":[0,8]}}",
                        s_zeros, 8),
                  RF_EUNSUPPORTED, "F8_E4M3");
    s_expect_fail(s_raw("dims.safetensors",
                        "{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,8],"
                        "\"data_offsets\":[0,8]}}",
                        s_zeros, 8),
                  RF_EUNSUPPORTED, "9 dims");
    s_expect_fail(s_raw("field.safetensors",
                        "{\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offset\":[0,8]}}", s_zeros,
                        8),
                  RF_EINVAL, "unknown field 'data_offset'");
    s_expect_fail(
        s_raw("missing.safetensors", "{\"a\":{\"dtype\":\"U8\",\"shape\":[8]}}", s_zeros, 8),
        RF_EINVAL, "needs dtype (string), shape (array) and data_offsets");
    s_expect_fail(s_raw("noname.safetensors",
                        "{\"\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]}}", s_zeros,
                        8),
                  RF_EINVAL, "empty name");
}

RF_TEST(missing_file_and_directory_rules)
{
    char path[1024];
    s_expect_fail(rf_test_path(path, sizeof(path), "nope.safetensors"), RF_ENOTFOUND,
                  "nope.safetensors");
    char dir[1024];
    rf_test_path(dir, sizeof(dir), "dir_empty");
    RF_CHECK_EQ_INT(mkdir(dir, 0755), 0);
    s_expect_fail(dir, RF_ENOTFOUND, "no .safetensors");

    rf_test_path(dir, sizeof(dir), "dir_one");
    RF_CHECK_EQ_INT(mkdir(dir, 0755), 0);
    s_raw("dir_one/model.safetensors",
          "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", s_zeros, 1);
    rf_error err = {0};
    rf_safetensors *st = rf_st_open(dir, &err);
    RF_CHECK_MSG(st != NULL, "%s", err.msg);
    RF_CHECK(rf_st_find(st, "a") != NULL);
    rf_st_destroy(&st);

    s_raw("dir_one/other.safetensors", "{}", NULL, 0);
    s_expect_fail(dir, RF_EINVAL, "2 .safetensors files and no index");
}

static void s_write(const char *name, const char *tensor, int64_t n, float base)
{
    char path[1024];
    rf_test_path(path, sizeof(path), name);
    rf_st_writer *w = rf_st_writer_new();
    RF_CHECK(w != NULL);
    float v[8];
    for (int i = 0; i < 8; i++)
        v[i] = base + (float)i;
    rf_error err = {0};
    RF_CHECK_EQ_INT(rf_st_writer_add(w, tensor, RF_DTYPE_F32, 1, &n, v, &err), 0);
    RF_CHECK_EQ_INT(rf_st_writer_set_metadata(w, "shard", name, &err), 0);
    RF_CHECK_EQ_INT(rf_st_writer_write(w, path, &err), 0);
    rf_st_writer_destroy(&w);
}

static const char *s_index(const char *name, const char *json)
{
    static char path[1024];
    rf_test_path(path, sizeof(path), name);
    RF_CHECK_EQ_INT(rf_test_write_file(path, json, strlen(json)), 0);
    return path;
}

RF_TEST(sharded_sets)
{
    char dir[1024];
    rf_test_path(dir, sizeof(dir), "sh");
    RF_CHECK_EQ_INT(mkdir(dir, 0755), 0);
    s_write("sh/m-1.safetensors", "x", 4, 0.0f);
    s_write("sh/m-2.safetensors", "y", 8, 10.0f);
    s_index("sh/m.safetensors.index.json",
            "{\"metadata\":{\"total_size\":48},"
            "\"weight_map\":{\"y\":\"m-2.safetensors\",\"x\":\"m-1.safetensors\"}}");
    rf_error err = {0};
    rf_safetensors *st = rf_st_open(dir, &err); /* the directory resolves to the index */
    RF_CHECK_MSG(st != NULL, "%s", err.msg);
    RF_CHECK_EQ_INT(rf_st_count(st), 2);
    RF_CHECK_EQ_STR(rf_st_at(st, 0)->name, "y"); /* shards in index order */
    const rf_st_tensor *t;
    int64_t want[1] = {8};
    RF_CHECK_EQ_INT(rf_st_expect(st, "y", 1, want, &t, &err), 0);
    float out[8];
    RF_CHECK_EQ_INT(rf_st_read_f32(t, out, &err), 0);
    RF_CHECK(out[7] == 17.0f);
    RF_CHECK_CONTAINS(rf_st_path_of(st, t), "m-2.safetensors");
    RF_CHECK_EQ_STR(rf_st_metadata(st, "shard"), "sh/m-2.safetensors"); /* first shard wins */
    rf_st_destroy(&st);

    /* missing shard file */
    s_expect_fail(s_index("sh/a.safetensors.index.json",
                          "{\"weight_map\":{\"x\":\"m-1.safetensors\",\"y\":\"m-9.safetensors\"}}"),
                  RF_ENOTFOUND, "m-9.safetensors");
    /* tensor listed in a shard that does not hold it */
    s_expect_fail(s_index("sh/b.safetensors.index.json",
                          "{\"weight_map\":{\"x\":\"m-1.safetensors\",\"y\":\"m-1.safetensors\"}}"),
                  RF_ENOTFOUND, "tensor y is listed in shard");
    /* a shard tensor missing from the index */
    rf_st_writer *w = rf_st_writer_new();
    float v[2] = {1, 2};
    int64_t two = 2;
    RF_CHECK_EQ_INT(rf_st_writer_add(w, "p", RF_DTYPE_F32, 1, &two, v, &err), 0);
    RF_CHECK_EQ_INT(rf_st_writer_add(w, "q", RF_DTYPE_F32, 1, &two, v, &err), 0);
    char p2[1024];
    RF_CHECK_EQ_INT(rf_st_writer_write(w, rf_test_path(p2, sizeof(p2), "sh/pq.safetensors"), &err),
                    0);
    rf_st_writer_destroy(&w);
    s_expect_fail(s_index("sh/c.safetensors.index.json",
                          "{\"weight_map\":{\"x\":\"m-1.safetensors\",\"p\":\"pq.safetensors\"}}"),
                  RF_EINVAL, "tensor q in shard");
    /* a name present in two shards */
    s_write("sh/m-3.safetensors", "x", 2, 0.0f);
    s_expect_fail(s_index("sh/d.safetensors.index.json",
                          "{\"weight_map\":{\"x\":\"m-1.safetensors\",\"z\":\"m-3.safetensors\"}}"),
                  RF_EINVAL, "appears in both");
    s_expect_fail(s_index("sh/e.safetensors.index.json",
                          "{\"weight_map\":{\"x\":\"../sh/m-1.safetensors\"}}"),
                  RF_EINVAL, "relative to the index");
    s_expect_fail(s_index("sh/f.safetensors.index.json", "{\"weight_map\":{}}"), RF_EINVAL,
                  "weight_map");
    s_expect_fail(s_index("sh/g.safetensors.index.json", "{\"weight_map\":"), RF_EINVAL,
                  "not valid JSON");
    s_expect_fail(dir, RF_EINVAL, "index.json files"); /* now several indexes */
}

RF_TEST(expect_names_the_mismatch)
{
    rf_st_writer *w = rf_st_writer_new();
    int64_t shape[2] = {512, 2048};
    float *v = calloc(512 * 2048, sizeof(float));
    RF_CHECK(v != NULL);
    rf_error err = {0};
    RF_CHECK_EQ_INT(rf_st_writer_add(w, "blocks.0.ffn.0.weight", RF_DTYPE_BF16, 2, shape, v, &err),
                    0);
    free(v);
    char path[1024];
    RF_CHECK_EQ_INT(
        rf_st_writer_write(w, rf_test_path(path, sizeof(path), "ffn.safetensors"), &err), 0);
    rf_st_writer_destroy(&w);
    rf_safetensors *st = rf_st_open(path, &err);
    RF_CHECK(st != NULL);
    const rf_st_tensor *t = NULL;
    int64_t want[2] = {2048, 512};
    RF_CHECK_EQ_INT(rf_st_expect(st, "blocks.0.ffn.0.weight", 2, want, &t, &err), RF_ESHAPE);
    RF_CHECK_CONTAINS(err.msg,
                      "tensor blocks.0.ffn.0.weight: expected shape [2048,512], got [512,2048] in");
    RF_CHECK_CONTAINS(err.msg, "ffn.safetensors");
    RF_CHECK(t == NULL);
    int64_t any[2] = {-1, 2048};
    RF_CHECK_EQ_INT(rf_st_expect(st, "blocks.0.ffn.0.weight", 2, any, &t, &err), 0);
    RF_CHECK(t != NULL);
    RF_CHECK_EQ_INT(rf_st_expect(st, "blocks.0.ffn.0.weight", 1, any, &t, &err), RF_ESHAPE);
    RF_CHECK_EQ_INT(rf_st_expect(st, "blocks.1.ffn.0.weight", 2, any, &t, &err), RF_ENOTFOUND);
    RF_CHECK_CONTAINS(err.msg, "blocks.1.ffn.0.weight");
    rf_st_destroy(&st);
}

RF_TEST(round_trip_every_dtype)
{
    rf_st_writer *w = rf_st_writer_new();
    RF_CHECK(w != NULL);
    rf_error err = {0};
    unsigned char bytes[7][48];
    for (int d = 0; d < RF_DTYPE_COUNT; d++) {
        for (int i = 0; i < 48; i++)
            bytes[d][i] = (unsigned char)(d * 31 + i * 7);
        size_t es = rf_dtype_size((rf_dtype)d);
        int64_t shape[2] = {2, (int64_t)(48 / es / 2)};
        char name[32];
        snprintf(name, sizeof(name), "t.%s", rf_dtype_name((rf_dtype)d));
        RF_CHECK_EQ_INT(rf_st_writer_add(w, name, (rf_dtype)d, 2, shape, bytes[d], &err), 0);
    }
    float scalar = 3.25f;
    RF_CHECK_EQ_INT(rf_st_writer_add(w, "scalar", RF_DTYPE_F32, 0, NULL, &scalar, &err), 0);
    int64_t zero[2] = {0, 5};
    RF_CHECK_EQ_INT(rf_st_writer_add(w, "empty", RF_DTYPE_F16, 2, zero, NULL, &err), 0);
    RF_CHECK_EQ_INT(rf_st_writer_set_metadata(w, "model", "wan-tiny \"v1\" é", &err), 0);
    RF_CHECK_EQ_INT(rf_st_writer_set_metadata(w, "steps", "30", &err), 0);
    /* refusals */
    RF_CHECK_EQ_INT(rf_st_writer_add(w, "scalar", RF_DTYPE_F32, 0, NULL, &scalar, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "added twice");
    RF_CHECK_EQ_INT(rf_st_writer_add(w, "__metadata__", RF_DTYPE_F32, 0, NULL, &scalar, &err),
                    RF_EINVAL);
    int64_t neg = -1;
    RF_CHECK_EQ_INT(rf_st_writer_add(w, "neg", RF_DTYPE_F32, 1, &neg, &scalar, &err), RF_EINVAL);
    int64_t huge[2] = {INT64_MAX, INT64_MAX};
    RF_CHECK_EQ_INT(rf_st_writer_add(w, "huge", RF_DTYPE_F32, 2, huge, &scalar, &err), RF_EINVAL);

    char path[1024];
    rf_test_path(path, sizeof(path), "rt.safetensors");
    RF_CHECK_EQ_INT(rf_st_writer_write(w, path, &err), 0);
    rf_st_writer_destroy(&w);
    RF_CHECK(w == NULL);
    char tmp[1100];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    RF_CHECK(access(tmp, F_OK) != 0);

    FILE *f = fopen(path, "rb");
    RF_CHECK(f != NULL);
    unsigned char len8[8];
    RF_CHECK_EQ_INT(fread(len8, 1, 8, f), 8);
    fclose(f);
    RF_CHECK_EQ_INT(len8[0] % 8, 0); /* header padded to 8 bytes */

    rf_safetensors *st = rf_st_open(path, &err);
    RF_CHECK_MSG(st != NULL, "%s", err.msg);
    RF_CHECK_EQ_INT(rf_st_count(st), RF_DTYPE_COUNT + 2);
    for (int d = 0; d < RF_DTYPE_COUNT; d++) {
        const rf_st_tensor *t = rf_st_at(st, (size_t)d); /* insertion order */
        char name[32];
        snprintf(name, sizeof(name), "t.%s", rf_dtype_name((rf_dtype)d));
        RF_CHECK_EQ_STR(t->name, name);
        RF_CHECK_EQ_INT(t->dtype, d);
        RF_CHECK_EQ_INT(t->ndim, 2);
        RF_CHECK_EQ_INT(t->nbytes, 48);
        RF_CHECK_EQ_INT(rf_st_numel(t), 48 / rf_dtype_size((rf_dtype)d));
        RF_CHECK(memcmp(t->data, bytes[d], 48) == 0);
        RF_CHECK_EQ_INT((uintptr_t)t->data % 8, 0);
    }
    const rf_st_tensor *s = rf_st_find(st, "scalar");
    RF_CHECK(s && s->ndim == 0 && s->nbytes == 4 && rf_st_numel(s) == 1);
    float back;
    RF_CHECK_EQ_INT(rf_st_read_f32(s, &back, &err), 0);
    RF_CHECK(back == 3.25f);
    const rf_st_tensor *e = rf_st_find(st, "empty");
    RF_CHECK(e && e->nbytes == 0 && e->shape[1] == 5);
    float out[24];
    RF_CHECK_EQ_INT(rf_st_read_f32(rf_st_find(st, "t.I64"), out, &err), RF_ESHAPE);
    RF_CHECK_CONTAINS(err.msg, "I64");
    RF_CHECK_EQ_INT(rf_st_read_f32(rf_st_find(st, "t.BF16"), out, &err), 0);
    const uint16_t *h = rf_st_find(st, "t.BF16")->data;
    RF_CHECK(out[5] == rf_bf16_to_f32(h[5]) || (isnan(out[5]) && isnan(rf_bf16_to_f32(h[5]))));
    RF_CHECK_EQ_STR(rf_st_metadata(st, "model"), "wan-tiny \"v1\" é");
    RF_CHECK_EQ_STR(rf_st_metadata(st, "steps"), "30");
    rf_st_destroy(&st);
}

RF_TEST(read_f32_unaligned)
{
    /* a header length that is not a multiple of 8: the F64 data is misaligned */
    double v[3] = {0.5, -1.25, 1e10};
    const char *hdr = "{\"a\":{\"dtype\":\"F64\",\"shape\":[3],\"data_offsets\":[0,24]}}";
    RF_CHECK(strlen(hdr) % 8 != 0);
    rf_error err = {0};
    rf_safetensors *st = rf_st_open(s_raw("odd.safetensors", hdr, v, sizeof(v)), &err);
    RF_CHECK_MSG(st != NULL, "%s", err.msg);
    float out[3];
    RF_CHECK_EQ_INT(rf_st_read_f32(rf_st_find(st, "a"), out, &err), 0);
    RF_CHECK(out[0] == 0.5f && out[1] == -1.25f && out[2] == 1e10f);
    rf_st_destroy(&st);
}

RF_TEST(writer_failure_leaves_nothing)
{
    rf_st_writer *w = rf_st_writer_new();
    rf_error err = {0};
    char path[1024];
    rf_test_path(path, sizeof(path), "no/such/dir/x.safetensors");
    RF_CHECK(rf_st_writer_write(w, path, &err) != 0);
    RF_CHECK_CONTAINS(err.msg, "no/such/dir/x.safetensors.tmp");
    rf_st_writer_destroy(&w);
    /* an empty writer produces a valid empty file */
    w = rf_st_writer_new();
    RF_CHECK_EQ_INT(rf_st_writer_write(w, rf_test_path(path, sizeof(path), "e.safetensors"), &err),
                    0);
    rf_st_writer_destroy(&w);
    rf_safetensors *st = rf_st_open(path, &err);
    RF_CHECK_MSG(st != NULL, "%s", err.msg);
    RF_CHECK_EQ_INT(rf_st_count(st), 0);
    rf_st_destroy(&st);
}
