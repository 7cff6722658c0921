// Winograd F(2×2, 3×3) convolution transforms (Lavin & Gray 2016), stride 1.
//
// Why: a 3×3 convolution as an (implicit) GEMM spends 36 multiplies per 2×2 output block and
// channel pair; in the Winograd domain it spends 16, so the GEMM work drops to 4/9. The
// transforms cost additions only (the matrices hold 0, ±1, ±½) and run as separate passes:
//   U[ξ][o][c] = (G g Gᵀ)[ξ]              weights, per call (16/9 of the weights' size)
//   V[ξ][c][t] = (Bᵀ d B)[ξ]              input, one 4×4 patch per output tile t
//   M[ξ]       = U[ξ] · V[ξ]              16 GEMMs on the deterministic kernels
//   y[o][tile] = Aᵀ M[·][o][t] A + bias   output
// Every value is a fixed sequence of separate adds and multiplies (this file is compiled with
// -ffp-contract=off and nothing here is reassociated), so the results are the same bits on every
// ISA and thread count, as the GEMM's are. They differ from the direct convolution's in the last
// bits (different arithmetic); the tests bound that difference against a double-precision sum.
//
//   Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]   G = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1]
//   Aᵀ = [1 1 1 0; 0 1 -1 -1]

#include <string.h>
#include "AtelierKernelsC.h"

#include <stdlib.h>
#include "MicroKernels.h"

/// Where U[ξ][o][c] goes: plain [16][cout][cin], or each plane packed as GEMM's A (ak_pack_a_whole's
/// layout over [cout × cin], rows padded to MR) so that the 16 GEMMs never pack it again.
static inline size_t u_index(int packed_out, size_t padded, int cout, int cin, int xi, int o, int c) {
    if (!packed_out) return ((size_t)xi * cout + o) * cin + c;
    int k0 = c / AK_KC * AK_KC;
    int kc = cin - k0 < AK_KC ? cin - k0 : AK_KC;
    return (size_t)xi * padded * cin + padded * (size_t)k0 + (size_t)(o / AK_MR) * AK_MR * kc + (size_t)(c - k0) * AK_MR + o % AK_MR;
}

int ak_winograd_weights(const void *weights, int layout, int cout, int cin, int o0, int o1, float *u, int packed_out) {
    const size_t padded = (size_t)((cout + AK_MR - 1) / AK_MR) * AK_MR;
    const int depth = cin * 9;
    const float *w = weights;
    const uint16_t *w16 = weights;
    // Packed or bf16 weights: row o is first gathered (widened) into a plain fp32 row (one pass,
    // no index arithmetic per element), then transformed like plain weights.
    float *row = layout != AK_WEIGHTS_PLAIN ? malloc(sizeof(float) * (size_t)depth) : NULL;
    if (layout != AK_WEIGHTS_PLAIN && !row) return -1;
    for (int o = o0; o < o1; o++) {
        const float *plain = w + (size_t)o * depth;
        if (layout == AK_WEIGHTS_BF16) {
            for (int kk = 0; kk < depth; kk++) row[kk] = ak_widen_bf16(w16[(size_t)o * depth + kk]);
            plain = row;
        } else if (layout == AK_WEIGHTS_PACKED) {
            for (int k0 = 0; k0 < depth; k0 += AK_KC) {
                int kc = depth - k0 < AK_KC ? depth - k0 : AK_KC;
                const float *p = w + padded * (size_t)k0 + (size_t)(o / AK_MR) * AK_MR * kc + o % AK_MR;
                for (int kk = 0; kk < kc; kk++) row[k0 + kk] = p[(size_t)kk * AK_MR];
            }
            plain = row;
        }
        for (int c = 0; c < cin; c++) {
            const float *g = plain + (size_t)c * 9;
            float t[4][3];  // G g
            for (int j = 0; j < 3; j++) {
                float g0 = g[j], g1 = g[3 + j], g2 = g[6 + j];
                t[0][j] = g0;
                t[1][j] = ((g0 + g1) + g2) * 0.5f;
                t[2][j] = ((g0 - g1) + g2) * 0.5f;
                t[3][j] = g2;
            }
            for (int i = 0; i < 4; i++) {  // (G g) Gᵀ
                float a0 = t[i][0], a1 = t[i][1], a2 = t[i][2];
                u[u_index(packed_out, padded, cout, cin, i * 4 + 0, o, c)] = a0;
                u[u_index(packed_out, padded, cout, cin, i * 4 + 1, o, c)] = ((a0 + a1) + a2) * 0.5f;
                u[u_index(packed_out, padded, cout, cin, i * 4 + 2, o, c)] = ((a0 - a1) + a2) * 0.5f;
                u[u_index(packed_out, padded, cout, cin, i * 4 + 3, o, c)] = a2;
            }
        }
    }
    if (packed_out && o1 == cout)  // the zero rows that pad the last panel
        for (int xi = 0; xi < 16; xi++)
            for (int o = cout; o < (int)padded; o++)
                for (int c = 0; c < cin; c++) u[u_index(1, padded, cout, cin, xi, o, c)] = 0.0f;
    free(row);
    return 0;
}

int ak_winograd_input(const float *x, int cin, int h, int w, int pad_top, int pad_left,
                      int ty0, int ty1, int tw, int c0, int c1, float *v, long ldv, long tile0, size_t plane) {
    // One row buffer per input row a tile touches, zero outside the image: 4 rows of 2·tw + 2.
    const int bw = 2 * tw + 2;
    float *buf = malloc(sizeof(float) * 4 * (size_t)bw);
    if (!buf) return -1;
    float *rowsBuf[4] = {buf, buf + bw, buf + 2 * bw, buf + 3 * bw};
    for (int c = c0; c < c1; c++) {
        const float *xc = x + (size_t)c * h * w;
        for (int ty = ty0; ty < ty1; ty++) {
            for (int r = 0; r < 4; r++) {
                int iy = 2 * ty - pad_top + r;
                float *dst = rowsBuf[r];
                if (iy < 0 || iy >= h) { memset(dst, 0, sizeof(float) * bw); continue; }
                const float *src = xc + (size_t)iy * w;
                for (int j = 0; j < bw; j++) {
                    int ix = j - pad_left;
                    dst[j] = (ix >= 0 && ix < w) ? src[ix] : 0.0f;
                }
            }
            float *out = v + (size_t)c * ldv + tile0 + (size_t)(ty - ty0) * tw;
            const float *r0 = rowsBuf[0], *r1 = rowsBuf[1], *r2 = rowsBuf[2], *r3 = rowsBuf[3];
            for (int tx = 0; tx < tw; tx++) {
                int j = 2 * tx;
                // Bᵀ d: rows combined, per column
                float s0[4], s1[4], s2[4], s3[4];
                for (int q = 0; q < 4; q++) {
                    float d0 = r0[j + q], d1 = r1[j + q], d2 = r2[j + q], d3 = r3[j + q];
                    s0[q] = d0 - d2;
                    s1[q] = d1 + d2;
                    s2[q] = d2 - d1;
                    s3[q] = d1 - d3;
                }
                // (Bᵀ d) B: columns combined, per row
                const float *s[4] = {s0, s1, s2, s3};
                for (int i = 0; i < 4; i++) {
                    const float *si = s[i];
                    out[(size_t)(i * 4 + 0) * plane + tx] = si[0] - si[2];
                    out[(size_t)(i * 4 + 1) * plane + tx] = si[1] + si[2];
                    out[(size_t)(i * 4 + 2) * plane + tx] = si[2] - si[1];
                    out[(size_t)(i * 4 + 3) * plane + tx] = si[1] - si[3];
                }
            }
        }
    }
    free(buf);
    return 0;
}

void ak_winograd_output(const float *m, long ldm, long tile0, size_t plane, int ty0, int ty1, int tw,
                        int o0, int o1, const float *bias, float *y, int hout, int wout) {
    for (int o = o0; o < o1; o++) {
        float *yo = y + (size_t)o * hout * wout;
        for (int ty = ty0; ty < ty1; ty++) {
            const float *mt = m + (size_t)o * ldm + tile0 + (size_t)(ty - ty0) * tw;
            int y0 = 2 * ty;
            for (int tx = 0; tx < tw; tx++) {
                float e[16];
                for (int k = 0; k < 16; k++) e[k] = mt[(size_t)k * plane + tx];
                // Aᵀ M: rows combined
                float a0[4], a1[4];
                for (int q = 0; q < 4; q++) {
                    a0[q] = (e[q] + e[4 + q]) + e[8 + q];
                    a1[q] = (e[4 + q] - e[8 + q]) - e[12 + q];
                }
                // (Aᵀ M) A: columns combined, then the bias
                float v00 = (a0[0] + a0[1]) + a0[2], v01 = (a0[1] - a0[2]) - a0[3];
                float v10 = (a1[0] + a1[1]) + a1[2], v11 = (a1[1] - a1[2]) - a1[3];
                if (bias) {
                    float b = bias[o];
                    v00 = v00 + b; v01 = v01 + b; v10 = v10 + b; v11 = v11 + b;
                }
                int x0 = 2 * tx;
                float *row = yo + (size_t)y0 * wout + x0;
                row[0] = v00;
                if (x0 + 1 < wout) row[1] = v01;
                if (y0 + 1 < hout) {
                    row[wout] = v10;
                    if (x0 + 1 < wout) row[wout + 1] = v11;
                }
            }
        }
    }
}
