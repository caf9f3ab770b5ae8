/* gemm_int.h — the matrix products of prompt processing on AVX-512: an integer product for
 * quantized weights (Q8_0 and Q4_0) and a float one for F32 weights.
 *
 * Integer product: activations quantized to Q8_0 (as the decode kernels do), weights unpacked
 * tile by tile into a layout the VPDPBUSD instruction consumes directly, and 8-bit products
 * summed exactly in 32-bit integers per block before the block scales are applied. This
 * replaces "dequantize the weights to f32, then sgemm": it reads four times fewer bytes per
 * product and needs no float conversion of the weights.
 *
 * Packed layout. Activations, per token: q[nb][32], the block values + 128 (unsigned), and
 * s[nb], the block scales as floats. Weights, per group of 4 rows, per block k: 256 bytes
 *   [0, 64)    w1: lane l (4 bytes, l < 16) = bytes 4*(l%4) .. +3 of row l/4's block
 *   [64, 128)  w2: the same for bytes 16 + 4*(l%4) .. +3
 *   [128, 192) int32 c[16]: -128 * (sum of lane l's 8 weight bytes in w1 and w2), which cancels
 *              the +128 of the activations exactly
 *   [192, 256) float s[16]: the scale of row l/4's block
 * so one VPDPBUSD takes a half-block of four rows against a token's half-block broadcast to the
 * four 128-bit lanes, and two of them sum a whole block of four rows in one register; a group
 * past the matrix's last row is padded with zero rows (scale 0). Every implementation produces
 * exactly this layout; tests compare them byte for byte. */
#ifndef GF_GEMM_INT_H
#define GF_GEMM_INT_H

#include <stddef.h>
#include <stdint.h>

#include "engine/kernels_int.h"

#define GF_GEMM_GROUP 256  // bytes of one block of a group of 4 weight rows

struct gf_gemm {
    const char *name;  // "scalar", "avx512vnni"
    /* One token: nb Q8_0 blocks into q[nb*32] (unsigned) and s[nb]. */
    void (*pack_x)(const struct gf_block_q8 *x, int nb, uint8_t *q, float *s);
    /* n (1-4) weight rows of nb blocks of type GF_WT_Q8_0 or GF_WT_Q4_0, row_bytes apart, into
     * one group: out[nb * 256]. */
    void (*pack_w)(int type, const void *rows, size_t row_bytes, int n, int nb, uint8_t *out);
    /* y[t*ldy + r] = the product of token t and row r, for t < T and r < R, where the R rows
     * are packed as ceil(R/4) groups of nb blocks, one after the other, and token t's packed
     * data starts at xq + t*nb*32, xs + t*nb. */
    void (*tile)(const uint8_t *xq, const float *xs, int T, const uint8_t *wp, int R, int nb,
                 float *y, size_t ldy);
    /* F32 weights: y[t*ldy + r] = sum_k w[r*ldw + k] * xt[k*ldt + t] for t < T, r < R, where xt
     * holds the activations transposed ([K][ldt], ldt a multiple of 16 >= T, padding columns
     * readable). Weight rows are read in place, no packing. */
    void (*f32)(const float *xt, int T, int ldt, const float *w, size_t ldw, int R, int K,
                float *y, size_t ldy);
};

/* The scalar implementation: the reference the SIMD one is tested against. */
extern const struct gf_gemm gf_gemm_scalar;

/* The fastest implementation this CPU runs (AVX-512 VNNI), or NULL when it has none: the
 * prompt path then falls back to dequantized tiles through sgemm, which is faster than a
 * scalar integer product. GF_KERNELS=scalar|avx2 also gives NULL. */
const struct gf_gemm *gf_gemm_get(void);

/* Filled by gemm_avx512.c. */
extern const struct gf_gemm gf_gemm_avx512vnni;

#endif
