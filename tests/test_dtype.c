/* test_dtype.c - dtype names and the bf16/f16 conversions against known bit patterns. */
#include "dtype.h"
#include "rf_test.h"

RF_TEST(names_and_sizes)
{
    rf_dtype dt;
    RF_CHECK_EQ_INT(rf_dtype_parse("BF16", &dt), 0);
    RF_CHECK_EQ_INT(dt, RF_DTYPE_BF16);
    RF_CHECK_EQ_INT(rf_dtype_size(dt), 2);
    RF_CHECK_EQ_INT(rf_dtype_parse("bf16", &dt), -1);
    RF_CHECK_EQ_STR(rf_dtype_name(RF_DTYPE_I64), "I64");
    RF_CHECK_EQ_INT(rf_dtype_size((rf_dtype)99), 0);
}

RF_TEST(bf16_round_trip_and_rounding)
{
    RF_CHECK_EQ_INT(rf_f32_to_bf16(1.0f), 0x3f80);
    RF_CHECK(rf_bf16_to_f32(0x3f80) == 1.0f);
    RF_CHECK_EQ_INT(rf_f32_to_bf16(-2.0f), 0xc000);
    /* 1 + 2^-8 is exactly halfway between bf16 1.0 and 1.0078125: ties to even (1.0) */
    RF_CHECK_EQ_INT(rf_f32_to_bf16(1.00390625f), 0x3f80);
    RF_CHECK_EQ_INT(rf_f32_to_bf16(1.01171875f), 0x3f82);
    RF_CHECK(isnan(rf_bf16_to_f32(rf_f32_to_bf16(NAN))));
}

RF_TEST(f16_known_values)
{
    RF_CHECK_EQ_INT(rf_f32_to_f16(1.0f), 0x3c00);
    RF_CHECK_EQ_INT(rf_f32_to_f16(-2.5f), 0xc100);
    RF_CHECK_EQ_INT(rf_f32_to_f16(65504.0f), 0x7bff);
    RF_CHECK_EQ_INT(rf_f32_to_f16(1e6f), 0x7c00);
    RF_CHECK_EQ_INT(rf_f32_to_f16(5.9604645e-8f), 0x0001); /* smallest subnormal */
    RF_CHECK_EQ_INT(rf_f32_to_f16(6.1035156e-5f), 0x0400); /* smallest normal */
    RF_CHECK(rf_f16_to_f32(0x0001) == 5.9604645e-8f);
    RF_CHECK(rf_f16_to_f32(0x3555) == 0.33325195f);
    for (uint32_t h = 0; h < 0x7c00; h++) /* every finite positive f16 round-trips */
        RF_CHECK_EQ_INT(rf_f32_to_f16(rf_f16_to_f32((uint16_t)h)), h);
}

RF_TEST(convert_to_f32)
{
    uint16_t b[3] = {0x3f80, 0xc000, 0x0000};
    float out[3];
    RF_CHECK_EQ_INT(rf_convert_to_f32(out, b, RF_DTYPE_BF16, 3), 0);
    RF_CHECK(out[0] == 1.0f && out[1] == -2.0f && out[2] == 0.0f);
    double d[2] = {0.5, -3.0};
    RF_CHECK_EQ_INT(rf_convert_to_f32(out, d, RF_DTYPE_F64, 2), 0);
    RF_CHECK(out[0] == 0.5f && out[1] == -3.0f);
    RF_CHECK_EQ_INT(rf_convert_to_f32(out, d, RF_DTYPE_I64, 2), -1);
}
