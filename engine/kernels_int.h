/* kernels_int.h — the numeric kernels of the embedded engine: dot products of weight rows in
 * F32, F16, Q8_0 and Q4_0 with activations, activation quantization to Q8_0, RMSNorm, RoPE,
 * softmax, SwiGLU. Each kernel has a scalar version; gf_kernels_get() returns a table filled
 * once from what the CPU supports (AVX-512, AVX2+FMA+F16C, scalar), and GF_KERNELS=scalar|avx2|
 * avx512 in the environment forces a lower path so tests cover each one on any machine.
 * Block layouts are the GGUF ones, so weights are used in place from the mapped file. */
#ifndef GF_KERNELS_INT_H
#define GF_KERNELS_INT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Weight types, numbered as GGUF numbers them. */
enum {
    GF_WT_F32 = 0,
    GF_WT_F16 = 1,
    GF_WT_Q4_0 = 2,
    GF_WT_Q8_0 = 8,
};

#ifndef GF_QK
#define GF_QK 32  // values per quantization block (Q8_0 and Q4_0); gguf.h says the same
#endif

/* Q8_0: value i = d * qs[i]. 34 bytes, packed as in GGUF. */
struct gf_block_q8 {
    uint16_t d;  // IEEE half
    int8_t qs[GF_QK];
};

/* Q4_0: value i (i < 16) = d * ((qs[i] & 15) - 8), value i + 16 = d * ((qs[i] >> 4) - 8). */
struct gf_block_q4 {
    uint16_t d;  // IEEE half
    uint8_t qs[GF_QK / 2];
};

_Static_assert(sizeof(struct gf_block_q8) == 34, "Q8_0 block is 34 bytes");
_Static_assert(sizeof(struct gf_block_q4) == 18, "Q4_0 block is 18 bytes");

/* Half <-> float, exact round-to-nearest-even (the same results as F16C). */
static inline float gf_h2f(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else {  // subnormal: normalize
            int e = -1;
            do {
                man <<= 1;
                e++;
            } while ((man & 0x400) == 0);
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof(f));
    return f;
}

static inline uint16_t gf_f2h(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof(x));
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u)  // inf or nan
        return (uint16_t)(sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 : 0));
    if (ax >= 0x477ff000u)  // rounds to >= 65520: overflow to inf
        return (uint16_t)(sign | 0x7c00);
    if (ax < 0x38800000u) {  // below the smallest normal half: subnormal or zero
        if (ax < 0x33000000u)  // below half the smallest subnormal
            return sign;
        uint32_t e = ax >> 23;
        uint32_t m = (ax & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - e;  // puts the value in units of 2^-24
        uint32_t r = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1);
        uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1)))
            r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = ((ax >> 13) - (112u << 10));
    uint32_t rem = ax & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (r & 1)))
        r++;
    return (uint16_t)(sign | r);
}

/* The T activation vectors of a matrix-vector product (token t at f + t * ldf), in the forms
 * the kernels read: f for F32 and F16 weights; q, their Q8_0 quantization (token t at
 * q + t * ldq), for quantized weights; and rec, records derived from q by gf_mv_prep, for
 * tables whose uses_prep flag is set (NULL otherwise). */
struct gf_mv_x {
    int T;
    const float *f;
    size_t ldf;
    const struct gf_block_q8 *q;
    size_t ldq;
    const unsigned char *rec;
    const unsigned char *rec1;  // T == 1: gf_mv_prep1's records for weights of type rec1_type
    int rec1_type;
};

/* One record per (block k, token t), at rec + (k * T + t) * GF_MV_REC, so that a kernel walks
 * all tokens of a block from one pointer: the block's 32 values (int8), then c8[4] and c4[4]
 * (int32), then its scale (float). The VNNI kernels take the weights as the unsigned operand
 * of an 8-bit integer dot product (Q8_0 weight + 128, Q4_0 nibble without its -8) and the
 * activations as the signed one; int32 lane j accumulates values 4j..4j+3 and 16+4j..16+4j+3,
 * so starting it from c8[j] = -128 (c4[j] = -8) times the sum of those eight activations
 * leaves exactly the signed partial sum: as in the AVX2 kernels, a block's partial sums are
 * exact integers, each scaled by d_w * d_x in float. */
#define GF_MV_REC 80
#define GF_MV_REC_C8 32
#define GF_MV_REC_C4 48
#define GF_MV_REC_D 64
/* Writes the records of T tokens of nb blocks each (token t's blocks at q + t * ldq) to mem,
 * nb * T * GF_MV_REC bytes (16-byte aligned). */
void gf_mv_prep(const struct gf_block_q8 *q, size_t ldq, int T, int nb, void *mem);

/* Single-token records: a decode step of one sequence multiplies every weight row by the same
 * token, so its activations are laid out once per product for the weight type's layout, and
 * the kernel pairs each load of them with the unpacked weight bytes of one row. A record
 * covers a group of blocks; its int32 corrections play the part of c8/c4 above (lane j holds
 * -128, or -8, times the sum of the four activation bytes it multiplies), and its float scales
 * hold each block's d. Past nb, values and scales are zero.
 *   Q8_0, 4 blocks (k+j):    [0, 128) the 128 values in order; [128, 256) 32 corrections;
 *                            [256, 272) the 4 scales; zeros to the end.
 *   Q4_0, 4 blocks (k+j):    [0, 64) values 0-15 of block k+j at 16j (they meet the low
 *                            nibbles); [64, 128) values 16-31 likewise (the high nibbles);
 *                            [128, 192) 16 corrections; [192, 208) the 4 scales; zeros to
 *                            the end. */
#define GF_MV1_Q8_BLOCKS 4
#define GF_MV1_Q8_REC 320
#define GF_MV1_Q4_BLOCKS 4
#define GF_MV1_Q4_REC 256
/* Bytes of records for nb blocks, enough for either type. */
size_t gf_mv_prep1_size(int nb);
/* Writes the records of one token's nb blocks q for weights of `type` (Q8_0 or Q4_0) to mem
 * (gf_mv_prep1_size(nb) bytes). */
void gf_mv_prep1(int type, const struct gf_block_q8 *q, int nb, void *mem);
/* Rows [0, nr) of Q8_0 or Q4_0 weights (row_bytes apart, nb blocks each) times one token whose
 * gf_mv_prep1 records for that type are rec1: y[r] = dot(row r, token). AVX-512 VNNI. */
void gf_matvec1_avx512(int type, const void *w, size_t row_bytes, int nr, int nb,
                       const unsigned char *rec1, float *y);

/* The kernel table. Contracts (n is a length in values; for the quantized types a multiple of
 * GF_QK; pointers need no particular alignment):
 *   dot_f32(a, b, n)          sum a[i]*b[i]
 *   dot_f16(a, b, n)          sum half(a[i])*b[i]
 *   dot_q8(a, b, nb)          sum over nb Q8_0 blocks of d_a*d_b*sum(qa*qb)
 *   dot_q4(a, b, nb)          the same with a Q4_0 row and Q8_0 activations
 *   dot4_*(a, b[4], n, out)   out[i] = dot(a, b[i]) for four activation rows at once: the weight
 *                             row is loaded (and unpacked) once for four tokens
 *   matvec(k, type, w, row_bytes, nr, cols, x, y, ldy)
 *                             y[t*ldy + r] = dot(row r of w, token t of x) for r < nr, t < x->T:
 *                             rows of weight type `type`, row_bytes apart; each weight row is
 *                             read once for up to 8 tokens. k is the table itself (the generic
 *                             version calls its dot kernels).
 *   quantize_q8(x, y, n)      y = Q8_0 of x: d = max|x|/127, q = nearest-even(x/d)
 *   axpy_f32(y, a, x, n)      y += a*x
 *   axpy_f16(y, a, x, n)      y += a*half(x)
 *   f32_to_f16(x, y, n)       y = half(x), round to nearest even
 *   rmsnorm(o, x, w, n, eps)  o = x / sqrt(mean(x^2) + eps) * w (o may be x)
 *   softmax(x, n)             in place, max-subtracted
 *   swiglu(h, g, u, n)        h = silu(g) * u (h may be g)
 *   rope(v, n_heads, head_dim, n_rot, cs)
 *                             rotates adjacent pairs (v[2i], v[2i+1]) of each head's first
 *                             n_rot values by the angle whose cosine and sine are cs[2i],
 *                             cs[2i+1] (Llama, rope type NORM; see gf_rope_cos_sin) */
struct gf_kernels {
    const char *name;  // "scalar", "avx2", "avx512"
    float (*dot_f32)(const float *a, const float *b, int n);
    float (*dot_f16)(const uint16_t *a, const float *b, int n);
    float (*dot_q8)(const struct gf_block_q8 *a, const struct gf_block_q8 *b, int nb);
    float (*dot_q4)(const struct gf_block_q4 *a, const struct gf_block_q8 *b, int nb);
    void (*dot4_f32)(const float *a, const float *const b[4], int n, float out[4]);
    void (*dot4_q8)(const struct gf_block_q8 *a, const struct gf_block_q8 *const b[4], int nb,
                    float out[4]);
    void (*dot4_q4)(const struct gf_block_q4 *a, const struct gf_block_q8 *const b[4], int nb,
                    float out[4]);
    void (*matvec)(const struct gf_kernels *k, int type, const void *w, size_t row_bytes, int nr,
                   int cols, const struct gf_mv_x *x, float *y, size_t ldy);
    int uses_prep;  // matvec reads gf_mv_x.rec for quantized weights (gf_mv_prep)
    int uses_prep1; // and, for one token, gf_mv_x.rec1 (gf_mv_prep1) when it is set
    void (*quantize_q8)(const float *x, struct gf_block_q8 *y, int n);
    void (*axpy_f32)(float *y, float a, const float *x, int n);
    void (*axpy_f16)(float *y, float a, const uint16_t *x, int n);
    void (*f32_to_f16)(const float *x, uint16_t *y, int n);
    void (*rmsnorm)(float *o, const float *x, const float *w, int n, float eps);
    void (*softmax)(float *x, int n);
    void (*swiglu)(float *h, const float *g, const float *u, int n);
    void (*rope)(float *v, int n_heads, int head_dim, int n_rot, const float *cs);
};

/* The best table for this CPU, chosen on first call (thread-safe), lowered by GF_KERNELS.
 * Never NULL; the table is static. */
const struct gf_kernels *gf_kernels_get(void);

/* A specific table, or NULL when this CPU (or build) cannot run it. name: "scalar", "avx2",
 * "avx512". Tests use it to compare every SIMD kernel with the scalar one. */
const struct gf_kernels *gf_kernels_by_name(const char *name);

/* Filled by kernels_avx2.c / kernels_avx512.c from the scalar table: they copy it and replace
 * the kernels they accelerate. Called once, only when the CPU supports the instruction set. */
void gf_kernels_fill_avx2(struct gf_kernels *k);
void gf_kernels_fill_avx512(struct gf_kernels *k);
void gf_kernels_fill_avx512_vnni(struct gf_kernels *k);  // AVX-512 VNNI: 8-bit integer dots

/* The matvec of the scalar and AVX2 tables: the table's dot4_* and dot_* kernels row by row. */
void gf_matvec_generic(const struct gf_kernels *k, int type, const void *w, size_t row_bytes,
                       int nr, int cols, const struct gf_mv_x *x, float *y, size_t ldy);
extern const struct gf_kernels gf_kernels_scalar;

/* Fills cs[0..n_rot) with cos, sin of pos * theta^(-2i/n_rot) for i in [0, n_rot/2). */
void gf_rope_cos_sin(float *cs, int n_rot, int pos, float theta);

/* Bytes of one row of n values of weight type t (0 for an unknown type). */
size_t gf_wt_row_bytes(int type, int n);

/* Dequantizes one row of n values of type t to f32. */
void gf_wt_row_to_f32(int type, const void *row, float *out, int n);

/* Calls CALL(T) for T = n (1..8, more counts as 8): one kernel instantiation per token count, so
 * that T is a constant inside each. The including file defines CALL. */
#define SWITCH_T(n)                                                                           \
    switch (n) {                                                                              \
    case 1: CALL(1); break;                                                                   \
    case 2: CALL(2); break;                                                                   \
    case 3: CALL(3); break;                                                                   \
    case 4: CALL(4); break;                                                                   \
    case 5: CALL(5); break;                                                                   \
    case 6: CALL(6); break;                                                                   \
    case 7: CALL(7); break;                                                                   \
    default: CALL(8); break;                                                                  \
    }

#endif
