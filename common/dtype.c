/* dtype.c - element type names, sizes and float conversions.
 *
 * bf16 is the top half of an f32; rounding to it is round-to-nearest-even with NaN
 * kept quiet. f16 follows IEEE 754 binary16 with subnormals.
 */
#include "dtype.h"

#include <string.h>

static const struct {
    const char *name;
    size_t size;
} s_types[RF_DTYPE_COUNT] = {
    {"F32", 4}, {"BF16", 2}, {"F16", 2}, {"F64", 8}, {"I64", 8}, {"I32", 4}, {"U8", 1},
};

size_t rf_dtype_size(rf_dtype dt)
{
    return (unsigned)dt < RF_DTYPE_COUNT ? s_types[dt].size : 0;
}

const char *rf_dtype_name(rf_dtype dt)
{
    return (unsigned)dt < RF_DTYPE_COUNT ? s_types[dt].name : "?";
}

int rf_dtype_parse(const char *name, rf_dtype *out)
{
    for (int i = 0; i < RF_DTYPE_COUNT; i++) {
        if (name && strcmp(name, s_types[i].name) == 0) {
            *out = (rf_dtype)i;
            return 0;
        }
    }
    return -1;
}

float rf_bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t rf_f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float rf_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    uint32_t u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal: normalize */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400u));
            u = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (man << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t rf_f32_to_f16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t absu = u & 0x7fffffffu;
    if (absu > 0x7f800000u)
        return (uint16_t)(sign | 0x7e00u);
    if (absu >= 0x477ff000u) /* rounds to >= 65520: infinity */
        return (uint16_t)(sign | 0x7c00u);
    if (absu < 0x38800000u) { /* below 2^-14: subnormal or zero */
        if (absu < 0x33000000u)
            return (uint16_t)sign;
        uint32_t e = absu >> 23;
        uint32_t man = (absu & 0x7fffffu) | 0x800000u;
        /* value = man * 2^(e-150); the f16 subnormal unit is 2^-24, so m = man * 2^(e-126) */
        uint32_t s = 126 - e;
        uint32_t m = man >> s;
        uint32_t rem = man & ((1u << s) - 1);
        uint32_t halfway = 1u << (s - 1);
        if (rem > halfway || (rem == halfway && (m & 1)))
            m++;
        return (uint16_t)(sign | m);
    }
    uint32_t r = absu + 0xfffu + ((absu >> 13) & 1u);
    r -= 0x38000000u; /* rebias 127 -> 15 */
    return (uint16_t)(sign | (r >> 13));
}

int rf_convert_to_f32(float *dst, const void *src, rf_dtype dt, size_t n)
{
    const uint16_t *h = src;
    const double *d = src;
    switch (dt) {
    case RF_DTYPE_F32: memmove(dst, src, n * 4); return 0;
    case RF_DTYPE_BF16:
        for (size_t i = 0; i < n; i++)
            dst[i] = rf_bf16_to_f32(h[i]);
        return 0;
    case RF_DTYPE_F16:
        for (size_t i = 0; i < n; i++)
            dst[i] = rf_f16_to_f32(h[i]);
        return 0;
    case RF_DTYPE_F64:
        for (size_t i = 0; i < n; i++)
            dst[i] = (float)d[i];
        return 0;
    default: return -1;
    }
}
