/* quant.c — the tensor types of GGUF: their names and block sizes, and conversions between
 * floats and the block formats (F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0; decoding of the K
 * types Q2_K..Q6_K and Q8_K).
 * Invariant: every conversion here gives bit for bit what ggml's reference (scalar) code
 * gives, so files written by gardefou and by llama.cpp mean the same numbers. */
#include "engine/gguf.h"

#include <float.h>
#include <math.h>
#include <string.h>
#include <strings.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "GGUF block formats are little-endian; this code assumes a little-endian host"
#endif

struct type_info {
    const char *name;  // NULL: id not in use
    uint32_t blck;     // elements per block
    uint32_t size;     // bytes per block
};

/* Indexed by type id; sizes from ggml's block structs (ggml-common.h). */
static const struct type_info types[GF_TYPE_COUNT] = {
    [GF_TYPE_F32] = {"F32", 1, 4},
    [GF_TYPE_F16] = {"F16", 1, 2},
    [GF_TYPE_Q4_0] = {"Q4_0", 32, 18},
    [GF_TYPE_Q4_1] = {"Q4_1", 32, 20},
    [GF_TYPE_Q5_0] = {"Q5_0", 32, 22},
    [GF_TYPE_Q5_1] = {"Q5_1", 32, 24},
    [GF_TYPE_Q8_0] = {"Q8_0", 32, 34},
    [GF_TYPE_Q8_1] = {"Q8_1", 32, 36},
    [GF_TYPE_Q2_K] = {"Q2_K", 256, 84},
    [GF_TYPE_Q3_K] = {"Q3_K", 256, 110},
    [GF_TYPE_Q4_K] = {"Q4_K", 256, 144},
    [GF_TYPE_Q5_K] = {"Q5_K", 256, 176},
    [GF_TYPE_Q6_K] = {"Q6_K", 256, 210},
    [GF_TYPE_Q8_K] = {"Q8_K", 256, 292},
    [GF_TYPE_IQ2_XXS] = {"IQ2_XXS", 256, 66},
    [GF_TYPE_IQ2_XS] = {"IQ2_XS", 256, 74},
    [GF_TYPE_IQ3_XXS] = {"IQ3_XXS", 256, 98},
    [GF_TYPE_IQ1_S] = {"IQ1_S", 256, 50},
    [GF_TYPE_IQ4_NL] = {"IQ4_NL", 32, 18},
    [GF_TYPE_IQ3_S] = {"IQ3_S", 256, 110},
    [GF_TYPE_IQ2_S] = {"IQ2_S", 256, 82},
    [GF_TYPE_IQ4_XS] = {"IQ4_XS", 256, 136},
    [GF_TYPE_I8] = {"I8", 1, 1},
    [GF_TYPE_I16] = {"I16", 1, 2},
    [GF_TYPE_I32] = {"I32", 1, 4},
    [GF_TYPE_I64] = {"I64", 1, 8},
    [GF_TYPE_F64] = {"F64", 1, 8},
    [GF_TYPE_IQ1_M] = {"IQ1_M", 256, 56},
    [GF_TYPE_BF16] = {"BF16", 1, 2},
    [GF_TYPE_TQ1_0] = {"TQ1_0", 256, 54},
    [GF_TYPE_TQ2_0] = {"TQ2_0", 256, 66},
    [GF_TYPE_MXFP4] = {"MXFP4", 32, 17},
};

bool gf_tensor_type_valid(int type)
{
    return type >= 0 && type < GF_TYPE_COUNT && types[type].name != NULL;
}

const char *gf_tensor_type_name(int type)
{
    return gf_tensor_type_valid(type) ? types[type].name : "?";
}

int gf_tensor_type_parse(const char *name, int *type)
{
    for (int t = 0; t < GF_TYPE_COUNT; t++) {
        if (types[t].name != NULL && strcasecmp(types[t].name, name) == 0) {
            *type = t;
            return 0;
        }
    }
    return GF_EINVAL;
}

uint64_t gf_tensor_block_elems(int type)
{
    return gf_tensor_type_valid(type) ? types[type].blck : 0;
}

uint64_t gf_tensor_block_bytes(int type)
{
    return gf_tensor_type_valid(type) ? types[type].size : 0;
}

uint64_t gf_tensor_row_bytes(int type, uint64_t n)
{
    if (!gf_tensor_type_valid(type) || n % types[type].blck != 0)
        return 0;
    uint64_t blocks = n / types[type].blck;
    if (blocks > UINT64_MAX / types[type].size)
        return 0;
    return blocks * types[type].size;
}

bool gf_tensor_type_can_dequantize(int type)
{
    switch (type) {
    case GF_TYPE_F32:
    case GF_TYPE_F16:
    case GF_TYPE_BF16:
    case GF_TYPE_Q4_0:
    case GF_TYPE_Q4_1:
    case GF_TYPE_Q5_0:
    case GF_TYPE_Q5_1:
    case GF_TYPE_Q8_0:
    case GF_TYPE_Q2_K:
    case GF_TYPE_Q3_K:
    case GF_TYPE_Q4_K:
    case GF_TYPE_Q5_K:
    case GF_TYPE_Q6_K:
    case GF_TYPE_Q8_K:
        return true;
    default:
        return false;
    }
}

/* ---- half and bfloat16 ------------------------------------------------------------------ */

static inline uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* File-local copies are inlined into the loops below; the exported names could be interposed
 * in a shared build and so would stay calls. */
static inline float fp16_to_fp32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    if (exp == 0x1f)  // inf or NaN: keep the payload
        return bits_f32(sign | 0x7f800000u | (man << 13));
    if (exp == 0) {
        if (man == 0)
            return bits_f32(sign);
        // subnormal: man * 2^-24, exact in float
        float v = (float)man * 0x1p-24f;
        return sign ? -v : v;
    }
    return bits_f32(sign | ((exp + 112) << 23) | (man << 13));
}

float gf_fp16_to_fp32(uint16_t h)
{
    return fp16_to_fp32(h);
}

static inline uint16_t fp32_to_fp16(float f)
{
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u)  // NaN: quiet, keep the top payload bits
        return (uint16_t)(sign | 0x7e00 | ((ax >> 13) & 0x3ff));
    if (ax >= 0x477ff000u)  // rounds to >= 65520: infinity
        return (uint16_t)(sign | 0x7c00);
    if (ax < 0x38800000u) {  // below the smallest normal half (2^-14): subnormal or zero
        // Adding 0.5 moves the value's bits so that float addition rounds to nearest even at
        // the half's subnormal precision (2^-24).
        float v = bits_f32(ax) + 0.5f;
        return (uint16_t)(sign | (f32_bits(v) - 0x3f000000u));
    }
    uint32_t mant_odd = (ax >> 13) & 1;
    ax += ((uint32_t)(15 - 127) << 23) + 0xfff + mant_odd;  // rebias and round to nearest even
    return (uint16_t)(sign | (ax >> 13));
}

uint16_t gf_fp32_to_fp16(float f)
{
    return fp32_to_fp16(f);
}

float gf_bf16_to_fp32(uint16_t h)
{
    return bits_f32((uint32_t)h << 16);
}

uint16_t gf_fp32_to_bf16(float f)
{
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)  // NaN: force quiet (as ggml does)
        return (uint16_t)((u >> 16) | 64);
    return (uint16_t)((u + (0x7fff + ((u >> 16) & 1))) >> 16);
}

static inline float half_at(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return fp16_to_fp32(h);
}

static inline void put_half(uint8_t *p, float f)
{
    uint16_t h = fp32_to_fp16(f);
    memcpy(p, &h, 2);
}

/* ---- dequantization --------------------------------------------------------------------- */

static void deq_q4_0(const uint8_t *b, float *y)
{
    float d = half_at(b);
    const uint8_t *qs = b + 2;
    for (int j = 0; j < 16; j++) {
        y[j] = (float)((qs[j] & 0x0f) - 8) * d;
        y[j + 16] = (float)((qs[j] >> 4) - 8) * d;
    }
}

static void deq_q4_1(const uint8_t *b, float *y)
{
    float d = half_at(b), m = half_at(b + 2);
    const uint8_t *qs = b + 4;
    for (int j = 0; j < 16; j++) {
        y[j] = (float)(qs[j] & 0x0f) * d + m;
        y[j + 16] = (float)(qs[j] >> 4) * d + m;
    }
}

static void deq_q5_0(const uint8_t *b, float *y)
{
    float d = half_at(b);
    uint32_t qh;
    memcpy(&qh, b + 2, 4);
    const uint8_t *qs = b + 6;
    for (int j = 0; j < 16; j++) {
        uint8_t xh0 = (uint8_t)(((qh >> j) << 4) & 0x10);
        uint8_t xh1 = (uint8_t)((qh >> (j + 12)) & 0x10);
        y[j] = (float)(((qs[j] & 0x0f) | xh0) - 16) * d;
        y[j + 16] = (float)(((qs[j] >> 4) | xh1) - 16) * d;
    }
}

static void deq_q5_1(const uint8_t *b, float *y)
{
    float d = half_at(b), m = half_at(b + 2);
    uint32_t qh;
    memcpy(&qh, b + 4, 4);
    const uint8_t *qs = b + 8;
    for (int j = 0; j < 16; j++) {
        uint8_t xh0 = (uint8_t)(((qh >> j) << 4) & 0x10);
        uint8_t xh1 = (uint8_t)((qh >> (j + 12)) & 0x10);
        y[j] = (float)((qs[j] & 0x0f) | xh0) * d + m;
        y[j + 16] = (float)((qs[j] >> 4) | xh1) * d + m;
    }
}

static void deq_q8_0(const uint8_t *b, float *y)
{
    float d = half_at(b);
    const int8_t *qs = (const int8_t *)(b + 2);
    for (int j = 0; j < 32; j++)
        y[j] = (float)qs[j] * d;
}

/* The 6-bit scale and min of sub-block j of a Q4_K/Q5_K super-block (12 packed bytes). */
static void scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m)
{
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* block_q4_K: f16 d, f16 dmin, u8 scales[12], u8 qs[128]. */
static void deq_q4_k(const uint8_t *b, float *y)
{
    float d = half_at(b), min = half_at(b + 2);
    const uint8_t *scales = b + 4, *q = b + 16;
    int is = 0;
    for (int j = 0; j < GF_QK_K; j += 64) {
        uint8_t sc, m;
        scale_min_k4(is, scales, &sc, &m);
        float d1 = d * sc, m1 = min * m;
        scale_min_k4(is + 1, scales, &sc, &m);
        float d2 = d * sc, m2 = min * m;
        for (int l = 0; l < 32; l++)
            *y++ = d1 * (float)(q[l] & 0x0f) - m1;
        for (int l = 0; l < 32; l++)
            *y++ = d2 * (float)(q[l] >> 4) - m2;
        q += 32;
        is += 2;
    }
}

/* block_q5_K: f16 d, f16 dmin, u8 scales[12], u8 qh[32], u8 qs[128]. */
static void deq_q5_k(const uint8_t *b, float *y)
{
    float d = half_at(b), min = half_at(b + 2);
    const uint8_t *scales = b + 4, *qh = b + 16, *ql = b + 48;
    int is = 0;
    uint8_t u1 = 1, u2 = 2;
    for (int j = 0; j < GF_QK_K; j += 64) {
        uint8_t sc, m;
        scale_min_k4(is, scales, &sc, &m);
        float d1 = d * sc, m1 = min * m;
        scale_min_k4(is + 1, scales, &sc, &m);
        float d2 = d * sc, m2 = min * m;
        for (int l = 0; l < 32; l++)
            *y++ = d1 * (float)((ql[l] & 0x0f) + (qh[l] & u1 ? 16 : 0)) - m1;
        for (int l = 0; l < 32; l++)
            *y++ = d2 * (float)((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
        ql += 32;
        is += 2;
        u1 = (uint8_t)(u1 << 2);
        u2 = (uint8_t)(u2 << 2);
    }
}

/* block_q6_K: u8 ql[128], u8 qh[64], i8 scales[16], f16 d. */
static void deq_q6_k(const uint8_t *b, float *y)
{
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    float d = half_at(b + 208);
    for (int n = 0; n < GF_QK_K; n += 128) {
        for (int l = 0; l < 32; l++) {
            int is = l / 16;
            int q1 = (int8_t)((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
            int q2 = (int8_t)((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
            int q3 = (int8_t)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            int q4 = (int8_t)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l] = d * sc[is] * (float)q1;
            y[l + 32] = d * sc[is + 2] * (float)q2;
            y[l + 64] = d * sc[is + 4] * (float)q3;
            y[l + 96] = d * sc[is + 6] * (float)q4;
        }
        y += 128;
        ql += 64;
        qh += 32;
        sc += 8;
    }
}

/* block_q2_K: u8 scales[16] (4-bit scale | 4-bit min), u8 qs[64], f16 d, f16 dmin. */
static void deq_q2_k(const uint8_t *b, float *y)
{
    const uint8_t *scales = b, *q = b + 16;
    float d = half_at(b + 80), min = half_at(b + 82);
    int is = 0;
    for (int n = 0; n < GF_QK_K; n += 128) {
        int shift = 0;
        for (int j = 0; j < 4; j++) {
            uint8_t sc = scales[is++];
            float dl = d * (float)(sc & 0x0f), ml = min * (float)(sc >> 4);
            for (int l = 0; l < 16; l++)
                *y++ = dl * (float)((q[l] >> shift) & 3) - ml;
            sc = scales[is++];
            dl = d * (float)(sc & 0x0f);
            ml = min * (float)(sc >> 4);
            for (int l = 0; l < 16; l++)
                *y++ = dl * (float)((q[l + 16] >> shift) & 3) - ml;
            shift += 2;
        }
        q += 32;
    }
}

/* block_q3_K: u8 hmask[32], u8 qs[64], u8 scales[12] (16 packed 6-bit scales), f16 d. */
static void deq_q3_k(const uint8_t *b, float *y)
{
    const uint8_t *hm = b, *q = b + 32;
    float d_all = half_at(b + 108);
    uint32_t aux[4];
    memcpy(aux, b + 96, 12);
    uint32_t tmp = aux[2];
    const uint32_t kmask1 = 0x03030303u, kmask2 = 0x0f0f0f0fu;
    aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
    aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
    aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4);
    aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4);
    int8_t scales[16];
    memcpy(scales, aux, 16);
    int is = 0;
    uint8_t m = 1;
    for (int n = 0; n < GF_QK_K; n += 128) {
        int shift = 0;
        for (int j = 0; j < 4; j++) {
            float dl = d_all * (float)(scales[is++] - 32);
            for (int l = 0; l < 16; l++)
                *y++ = dl * (float)(((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
            dl = d_all * (float)(scales[is++] - 32);
            for (int l = 0; l < 16; l++)
                *y++ = dl * (float)(((q[l + 16] >> shift) & 3) - ((hm[l + 16] & m) ? 0 : 4));
            shift += 2;
            m = (uint8_t)(m << 1);
        }
        q += 32;
    }
}

/* block_q8_K: f32 d, i8 qs[256], i16 bsums[16] (sums for dot products; not needed here). */
static void deq_q8_k(const uint8_t *b, float *y)
{
    float d;
    memcpy(&d, b, 4);
    const int8_t *qs = (const int8_t *)(b + 4);
    for (int j = 0; j < GF_QK_K; j++)
        y[j] = d * (float)qs[j];
}

typedef void (*deq_fn)(const uint8_t *block, float *y);

static deq_fn block_dequantizer(int type)
{
    switch (type) {
    case GF_TYPE_Q4_0:
        return deq_q4_0;
    case GF_TYPE_Q4_1:
        return deq_q4_1;
    case GF_TYPE_Q5_0:
        return deq_q5_0;
    case GF_TYPE_Q5_1:
        return deq_q5_1;
    case GF_TYPE_Q8_0:
        return deq_q8_0;
    case GF_TYPE_Q2_K:
        return deq_q2_k;
    case GF_TYPE_Q3_K:
        return deq_q3_k;
    case GF_TYPE_Q8_K:
        return deq_q8_k;
    case GF_TYPE_Q4_K:
        return deq_q4_k;
    case GF_TYPE_Q5_K:
        return deq_q5_k;
    case GF_TYPE_Q6_K:
        return deq_q6_k;
    default:
        return NULL;
    }
}

int gf_dequantize(int type, const void *src, float *dst, uint64_t n)
{
    if (!gf_tensor_type_valid(type) || n % types[type].blck != 0)
        return GF_EINVAL;
    const uint8_t *s = src;
    switch (type) {
    case GF_TYPE_F32:
        memcpy(dst, src, n * sizeof(float));
        return 0;
    case GF_TYPE_F16:
        for (uint64_t i = 0; i < n; i++)
            dst[i] = half_at(s + 2 * i);
        return 0;
    case GF_TYPE_BF16:
        for (uint64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, s + 2 * i, 2);
            dst[i] = bits_f32((uint32_t)h << 16);
        }
        return 0;
    default:
        break;
    }
    deq_fn fn = block_dequantizer(type);
    if (fn == NULL)
        return GF_EUNSUPPORTED;
    uint64_t blck = types[type].blck, size = types[type].size;
    for (uint64_t i = 0; i < n / blck; i++)
        fn(s + i * size, dst + i * blck);
    return 0;
}

/* ---- quantization (ggml's quantize_row_*_ref) ------------------------------------------- */

/* Truncates v toward zero into [0, hi], as ggml's `MIN(hi, (int8_t)v)` does for the values
 * its quantizers produce, without undefined behaviour for NaN or out-of-range inputs. */
static inline uint8_t trunc_clamp(float v, int hi)
{
    if (!(v > 0.0f))
        return 0;
    if (v >= (float)hi)
        return (uint8_t)hi;
    return (uint8_t)(int)v;
}

static void q_q4_0(const float *x, uint8_t *b)
{
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 32; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    const float d = max / -8;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    put_half(b, d);
    for (int j = 0; j < 16; j++) {
        uint8_t xi0 = trunc_clamp(x[j] * id + 8.5f, 15);
        uint8_t xi1 = trunc_clamp(x[16 + j] * id + 8.5f, 15);
        b[2 + j] = (uint8_t)(xi0 | (xi1 << 4));
    }
}

static void block_min_max(const float *x, float *min, float *max)
{
    *min = FLT_MAX;
    *max = -FLT_MAX;
    for (int j = 0; j < 32; j++) {
        if (x[j] < *min)
            *min = x[j];
        if (x[j] > *max)
            *max = x[j];
    }
}

static void q_q4_1(const float *x, uint8_t *b)
{
    float min, max;
    block_min_max(x, &min, &max);
    const float d = (max - min) / ((1 << 4) - 1);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    put_half(b, d);
    put_half(b + 2, min);
    for (int j = 0; j < 16; j++) {
        uint8_t xi0 = trunc_clamp((x[j] - min) * id + 0.5f, 15);
        uint8_t xi1 = trunc_clamp((x[16 + j] - min) * id + 0.5f, 15);
        b[4 + j] = (uint8_t)(xi0 | (xi1 << 4));
    }
}

static void q_q5_0(const float *x, uint8_t *b)
{
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 32; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    const float d = max / -16;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    put_half(b, d);
    uint32_t qh = 0;
    for (int j = 0; j < 16; j++) {
        uint8_t xi0 = trunc_clamp(x[j] * id + 16.5f, 31);
        uint8_t xi1 = trunc_clamp(x[16 + j] * id + 16.5f, 31);
        b[6 + j] = (uint8_t)((xi0 & 0x0f) | ((xi1 & 0x0f) << 4));
        qh |= ((xi0 & 0x10u) >> 4) << j;
        qh |= ((xi1 & 0x10u) >> 4) << (j + 16);
    }
    memcpy(b + 2, &qh, 4);
}

static void q_q5_1(const float *x, uint8_t *b)
{
    float min, max;
    block_min_max(x, &min, &max);
    const float d = (max - min) / ((1 << 5) - 1);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    put_half(b, d);
    put_half(b + 2, min);
    uint32_t qh = 0;
    for (int j = 0; j < 16; j++) {
        // ggml casts to uint8 without a cap; (x - min) * id + 0.5 stays below 32 for finite x.
        uint8_t xi0 = trunc_clamp((x[j] - min) * id + 0.5f, 31);
        uint8_t xi1 = trunc_clamp((x[16 + j] - min) * id + 0.5f, 31);
        b[8 + j] = (uint8_t)((xi0 & 0x0f) | ((xi1 & 0x0f) << 4));
        qh |= ((xi0 & 0x10u) >> 4) << j;
        qh |= ((xi1 & 0x10u) >> 4) << (j + 16);
    }
    memcpy(b + 4, &qh, 4);
}

static void q_q8_0(const float *x, uint8_t *b)
{
    float amax = 0.0f;
    for (int j = 0; j < 32; j++)
        amax = fmaxf(amax, fabsf(x[j]));
    const float d = amax / ((1 << 7) - 1);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    put_half(b, d);
    for (int j = 0; j < 32; j++) {
        float v = roundf(x[j] * id);  // in [-127, 127] for finite inputs
        if (!(v >= -127.0f))
            v = v < 0 ? -127.0f : 0.0f;  // NaN becomes 0
        if (v > 127.0f)
            v = 127.0f;
        b[2 + j] = (uint8_t)(int8_t)v;
    }
}

typedef void (*q_fn)(const float *x, uint8_t *block);

int gf_quantize(int type, const float *src, void *dst, uint64_t n)
{
    if (!gf_tensor_type_valid(type) || n % types[type].blck != 0)
        return GF_EINVAL;
    uint8_t *d = dst;
    q_fn fn = NULL;
    switch (type) {
    case GF_TYPE_F32:
        memcpy(dst, src, n * sizeof(float));
        return 0;
    case GF_TYPE_F16:
        for (uint64_t i = 0; i < n; i++)
            put_half(d + 2 * i, src[i]);
        return 0;
    case GF_TYPE_BF16:
        for (uint64_t i = 0; i < n; i++) {
            uint16_t h = gf_fp32_to_bf16(src[i]);
            memcpy(d + 2 * i, &h, 2);
        }
        return 0;
    case GF_TYPE_Q4_0:
        fn = q_q4_0;
        break;
    case GF_TYPE_Q4_1:
        fn = q_q4_1;
        break;
    case GF_TYPE_Q5_0:
        fn = q_q5_0;
        break;
    case GF_TYPE_Q5_1:
        fn = q_q5_1;
        break;
    case GF_TYPE_Q8_0:
        fn = q_q8_0;
        break;
    default:
        return GF_EUNSUPPORTED;
    }
    uint64_t blck = types[type].blck, size = types[type].size;
    for (uint64_t i = 0; i < n / blck; i++)
        fn(src + i * blck, d + i * size);
    return 0;
}
