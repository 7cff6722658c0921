// Packing: copies blocks of A and B into the panel order the micro-kernels stream through
// (A: MR rows side by side per k; B: NR columns side by side per k), zero-padding partial
// panels so that every micro-kernel call is a full tile. Padding never changes a real element's
// chain: padded rows and columns only produce values that are never stored.

#include <string.h>
#include "AtelierKernelsC.h"
#include "MicroKernels.h"

void ak_pack_a(const float *a, long lda, int trans, int i0, int mc, int k0, int kc, float *dst) {
    const int mr = AK_MR;
    for (int p = 0; p * mr < mc; p++) {
        int rows = mc - p * mr < mr ? mc - p * mr : mr;
        float *d = dst + (size_t)p * mr * kc;
        if (!trans && rows == mr) {
#if defined(__x86_64__)
            if (ak_isa_current() != AK_ISA_SCALAR) {
                ak_pack_a_rows6_avx2(a + (size_t)(i0 + p * mr) * lda + k0, lda, kc, d);
                continue;
            }
#endif
            const float *r0 = a + (size_t)(i0 + p * mr) * lda + k0;
            for (int kk = 0; kk < kc; kk++)
                for (int r = 0; r < mr; r++) d[kk * mr + r] = r0[(size_t)r * lda + kk];
        } else if (!trans) {
            for (int r = 0; r < mr; r++) {
                if (r < rows) {
                    const float *src = a + (size_t)(i0 + p * mr + r) * lda + k0;
                    for (int kk = 0; kk < kc; kk++) d[kk * mr + r] = src[kk];
                } else {
                    for (int kk = 0; kk < kc; kk++) d[kk * mr + r] = 0.0f;
                }
            }
        } else {
            for (int kk = 0; kk < kc; kk++) {
                const float *src = a + (size_t)(k0 + kk) * lda + i0 + p * mr;
                int r = 0;
                for (; r < rows; r++) d[kk * mr + r] = src[r];
                for (; r < mr; r++) d[kk * mr + r] = 0.0f;
            }
        }
    }
}

void ak_pack_b(const float *b, long ldb, int trans, int k0, int kc, int j0, int nc,
               int p0, int p1, float *dst) {
    const int nr = ak_nr();
    if (p1 <= p0) return;
    int fullEnd = p1;  // panels [p0, fullEnd) are full NR wide
    if ((p1 - 1) * nr + nr > nc) fullEnd = p1 - 1;
    if (!trans) {
        // Row by row: each source row is read once, contiguously, across all panels.
        for (int kk = 0; kk < kc; kk++) {
            const float *src = b + (size_t)(k0 + kk) * ldb + j0;
            if (nr == 16) {
                for (int p = p0; p < fullEnd; p++) {
                    float *d = dst + (size_t)p * 16 * kc + (size_t)kk * 16;
                    const float *sp = src + p * 16;
                    for (int j = 0; j < 16; j++) d[j] = sp[j];
                }
            } else {
                for (int p = p0; p < fullEnd; p++)
                    memcpy(dst + (size_t)p * nr * kc + (size_t)kk * nr, src + p * nr, sizeof(float) * nr);
            }
        }
    } else if (ak_isa_current() != AK_ISA_SCALAR) {
#if defined(__x86_64__)
        for (int p = p0; p < fullEnd; p++)
            ak_pack_b_transposed_avx2(b + (size_t)(j0 + p * nr) * ldb + k0, ldb, kc, nr, dst + (size_t)p * nr * kc);
#endif
    } else {
        for (int p = p0; p < fullEnd; p++) {
            float *d = dst + (size_t)p * nr * kc;
            for (int j = 0; j < nr; j++) {
                const float *src = b + (size_t)(j0 + p * nr + j) * ldb + k0;
                for (int kk = 0; kk < kc; kk++) d[kk * nr + j] = src[kk];
            }
        }
    }
    if (fullEnd < p1) {  // the last, partial panel: zero-padded columns
        int p = fullEnd, cols = nc - p * nr;
        float *d = dst + (size_t)p * nr * kc;
        for (int kk = 0; kk < kc; kk++)
            for (int j = 0; j < nr; j++)
                d[kk * nr + j] = j >= cols ? 0.0f
                    : trans ? b[(size_t)(j0 + p * nr + j) * ldb + k0 + kk] : b[(size_t)(k0 + kk) * ldb + j0 + p * nr + j];
    }
}

void ak_pack_b_conv(const ak_conv_geometry *g, int k0, int kc, int j0, int nc,
                    int p0, int p1, float *dst) {
    const int nr = ak_nr();
    const int h = g->height, w = g->width, kh = g->kh, kw = g->kw, s = g->stride;
    const size_t plane = (size_t)h * w;
    int rowoff[AK_NR_MAX], coloff[AK_NR_MAX];
    for (int p = p0; p < p1; p++) {
        int cols = nc - p * nr < nr ? nc - p * nr : nr;
        float *d = dst + (size_t)p * nr * kc;
        int jb = j0 + p * nr;
        for (int j = 0; j < cols; j++) {
            int n = jb + j, oy = n / g->out_w, ox = n % g->out_w;
            rowoff[j] = oy * s - g->pad_top;
            coloff[j] = ox * s - g->pad_left;
        }
        // One output row and stride 1: the panel's inputs are consecutive in memory for every k.
        int contiguous = s == 1 && cols == nr && rowoff[0] == rowoff[nr - 1] && coloff[nr - 1] == coloff[0] + nr - 1;
        int c = k0 / (kh * kw), ki = (k0 / kw) % kh, kj = k0 % kw;
        for (int kk = 0; kk < kc; kk++) {
            const float *src = g->input + (size_t)c * plane;
            float *out = d + kk * nr;
            if (contiguous) {
                int iy = rowoff[0] + ki, ix = coloff[0] + kj;
                if (iy < 0 || iy >= h) {
                    if (nr == 16) { for (int j = 0; j < 16; j++) out[j] = 0.0f; }
                    else memset(out, 0, sizeof(float) * nr);
                } else if (ix >= 0 && ix + nr <= w) {
                    // Fixed-size copies compile to two vector moves; a memcpy call per k cost 10%
                    // of a VAE decode.
                    const float *line = src + (size_t)iy * w + ix;
                    if (nr == 16) { for (int j = 0; j < 16; j++) out[j] = line[j]; }
                    else if (nr == 32) { for (int j = 0; j < 32; j++) out[j] = line[j]; }
                    else memcpy(out, line, sizeof(float) * nr);
                } else {
                    const float *line = src + (size_t)iy * w;
                    for (int j = 0; j < nr; j++) {
                        int x = ix + j;
                        out[j] = (x >= 0 && x < w) ? line[x] : 0.0f;
                    }
                }
            } else {
                int j = 0;
                for (; j < cols; j++) {
                    int iy = rowoff[j] + ki, ix = coloff[j] + kj;
                    out[j] = (iy >= 0 && iy < h && ix >= 0 && ix < w) ? src[(size_t)iy * w + ix] : 0.0f;
                }
                for (; j < nr; j++) out[j] = 0.0f;
            }
            if (++kj == kw) {
                kj = 0;
                if (++ki == kh) { ki = 0; c++; }
            }
        }
    }
}

size_t ak_packed_a_floats(int m, int k) {
    if (m <= 0 || k <= 0) return 0;
    return (size_t)((m + AK_MR - 1) / AK_MR) * AK_MR * (size_t)k;
}

void ak_pack_a_whole(const float *a, long lda, int m, int k0, int kc, float *dst) {
    size_t rows = (size_t)((m + AK_MR - 1) / AK_MR) * AK_MR;
    ak_pack_a(a, lda, 0, 0, m, k0, kc, dst + rows * (size_t)k0);
}

void ak_unpack_a_whole(const float *packed, int m, int k, float *dst) {
    const int mr = AK_MR;
    size_t rows = (size_t)((m + mr - 1) / mr) * mr;
    for (int k0 = 0; k0 < k; k0 += AK_KC) {
        int kc = k - k0 < AK_KC ? k - k0 : AK_KC;
        const float *block = packed + rows * (size_t)k0;
        for (int i = 0; i < m; i++) {
            const float *panel = block + (size_t)(i / mr) * mr * kc;
            float *out = dst + (size_t)i * k + k0;
            for (int kk = 0; kk < kc; kk++) out[kk] = panel[kk * mr + i % mr];
        }
    }
}
