/* cmd_vae_decode.c - `reelfarm-engine vae-decode`: latents (safetensors `z`) to video frames.
 *
 * Reads `z` [B, z_dim, T, h, w] (the normalized latent the DiT works in), decodes the whole
 * timeline or the segment [A, B) with W warm-up frames (ARCHITECTURE.md 2.2), and writes
 * `video` [B, 3, F, 8h, 8w] f32 in [-1, 1]. Memory beyond the input and the output is one
 * decoder stream. An F32 input is read in place from the mapped file.
 */
#include "cpu/cpu.h"
#include "safetensors.h"
#include "vae/vae.h"
#include "vae_args.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int s_usage(FILE *f, int rc)
{
    fprintf(
        f,
        "usage: reelfarm-engine vae-decode --vae FILE --input IN --output OUT\n"
        "                                  [--segment A:B --warmup W] [--threads N]\n\n"
        "Decodes the latent `z` [B,16,T,h,w] in IN (safetensors) with the Wan-VAE in FILE\n"
        "and writes `video` [B,3,1+4(T-1),8h,8w] f32 in [-1,1] to OUT. With --segment only\n"
        "latent frames [A,B) are decoded, run from A-W as a continuation (from frame 0\n"
        "when A-W <= 0); OUT then holds the segment's frames (4 per latent frame, plus\n"
        "frame 0's single frame when A is 0). --threads: CPU threads (default: all).\n"
        "Example: reelfarm-engine vae-decode --vae models/wan/vae.safetensors \\\n"
        "           --input z.safetensors --output video.safetensors --segment 8:16 --warmup 4\n");
    return rc;
}

int rf_cmd_vae_decode(int argc, char **argv)
{
    rf_vae_args o;
    int usage_rc = rf_vae_args_parse(&o, "vae-decode", argc, argv, s_usage);
    if (usage_rc >= 0)
        return usage_rc;
    const char *vae_path = o.vae, *in = o.input, *outp = o.output;
    long long a = o.a, b = o.b, warm = o.warmup;
    int threads = o.threads, seg = o.segment;
    rf_error err = {0};
    int rc = 1;
    rf_backend *be = rf_backend_cpu_new(threads, &err);
    rf_vae *vae = be ? rf_vae_load(vae_path, be, &err) : NULL;
    rf_safetensors *st = vae ? rf_st_open(in, &err) : NULL;
    rf_st_writer *wr = NULL;
    float *zbuf = NULL, *out = NULL;
    if (!st)
        goto done;
    const rf_st_tensor *zt = NULL;
    int64_t zshape[5] = {-1, rf_vae_z_dim(vae), -1, -1, -1};
    if (rf_st_expect(st, "z", 5, zshape, &zt, &err))
        goto done;
    int64_t B = zt->shape[0], T = zt->shape[2], h = zt->shape[3], w = zt->shape[4];
    if (!seg) {
        a = 0;
        b = T;
    }
    if (B < 1 || T < 1 || h < 1 || w < 1 || h > 65536 || w > 65536 || a < 0 || b > T || a >= b) {
        rf_error_set(&err, RF_EINVAL,
                     "%s: z is [%lld,%lld,%lld,%lld,%lld]; segment %lld:%lld must satisfy "
                     "0 <= A < B <= T",
                     in, (long long)B, (long long)zshape[1], (long long)T, (long long)h,
                     (long long)w, a, b);
        goto done;
    }
    const float *z = zt->data;
    if (zt->dtype != RF_DTYPE_F32 || ((uintptr_t)zt->data % sizeof(float)) != 0) {
        if (!(zbuf = malloc(rf_st_numel(zt) * sizeof(float)))) {
            rf_error_set(&err, RF_ENOMEM, "out of memory reading %s", in);
            goto done;
        }
        if (rf_st_read_f32(zt, zbuf, &err))
            goto done;
        z = zbuf;
    }
    int64_t sf = rf_vae_spatial_factor(vae), F = rf_vae_pixel_frames(vae, a, b);
    int64_t per = 3 * F * h * sf * w * sf, zper = zshape[1] * T * h * w;
    if (!(out = malloc((size_t)(B * per) * sizeof(float)))) {
        rf_error_set(&err, RF_ENOMEM, "out of memory for %lld output floats", (long long)(B * per));
        goto done;
    }
    for (int64_t i = 0; i < B; i++)
        if (rf_vae_decode_segment(vae, z + i * zper, T, (int)h, (int)w, a, b, warm, out + i * per,
                                  &err))
            goto done;
    int64_t oshape[5] = {B, 3, F, h * sf, w * sf};
    char meta[64];
    snprintf(meta, sizeof(meta), "%lld:%lld:%lld", a, b, warm);
    wr = rf_st_writer_new();
    if (!wr || rf_st_writer_add(wr, "video", RF_DTYPE_F32, 5, oshape, out, &err) ||
        rf_st_writer_set_metadata(wr, "segment", meta, &err) || rf_st_writer_write(wr, outp, &err))
        goto done;
    printf("vae-decode: %s: latent frames [%lld, %lld) (warm-up %lld) -> video "
           "[%lld,3,%lld,%lld,%lld]\n",
           outp, a, b, warm, (long long)B, (long long)F, (long long)(h * sf), (long long)(w * sf));
    rc = 0;
done:
    if (rc)
        fprintf(stderr, "vae-decode: %s\n", err.msg[0] ? err.msg : "out of memory");
    rf_st_writer_destroy(&wr);
    free(out);
    free(zbuf);
    rf_st_destroy(&st);
    rf_vae_destroy(&vae);
    rf_backend_destroy(&be);
    return rc;
}
