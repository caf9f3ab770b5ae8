/* gemm_int.h — the matrix products of prompt processing on AVX-512: an integer product for
 * quantized weights (Q8_0 and Q4_0) and a float one for F32 weights.
 *
 * Integer product: activations quantized to Q8_0 (as the decode kernels do), weights unpacked
 * tile by tile into a layout the VPDPBUSD instruction consumes directly, and 8-bit products
 * summed exactly in 32-bit integers per block before the block scales are applied. This
 * replaces "dequantize the weights to f32, then sgemm": it reads four times fewer bytes per
 * product and needs no float conversion of the weights.
 *
 * Packed layout. One int32 lane holds a whole block's 32 products of one (row, token) pair, so
 * that the float work (conversion, scales, accumulation) is done once per 32 products, not per
 * 8. Weights, per group of 16 rows, per block k: GF_GEMM_GROUP bytes
 *   [0, 512)    u8 w[p][r][4]: byte 64p + 4r + b is value 4p + b of row r's block, plus 128
 *               (the unsigned operand of VPDPBUSD), for p < 8, r < 16
 *   [512, 576)  float s[16]: the scale of row r's block
 * so one VPDPBUSD multiplies 4 values of 16 rows by the same 4 values of a token (broadcast from
 * its record) and eight of them sum the block. A group past the matrix's last row is padded
 * with zero rows (bytes 128, scale 0). Activations, per token and block, a GF_GEMM_XREC-byte
 * record: the block's 32 values (int8, the signed operand), then int32 c = -128 * (their sum),
 * which cancels the +128 of the weights exactly when the lane starts from it, then the block
 * scale as a float, then int32 c4 = -8 * (their sum) for regrouped Q4_0 weights (below), then 4
 * zero bytes. Every implementation produces exactly these layouts; tests compare them byte for
 * byte.
 *
 * Regrouped weights ("x16"): Q8_0 and Q4_0 matrices rearranged once, when the model is loaded,
 * so that decode steps and prompts read them in this order with no packing per product. Per
 * group of 16 rows, per block, the group's blocks one after the other:
 *   Q8_0, GF_GEMM_Q8X bytes: [0, 512) as a packed group (value + 128), [512, 544) half d[16]
 *   Q4_0, GF_GEMM_Q4X bytes: [0, 256) byte 64q + 4r + b = byte 4q + b of row r's nibbles, whose
 *         low nibble is value 4q + b + 8 and high nibble value 16 + 4q + b + 8 (q < 4),
 *         [256, 288) half d[16]
 * A Q4_0 nibble is its value + 8: the unsigned operand as stored, cancelled by c4. Both take as
 * many bytes as the rows they come from. */
#ifndef GF_GEMM_INT_H
#define GF_GEMM_INT_H

#include <stddef.h>
#include <stdint.h>

#include "engine/kernels_int.h"

#define GF_GEMM_ROWS  16   // weight rows per packed group
#define GF_GEMM_GROUP 576  // bytes of one block of a group of 16 weight rows
#define GF_GEMM_XREC  48   // bytes of one token's record of one block
#define GF_GEMM_Q8X   544  // bytes of one block of 16 regrouped Q8_0 rows
#define GF_GEMM_Q4X   288  // bytes of one block of 16 regrouped Q4_0 rows

struct gf_gemm {
    const char *name;  // "scalar", "avx512vnni"
    /* One token: nb Q8_0 blocks into nb records, out[nb * GF_GEMM_XREC]. */
    void (*pack_x)(const struct gf_block_q8 *x, int nb, uint8_t *out);
    /* n (1-16) weight rows of nb blocks of type GF_WT_Q8_0 or GF_WT_Q4_0, row_bytes apart, into
     * one group: out[nb * GF_GEMM_GROUP]. */
    void (*pack_w)(int type, const void *rows, size_t row_bytes, int n, int nb, uint8_t *out);
    /* y[t*ldy + r] = the product of token t and row r, for t < T and r < R, where the R rows
     * are packed as ceil(R/16) groups of nb blocks, one after the other, and token t's records
     * start at xp + t*nb*GF_GEMM_XREC. */
    void (*tile)(const uint8_t *xp, int T, const uint8_t *wp, int R, int nb, float *y,
                 size_t ldy);
    /* tile() for R (a multiple of 16) rows of type GF_WT_Q8_0 or GF_WT_Q4_0 regrouped by
     * gf_gemm_regroup at wx: group g's blocks start at wx + g * nb * (its block bytes). */
    void (*x16)(int type, const uint8_t *xp, int T, const uint8_t *wx, int R, int nb, float *y,
                size_t ldy);
    /* F32 weights: y[t*ldy + r] = sum_k w[r*ldw + k] * xt[k*ldt + t] for t < T, r < R, where xt
     * holds the activations transposed ([K][ldt], ldt a multiple of 16 >= T, padding columns
     * readable). Weight rows are read in place, no packing. */
    void (*f32)(const float *xt, int T, int ldt, const float *w, size_t ldw, int R, int K,
                float *y, size_t ldy);
    /* The transposed operand of f32: xt[k*ldt + t] = x[t*ldx + k] for k < K, t < T, and 0 for
     * T <= t < T rounded up to 16 (the padding the micro-kernel reads; ldt must cover it). */
    void (*f32_pack)(const float *x, size_t ldx, int T, int K, float *xt, size_t ldt);
};

/* Bytes of one block of 16 regrouped rows of type (Q8_0 or Q4_0). */
static inline size_t gf_gemm_x16_block(int type)
{
    return type == GF_WT_Q8_0 ? GF_GEMM_Q8X : GF_GEMM_Q4X;
}

/* Regroups R rows (a multiple of 16) of nb blocks of type GF_WT_Q8_0 or GF_WT_Q4_0, row_bytes
 * apart, into out[R * row_bytes] (the x16 layout). */
void gf_gemm_regroup(int type, const void *rows, size_t row_bytes, int R, int nb, uint8_t *out);

/* The scalar implementation: the reference the SIMD one is tested against. */
extern const struct gf_gemm gf_gemm_scalar;

/* The fastest implementation this CPU runs (AVX-512 VNNI), or NULL when it has none: the
 * prompt path then falls back to dequantized tiles through sgemm, which is faster than a
 * scalar integer product. GF_KERNELS=scalar|avx2 also gives NULL. */
const struct gf_gemm *gf_gemm_get(void);

/* Filled by gemm_avx512.c. */
extern const struct gf_gemm gf_gemm_avx512vnni;

#endif
