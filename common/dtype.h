/* dtype.h - element types shared by safetensors files, wire blobs and tensors.
 *
 * One enum for the whole project so a tensor read from a file, sent over the wire
 * and computed on keeps its type name. Conversions are exact for f32 -> f64 and
 * bf16/f16 -> f32; f32 -> bf16/f16 rounds to nearest even.
 */
#ifndef RF_DTYPE_H
#define RF_DTYPE_H

#include <stddef.h>
#include <stdint.h>

typedef enum rf_dtype {
    RF_DTYPE_F32 = 0,
    RF_DTYPE_BF16,
    RF_DTYPE_F16,
    RF_DTYPE_F64,
    RF_DTYPE_I64,
    RF_DTYPE_I32,
    RF_DTYPE_U8,
    RF_DTYPE_COUNT
} rf_dtype;

/* Bytes per element (0 for an invalid dtype). */
size_t rf_dtype_size(rf_dtype dt);
/* The safetensors spelling: "F32", "BF16", "F16", "F64", "I64", "I32", "U8". */
const char *rf_dtype_name(rf_dtype dt);
/* Parses a safetensors dtype name; returns 0 and sets *out, or -1 when unknown. */
int rf_dtype_parse(const char *name, rf_dtype *out);

float rf_bf16_to_f32(uint16_t h);
uint16_t rf_f32_to_bf16(float f);
float rf_f16_to_f32(uint16_t h);
uint16_t rf_f32_to_f16(float f);

/* Converts n elements of src (dtype dt: F32, BF16, F16 or F64) to f32 in dst.
 * Returns 0, or -1 when dt is not a floating type. */
int rf_convert_to_f32(float *dst, const void *src, rf_dtype dt, size_t n);

#endif
