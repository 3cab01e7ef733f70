/* tiny_model.c - the tiny random model folder of tiny_model.h (symlinks + model.json). */
#include "tiny_model.h"

#include "tests/rf_test.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char s_model_json[] =
    "{\"name\": \"tiny-random\", \"dit\": \"dit\", \"vae\": \"vae.safetensors\",\n"
    " \"t5\": \"t5.safetensors\", \"tokenizer\": \"tokenizer.model\",\n"
    " \"defaults\": {\"sampler\": \"unipc\", \"steps\": 4, \"shift\": 3.0, \"guidance\": 3.0,\n"
    "  \"width\": 32, \"height\": 32, \"frames\": 9, \"fps\": 8, \"negative\": \"blur\"},\n"
    " \"decode_warmup\": 2}\n";

char *rf_test_tiny_model(char *buf, size_t cap)
{
    rf_test_path(buf, cap, "tiny-model");
    struct stat sb;
    if (stat(buf, &sb) == 0)
        return buf;
    if (mkdir(buf, 0755) != 0)
        return NULL;
    const char *fx = rf_test_fixtures();
    const char *links[4][2] = {{"tiny_model/dit", "dit"},
                               {"tiny_model/t5.safetensors", "t5.safetensors"},
                               {"vae/vae_tiny.safetensors", "vae.safetensors"},
                               {"tokenizer/nfkc_bf.model", "tokenizer.model"}};
    char src[4096], dst[4096];
    for (int i = 0; i < 4; i++) {
        snprintf(src, sizeof(src), "%s/%s", fx, links[i][0]);
        snprintf(dst, sizeof(dst), "%s/%s", buf, links[i][1]);
        if (symlink(src, dst) != 0)
            return NULL;
    }
    snprintf(dst, sizeof(dst), "%s/model.json", buf);
    if (rf_test_write_file(dst, s_model_json, strlen(s_model_json)) != 0)
        return NULL;
    return buf;
}
