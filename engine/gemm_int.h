/* gemm_int.h — the integer matrix product of prompt processing for quantized weights (Q8_0 and
 * Q4_0): activations quantized to Q8_0 (as the decode kernels do), weights unpacked tile by tile
 * into a layout an integer dot-product instruction consumes directly, and 8-bit products summed
 * exactly in 32-bit integers per block before the block scales are applied. This replaces
 * "dequantize the weights to f32, then sgemm": it reads four times fewer bytes per product and
 * needs no float conversion of the weights.
 *
 * Packed layout (both sides): a row of nb Q8_0-sized blocks becomes np = (nb + 1) / 2 pairs of
 * blocks (an odd last block is paired with a zero block whose scale is 0). A pair is 64 bytes,
 * seen as 16 lanes of 4 bytes: lane l holds bytes [4g, 4g + 4) of block 2p + (l & 1), with
 * g = GF_GEMM_PERM[l >> 1]. That order is what two AVX2 unpack instructions give, and the
 * scales of a pair follow the lane parity, so one 2-float broadcast scales all 16 lanes.
 *  - activations: bytes are q + 128 (unsigned); scales xs[2p], xs[2p + 1] (float of the half d)
 *  - weights: bytes are the signed values; scales ws likewise; wc[p][l] = -128 * (sum of the
 *    lane's 4 weight bytes), which cancels the +128 of the activations exactly.
 * Every implementation produces exactly this layout; tests compare them byte for byte. */
#ifndef GF_GEMM_INT_H
#define GF_GEMM_INT_H

#include <stddef.h>
#include <stdint.h>

#include "engine/kernels_int.h"

#define GF_GEMM_PAIR 64  // bytes of a packed pair of blocks

static const int GF_GEMM_PERM[8] = {0, 1, 4, 5, 2, 3, 6, 7};

struct gf_gemm {
    const char *name;  // "scalar", "avx512vnni"
    /* One token: nb Q8_0 blocks into q[np*64] (unsigned) and s[np*2]. */
    void (*pack_x)(const struct gf_block_q8 *x, int nb, uint8_t *q, float *s);
    /* One weight row of nb blocks of type GF_WT_Q8_0 or GF_WT_Q4_0 into q[np*64], s[np*2],
     * c[np*16]. */
    void (*pack_w)(int type, const void *row, int nb, int8_t *q, float *s, int32_t *c);
    /* y[t*ldy + r] = sum over the np pairs of token t and row r, for t < T, r < R. Token t's
     * packed data starts at xq + t*np*64, xs + t*np*2; row r's at wq + r*np*64, ws + r*np*2,
     * wc + r*np*16. */
    void (*tile)(const uint8_t *xq, const float *xs, int T, const int8_t *wq, const float *ws,
                 const int32_t *wc, int R, int np, float *y, size_t ldy);
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
