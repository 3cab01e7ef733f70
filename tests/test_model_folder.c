/* test_model_folder.c - model.json and the official release layout, and what a user is
 * told when a piece is missing. */
#include "model_folder.h"
#include "rf_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static void s_touch(const char *dir, const char *rel)
{
    char p[1024];
    snprintf(p, sizeof(p), "%s/%s", dir, rel);
    char *slash = strrchr(p, '/');
    *slash = '\0';
    char cmd[1100];
    snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", p);
    RF_CHECK_EQ_INT(system(cmd), 0);
    *slash = '/';
    RF_CHECK_EQ_INT(rf_test_write_file(p, "x", 1), 0);
}

static void s_dir(char *buf, size_t cap, const char *name)
{
    rf_test_path(buf, cap, name);
    mkdir(buf, 0700);
}

RF_TEST(model_json_names_pieces_and_defaults)
{
    char dir[512];
    s_dir(dir, sizeof(dir), "tiny");
    s_touch(dir, "dit/config.json");
    s_touch(dir, "vae.safetensors");
    s_touch(dir, "t5.safetensors");
    s_touch(dir, "tok.model");
    char path[600];
    snprintf(path, sizeof(path), "%s/model.json", dir);
    const char *json = "{\"name\": \"reel-tiny\", \"dit\": \"dit\", \"vae\": \"vae.safetensors\","
                       " \"t5\": \"t5.safetensors\", \"tokenizer\": \"tok.model\","
                       " \"defaults\": {\"steps\": 12, \"shift\": 3.0, \"width\": 64,"
                       " \"height\": 64, \"negative\": \"\"}, \"decode_warmup\": 6}";
    RF_CHECK_EQ_INT(rf_test_write_file(path, json, strlen(json)), 0);
    rf_model_folder m;
    rf_error err;
    RF_CHECK_MSG(rf_model_folder_read(dir, &m, &err) == 0, "%s", err.msg);
    RF_CHECK_EQ_STR(m.name, "reel-tiny");
    RF_CHECK_CONTAINS(m.vae, "/vae.safetensors");
    RF_CHECK_EQ_INT(m.defaults.steps, 12);
    RF_CHECK_NEAR(m.defaults.shift, 3.0, 0);
    RF_CHECK_NEAR(m.defaults.guidance, 5.0, 0); /* not given: Wan's */
    RF_CHECK_EQ_INT(m.defaults.width, 64);
    RF_CHECK_EQ_STR(m.defaults.negative, "");
    RF_CHECK_EQ_STR(m.defaults.sampler, "unipc");
    RF_CHECK_EQ_INT(m.decode_warmup, 6);
}

RF_TEST(model_json_problems_are_all_named)
{
    char dir[512];
    s_dir(dir, sizeof(dir), "bad");
    char path[600];
    snprintf(path, sizeof(path), "%s/model.json", dir);
    const char *json = "{\"dit\": \".\", \"vae\": \"../escape.safetensors\","
                       " \"tokenizer\": \"missing.model\", \"defaults\": {\"stepz\": 3,"
                       " \"sampler\": \"ddim\"}}";
    RF_CHECK_EQ_INT(rf_test_write_file(path, json, strlen(json)), 0);
    rf_model_folder m;
    rf_error err;
    RF_CHECK(rf_model_folder_read(dir, &m, &err) != 0);
    RF_CHECK_CONTAINS(err.msg, "\"vae\" must be a relative path inside the folder");
    RF_CHECK_CONTAINS(err.msg, "no \"t5\"");
    RF_CHECK_CONTAINS(err.msg, "missing.model does not exist");
    RF_CHECK_CONTAINS(err.msg, "unknown key \"stepz\"");
    RF_CHECK_CONTAINS(err.msg, "defaults.sampler has an invalid value");
    RF_CHECK_EQ_INT(rf_test_write_file(path, "{nope", 5), 0);
    RF_CHECK(rf_model_folder_read(dir, &m, &err) != 0);
    RF_CHECK_CONTAINS(err.msg, "model.json:1");
}

RF_TEST(official_release_layout)
{
    char dir[512];
    s_dir(dir, sizeof(dir), "Wan2.1-T2V-1.3B");
    s_touch(dir, "config.json");
    s_touch(dir, "diffusion_pytorch_model.safetensors");
    s_touch(dir, "Wan2.1_VAE.safetensors");
    s_touch(dir, "models_t5_umt5-xxl-enc-bf16.safetensors");
    s_touch(dir, "google/umt5-xxl/spiece.model");
    rf_model_folder m;
    rf_error err;
    RF_CHECK_MSG(rf_model_folder_read(dir, &m, &err) == 0, "%s", err.msg);
    RF_CHECK_EQ_STR(m.name, "Wan2.1-T2V-1.3B");
    RF_CHECK_EQ_INT(m.defaults.steps, 50);
    RF_CHECK_EQ_INT(m.defaults.frames, 81);
    RF_CHECK_CONTAINS(m.defaults.negative, "色调艳丽");
    RF_CHECK_EQ_INT(m.decode_warmup, -1);
}

RF_TEST(unconverted_release_says_how_to_convert)
{
    char dir[512];
    s_dir(dir, sizeof(dir), "raw-release");
    s_touch(dir, "config.json");
    s_touch(dir, "diffusion_pytorch_model.safetensors");
    s_touch(dir, "Wan2.1_VAE.pth");
    s_touch(dir, "models_t5_umt5-xxl-enc-bf16.pth");
    rf_model_folder m;
    rf_error err;
    RF_CHECK_EQ_INT(rf_model_folder_read(dir, &m, &err), RF_ENOTFOUND);
    RF_CHECK_CONTAINS(err.msg, "tools/convert/convert.py");
    RF_CHECK_CONTAINS(err.msg, "VAE is still the release's Wan2.1_VAE.pth");
    RF_CHECK_CONTAINS(err.msg, "no tokenizer");
    RF_CHECK_EQ_INT(rf_model_folder_read("/nonexistent/model", &m, &err), RF_ENOTFOUND);
}
