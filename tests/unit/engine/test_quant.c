/* Unit tests of the tensor block formats (engine/quant.c): the type table, half/bfloat16
 * conversions (rounding, subnormals, every half round-trips), dequantization known answers for
 * every decoded type, and quantization known answers (grid values come back exactly). */
#include "engine/gguf.h"

#include <math.h>
#include <string.h>

#include "test.h"

/* ---- block formats ---------------------------------------------------------------------- */

static void test_fp16(void)
{
    CHECK(gf_fp16_to_fp32(0x3c00) == 1.0f);
    CHECK(gf_fp16_to_fp32(0xc000) == -2.0f);
    CHECK(gf_fp16_to_fp32(0x7bff) == 65504.0f);
    CHECK(gf_fp16_to_fp32(0x0001) == 0x1p-24f);
    CHECK(gf_fp16_to_fp32(0x0400) == 0x1p-14f);
    CHECK(gf_fp16_to_fp32(0x03ff) == 1023 * 0x1p-24f);
    CHECK(isinf(gf_fp16_to_fp32(0x7c00)) && gf_fp16_to_fp32(0xfc00) < 0);
    CHECK(isnan(gf_fp16_to_fp32(0x7e00)));
    CHECK(gf_fp32_to_fp16(1.0f) == 0x3c00);
    CHECK(gf_fp32_to_fp16(-2.0f) == 0xc000);
    CHECK(gf_fp32_to_fp16(65504.0f) == 0x7bff);
    CHECK(gf_fp32_to_fp16(65519.0f) == 0x7bff);
    CHECK(gf_fp32_to_fp16(65520.0f) == 0x7c00);
    CHECK(gf_fp32_to_fp16(1e10f) == 0x7c00);
    CHECK(gf_fp32_to_fp16(1.0f + 0x1p-11f) == 0x3c00);        // tie -> even
    CHECK(gf_fp32_to_fp16(1.0f + 3 * 0x1p-11f) == 0x3c02);    // tie -> even (up)
    CHECK(gf_fp32_to_fp16(1.0f + 0x1p-11f + 0x1p-20f) == 0x3c01);
    CHECK(gf_fp32_to_fp16(0x1p-24f) == 0x0001);
    CHECK(gf_fp32_to_fp16(0x1p-25f) == 0x0000);               // tie -> even (zero)
    CHECK(gf_fp32_to_fp16(3 * 0x1p-25f) == 0x0002);           // tie -> even
    CHECK(gf_fp32_to_fp16(-0.0f) == 0x8000);
    CHECK(gf_fp32_to_fp16(0x1p-14f) == 0x0400);
    CHECK(gf_fp32_to_fp16(0x1p-14f - 0x1p-25f) == 0x0400);    // rounds up into the normals
    CHECK((gf_fp32_to_fp16(NAN) & 0x7c00) == 0x7c00 && (gf_fp32_to_fp16(NAN) & 0x3ff) != 0);
    // Every half survives half -> float -> half.
    int bad = 0;
    for (uint32_t h = 0; h < 0x10000; h++) {
        float f = gf_fp16_to_fp32((uint16_t)h);
        if (!isnan(f) && gf_fp32_to_fp16(f) != h)
            bad++;
    }
    CHECK(bad == 0);
    CHECK(gf_bf16_to_fp32(0x3f80) == 1.0f);
    CHECK(gf_fp32_to_bf16(1.0f) == 0x3f80);
    CHECK(gf_fp32_to_bf16(1.0f + 0x1p-8f) == 0x3f80);  // tie -> even
    CHECK(gf_fp32_to_bf16(1.0f + 3 * 0x1p-8f) == 0x3f82);
}

static void put16(uint8_t *p, uint16_t v)
{
    memcpy(p, &v, 2);
}

static void test_dequant_known(void)
{
    float y[256];
    // Q8_0: d = 0.5 (0x3800), qs[j] = j - 16 -> (j - 16) / 2.
    uint8_t q8[34];
    put16(q8, 0x3800);
    for (int j = 0; j < 32; j++)
        q8[2 + j] = (uint8_t)(int8_t)(j - 16);
    CHECK(gf_dequantize(GF_TYPE_Q8_0, q8, y, 32) == 0);
    int ok = 1;
    for (int j = 0; j < 32; j++)
        ok &= y[j] == (float)(j - 16) * 0.5f;
    CHECK(ok);
    // Q4_0: d = 2 (0x4000); qs[j] low = j, high = 15 - j -> y[j] = (j-8)*2, y[j+16] = (7-j)*2.
    uint8_t q4[18];
    put16(q4, 0x4000);
    for (int j = 0; j < 16; j++)
        q4[2 + j] = (uint8_t)(j | ((15 - j) << 4));
    CHECK(gf_dequantize(GF_TYPE_Q4_0, q4, y, 32) == 0);
    ok = 1;
    for (int j = 0; j < 16; j++)
        ok &= y[j] == (float)(j - 8) * 2 && y[j + 16] == (float)(7 - j) * 2;
    CHECK(ok);
    // Q4_1: d = 0.25 (0x3400), m = -1 (0xbc00): y = q / 4 - 1.
    uint8_t q41[20];
    put16(q41, 0x3400);
    put16(q41 + 2, 0xbc00);
    for (int j = 0; j < 16; j++)
        q41[4 + j] = (uint8_t)(j | ((15 - j) << 4));
    CHECK(gf_dequantize(GF_TYPE_Q4_1, q41, y, 32) == 0);
    ok = 1;
    for (int j = 0; j < 16; j++)
        ok &= y[j] == j * 0.25f - 1 && y[j + 16] == (15 - j) * 0.25f - 1;
    CHECK(ok);
    // Q5_0: d = 1; 5-bit q[j] = j (j < 16: high bit 0; j+16: 16 + j -> high bit 1).
    // qh bit j is element j's 5th bit, bit j+16 element j+16's.
    uint8_t q5[22];
    put16(q5, 0x3c00);
    uint32_t qh = 0xffff0000u;
    memcpy(q5 + 2, &qh, 4);
    for (int j = 0; j < 16; j++)
        q5[6 + j] = (uint8_t)(j | (j << 4));
    CHECK(gf_dequantize(GF_TYPE_Q5_0, q5, y, 32) == 0);
    ok = 1;
    for (int j = 0; j < 32; j++)
        ok &= y[j] == (float)(j - 16);
    CHECK(ok);
    // Q5_1: d = 0.5, m = 10: y = q/2 + 10.
    uint8_t q51[24];
    put16(q51, 0x3800);
    put16(q51 + 2, 0x4900);
    memcpy(q51 + 4, &qh, 4);
    for (int j = 0; j < 16; j++)
        q51[8 + j] = (uint8_t)(j | (j << 4));
    CHECK(gf_dequantize(GF_TYPE_Q5_1, q51, y, 32) == 0);
    ok = 1;
    for (int j = 0; j < 32; j++)
        ok &= y[j] == j * 0.5f + 10;
    CHECK(ok);
    // Q6_K: d = 1, scales all 2, ql/qh so that q = 32 + 1 everywhere (low 4 bits 1, high 2).
    uint8_t q6[210] = {0};
    for (int i = 0; i < 128; i++)
        q6[i] = 0x11;
    for (int i = 0; i < 64; i++)
        q6[128 + i] = 0xaa;  // each 2-bit field = 2 -> 32
    for (int i = 0; i < 16; i++)
        q6[192 + i] = 2;
    put16(q6 + 208, 0x3c00);
    CHECK(gf_dequantize(GF_TYPE_Q6_K, q6, y, 256) == 0);
    ok = 1;
    for (int j = 0; j < 256; j++)
        ok &= y[j] == 2.0f;
    CHECK(ok);
    // Q4_K: d = 1, dmin = 1, sub-block scale 3 and min 1 for the first four (j < 4 path),
    // scale 5, min 2 for the last four; nibbles 7 -> 3*7-1 = 20 and 5*7-2 = 33.
    uint8_t q4k[144] = {0};
    put16(q4k, 0x3c00);
    put16(q4k + 2, 0x3c00);
    for (int j = 0; j < 4; j++) {
        q4k[4 + j] = 3;
        q4k[8 + j] = 1;
        q4k[12 + j] = (uint8_t)(5 | (2 << 4));
    }
    memset(q4k + 16, 0x77, 128);
    CHECK(gf_dequantize(GF_TYPE_Q4_K, q4k, y, 256) == 0);
    ok = 1;
    for (int j = 0; j < 256; j++)
        ok &= y[j] == (j < 128 ? 20.0f : 33.0f);
    CHECK(ok);
    // Q5_K: Q4_K's scales, nibbles 7, the 5th bit set (qh bit 0) for the first 32 elements
    // only: 3*23-1 = 68, then 3*7-1 = 20 for sub-blocks 1..3, 5*7-2 = 33 for 4..7.
    uint8_t q5k[176] = {0};
    memcpy(q5k, q4k, 16);
    memset(q5k + 16, 0x01, 32);
    memset(q5k + 48, 0x77, 128);
    CHECK(gf_dequantize(GF_TYPE_Q5_K, q5k, y, 256) == 0);
    ok = 1;
    for (int j = 0; j < 256; j++)
        ok &= y[j] == (j < 32 ? 68.0f : j < 128 ? 20.0f : 33.0f);
    CHECK(ok);
    // Q2_K: every scale byte 0x12 (scale 2, min 1), d = 1, dmin = 0.5; qs 0xE4 puts 2-bit value
    // j in the j-th 32-element slice of each 128: y = 2j - 0.5.
    uint8_t q2k[84];
    memset(q2k, 0x12, 16);
    memset(q2k + 16, 0xe4, 64);
    put16(q2k + 80, 0x3c00);
    put16(q2k + 82, 0x3800);
    CHECK(gf_dequantize(GF_TYPE_Q2_K, q2k, y, 256) == 0);
    ok = 1;
    for (int j = 0; j < 256; j++)
        ok &= y[j] == 2.0f * (float)((j % 128) / 32) - 0.5f;
    CHECK(ok);
    // Q3_K: all sixteen 6-bit scales 34 (low nibbles 2, high bits 2) -> 34 - 32 = 2; d = 1;
    // qs 0xE4 as above; hmask all set: y = 2j; hmask clear: y = 2(j - 4).
    uint8_t q3k[110];
    memset(q3k, 0xff, 32);
    memset(q3k + 32, 0xe4, 64);
    memset(q3k + 96, 0x22, 8);
    memset(q3k + 104, 0xaa, 4);
    put16(q3k + 108, 0x3c00);
    CHECK(gf_dequantize(GF_TYPE_Q3_K, q3k, y, 256) == 0);
    ok = 1;
    for (int j = 0; j < 256; j++)
        ok &= y[j] == 2.0f * (float)((j % 128) / 32);
    CHECK(ok);
    memset(q3k, 0x00, 32);
    CHECK(gf_dequantize(GF_TYPE_Q3_K, q3k, y, 256) == 0);
    ok = 1;
    for (int j = 0; j < 256; j++)
        ok &= y[j] == 2.0f * (float)((j % 128) / 32 - 4);
    CHECK(ok);
    // Q8_K: f32 d = 0.25, qs[j] = j - 128.
    uint8_t q8k[292] = {0};
    float quarter = 0.25f;
    memcpy(q8k, &quarter, 4);
    for (int j = 0; j < 256; j++)
        q8k[4 + j] = (uint8_t)(int8_t)(j - 128);
    CHECK(gf_dequantize(GF_TYPE_Q8_K, q8k, y, 256) == 0);
    ok = 1;
    for (int j = 0; j < 256; j++)
        ok &= y[j] == (float)(j - 128) * 0.25f;
    CHECK(ok);
    // Refusals.
    CHECK(gf_dequantize(GF_TYPE_Q8_0, q8, y, 31) == GF_EINVAL);
    CHECK(gf_dequantize(4, q8, y, 32) == GF_EINVAL);
    CHECK(gf_dequantize(GF_TYPE_IQ2_XXS, q8, y, 256) == GF_EUNSUPPORTED);
    CHECK(gf_quantize(GF_TYPE_Q6_K, y, q8, 256) == GF_EUNSUPPORTED);
}

static void test_quant_known(void)
{
    // Values on the grid of each type come back exactly.
    float x[32], y[32];
    uint8_t b[64];
    for (int j = 0; j < 32; j++)
        x[j] = (float)((j % 16) - 8);  // max |x| is -8 -> Q4_0 d = 1
    CHECK(gf_quantize(GF_TYPE_Q4_0, x, b, 32) == 0);
    CHECK(b[0] == 0x00 && b[1] == 0x3c);  // d = 1.0
    CHECK(gf_dequantize(GF_TYPE_Q4_0, b, y, 32) == 0);
    CHECK(memcmp(x, y, sizeof(x)) == 0);
    for (int j = 0; j < 32; j++)
        x[j] = (float)(j - 16) * 0.5f;  // Q5_0: max -8 -> d = 0.5
    CHECK(gf_quantize(GF_TYPE_Q5_0, x, b, 32) == 0);
    CHECK(gf_dequantize(GF_TYPE_Q5_0, b, y, 32) == 0);
    CHECK(memcmp(x, y, sizeof(x)) == 0);
    for (int j = 0; j < 32; j++)
        x[j] = (float)(j - 16) * 2;  // Q8_0: d = 32/127, ints are within a d/2
    CHECK(gf_quantize(GF_TYPE_Q8_0, x, b, 32) == 0);
    CHECK(gf_fp16_to_fp32((uint16_t)(b[0] | b[1] << 8)) == gf_fp16_to_fp32(gf_fp32_to_fp16(32.0f / 127)));
    CHECK((int8_t)b[2] == -127 && (int8_t)b[2 + 16] == 0);
    for (int j = 0; j < 32; j++)
        x[j] = 1.0f + (float)(j % 16) * 0.5f;  // Q4_1: min 1, d = 7.5/15 = 0.5
    CHECK(gf_quantize(GF_TYPE_Q4_1, x, b, 32) == 0);
    CHECK(gf_dequantize(GF_TYPE_Q4_1, b, y, 32) == 0);
    CHECK(memcmp(x, y, sizeof(x)) == 0);
    for (int j = 0; j < 32; j++)
        x[j] = -3.0f + (float)j * 0.25f;  // Q5_1: min -3, d = 7.75/31 = 0.25
    CHECK(gf_quantize(GF_TYPE_Q5_1, x, b, 32) == 0);
    CHECK(gf_dequantize(GF_TYPE_Q5_1, b, y, 32) == 0);
    CHECK(memcmp(x, y, sizeof(x)) == 0);
    // All zeros and NaN do not crash and give zeros/finite scales.
    memset(x, 0, sizeof(x));
    CHECK(gf_quantize(GF_TYPE_Q4_0, x, b, 32) == 0);
    CHECK(gf_dequantize(GF_TYPE_Q4_0, b, y, 32) == 0 && y[0] == 0 && y[31] == 0);
    x[3] = NAN;
    CHECK(gf_quantize(GF_TYPE_Q8_0, x, b, 32) == 0);
    CHECK(gf_quantize(GF_TYPE_Q5_1, x, b, 32) == 0);
}

static void test_type_table(void)
{
    CHECK_STREQ(gf_tensor_type_name(GF_TYPE_Q8_0), "Q8_0");
    CHECK_STREQ(gf_tensor_type_name(4), "?");
    CHECK_STREQ(gf_tensor_type_name(-1), "?");
    CHECK_STREQ(gf_tensor_type_name(GF_TYPE_COUNT), "?");
    int t;
    CHECK(gf_tensor_type_parse("q4_0", &t) == 0 && t == GF_TYPE_Q4_0);
    CHECK(gf_tensor_type_parse("f17", &t) == GF_EINVAL);
    CHECK(gf_tensor_row_bytes(GF_TYPE_Q8_0, 4096) == 128 * 34);
    CHECK(gf_tensor_row_bytes(GF_TYPE_Q4_0, 4096) == 128 * 18);
    CHECK(gf_tensor_row_bytes(GF_TYPE_F16, 7) == 14);
    CHECK(gf_tensor_row_bytes(GF_TYPE_Q4_K, 4096) == 16 * 144);
    CHECK(gf_tensor_row_bytes(GF_TYPE_Q8_0, 33) == 0);
    CHECK(gf_tensor_row_bytes(GF_TYPE_F64, UINT64_MAX / 4) == 0);  // overflow
    CHECK_STREQ(gf_gguf_type_name(GF_GGUF_TYPE_STRING), "string");
    CHECK_STREQ(gf_gguf_type_name(13), "?");
}

int main(void)
{
    RUN(test_type_table);
    RUN(test_fp16);
    RUN(test_dequant_known);
    RUN(test_quant_known);
    return test_report();
}
