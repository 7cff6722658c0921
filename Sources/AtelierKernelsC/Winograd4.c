// Winograd F(4×4, 3×3) convolution transforms (Lavin & Gray 2016; points 0, ±1, ±2, ∞), stride 1.
//
// Why: F(2×2, 3×3) cut a 3×3 convolution's multiplies to 16/36 of the direct form's; F(4×4, 3×3)
// cuts them to 36/144 = 1/4, and its transformed input is 36/16 of the tile area instead of 16/4,
// so it also moves less memory per output. The price is accuracy (the transforms hold ±2, ±4,
// ±8, 1/6, 1/24, so rounding errors grow about tenfold; still far below a pixel level) and bigger
// transformed weights (36/9 of the weights), which the driver bounds by transforming them a
// K-block of input channels at a time.
//   U[ξ][o][c] = (G g Gᵀ)[ξ]      weights, per call, channels [c0, c1), into 36 packed A planes
//   V[ξ][c][t] = (Bᵀ d B)[ξ]      input, one 6×6 patch per 4×4 output tile t
//   M[ξ]       = U[ξ] · V[ξ]      36 GEMMs on the deterministic kernels
//   y[o][tile] = Aᵀ M A + bias    output
// As in Winograd.c, every value is a fixed sequence of separate adds and multiplies (compiled with
// -ffp-contract=off), so the bits are the same on every ISA, thread count and band split.
//
//   G  = [ 1/4 0 0; −1/6 −1/6 −1/6; −1/6 1/6 −1/6; 1/24 1/12 1/6; 1/24 −1/12 1/6; 0 0 1 ]
//   Bᵀ = [ 4 0 −5 0 1 0; 0 −4 −4 1 1 0; 0 4 −4 −1 1 0; 0 −2 −1 2 1 0; 0 2 −1 −2 1 0; 0 4 0 −5 0 1 ]
//   Aᵀ = [ 1 1 1 1 1 0; 0 1 −1 2 −2 0; 0 1 1 4 4 0; 0 1 −1 8 −8 1 ]

#if defined(__x86_64__)
#include <immintrin.h>  // first, so that the emulation check's SIMDe stands in for it everywhere below
#endif
#include <stdlib.h>
#include <string.h>
#include "AtelierKernelsC.h"
#include "MicroKernels.h"

/// Eight lanes (tiles, or a panel's output channels) at a time, with the compiler's vector type:
/// each lane is the same separate IEEE adds and multiplies a scalar loop would do, so the bits do
/// not depend on the vector width (on x86-64 without AVX these are two SSE halves; NEON likewise).
#pragma clang diagnostic ignored "-Wpsabi"  // v8 never crosses a call: everything here is inlined
typedef float v8 __attribute__((vector_size(32)));
#define AK_SPLAT(x) ((v8){(x), (x), (x), (x), (x), (x), (x), (x)})

static inline __attribute__((always_inline)) v8 load8(const float *p) { v8 x; memcpy(&x, p, sizeof x); return x; }
static inline __attribute__((always_inline)) void store8(float *p, v8 x) { memcpy(p, &x, sizeof x); }

/// G applied to one column (g0, g1, g2) → six values.
static inline __attribute__((always_inline)) void g_column(v8 g0, v8 g1, v8 g2, v8 *t) {
    const v8 sixth = AK_SPLAT(-1.0f / 6.0f), twentyfourth = AK_SPLAT(1.0f / 24.0f);
    const v8 two = AK_SPLAT(2.0f), four = AK_SPLAT(4.0f);
    t[0] = g0 * AK_SPLAT(0.25f);
    t[1] = ((g0 + g1) + g2) * sixth;
    t[2] = ((g0 - g1) + g2) * sixth;
    t[3] = ((g0 + g1 * two) + g2 * four) * twentyfourth;
    t[4] = ((g0 - g1 * two) + g2 * four) * twentyfourth;
    t[5] = g2;
}

/// Bᵀ applied to one column (d0…d5) → six values.
static inline __attribute__((always_inline)) void b_column(const v8 *d, v8 *s) {
    const v8 two = AK_SPLAT(2.0f), four = AK_SPLAT(4.0f), five = AK_SPLAT(5.0f);
    s[0] = (d[0] * four - d[2] * five) + d[4];
    s[1] = (d[3] + d[4]) - (d[1] + d[2]) * four;
    s[2] = (d[4] - d[3]) + (d[1] - d[2]) * four;
    s[3] = (d[4] - d[2]) + (d[3] - d[1]) * two;
    s[4] = (d[4] - d[2]) + (d[1] - d[3]) * two;
    s[5] = (d[1] * four - d[3] * five) + d[5];
}

/// Aᵀ applied to one column (m0…m5) → four values.
static inline __attribute__((always_inline)) void a_column(const v8 *m, v8 *o) {
    v8 p12 = m[1] + m[2], d12 = m[1] - m[2], p34 = m[3] + m[4], d34 = m[3] - m[4];
    o[0] = (p12 + p34) + m[0];
    o[1] = d12 + d34 * AK_SPLAT(2.0f);
    o[2] = p12 + p34 * AK_SPLAT(4.0f);
    o[3] = (d12 + d34 * AK_SPLAT(8.0f)) + m[5];
}

/// Where packed weights keep the panel at output channel p0 (a multiple of AK_MR) for depth index
/// kk: its AK_MR lanes are contiguous there (ak_pack_a_whole's layout).
static inline __attribute__((always_inline)) const float *packed_panel(const float *w, size_t padded, int depth,
                                                                      int p0, int kk) {
    int k0 = kk / AK_KC * AK_KC;
    int kc = depth - k0 < AK_KC ? depth - k0 : AK_KC;
    return w + padded * (size_t)k0 + (size_t)p0 * kc + (size_t)(kk - k0) * AK_MR;
}

/// Weight (output channel p0 + l, depth index kk) of a layer, as fp32, in any of the three layouts.
static inline __attribute__((always_inline)) float weight_at(const void *weights, int layout, size_t padded,
                                                             int depth, int p0, int l, int kk) {
    if (layout == AK_WEIGHTS_BF16) return ak_widen_bf16(((const uint16_t *)weights)[(size_t)(p0 + l) * depth + kk]);
    if (layout == AK_WEIGHTS_PACKED) return packed_panel(weights, padded, depth, p0, kk)[l];
    return ((const float *)weights)[(size_t)(p0 + l) * depth + kk];
}

/// U for output channels [o0, o1) and input channels [c0, c1) into 36 packed planes `plane` floats
/// apart, each laid out as ak_pack_a_whole packs a [urows × (c1 − c0)] matrix whose row 0 is output
/// channel `obase`: the whole layer's planes (obase 0, urows = cout) or one block's (obase = o0).
/// Only channels c0 + [cs, ce) are written (the rest of the layout is another call's).
static inline __attribute__((always_inline)) int weights_impl(const void *weights, int layout, int cout, int cin, int c0, int c1,
                         int o0, int o1, float *u, int obase, size_t urows, size_t plane, int cs, int ce) {
    const size_t padded = (size_t)((cout + AK_MR - 1) / AK_MR) * AK_MR;
    const size_t upadded = (urows + AK_MR - 1) / AK_MR * AK_MR;
    const int depth = cin * 9, width = c1 - c0;
    // Panel by panel (AK_MR output channels, the packed layout's lanes), so that every read of
    // packed weights and every write of a packed plane is AK_MR contiguous floats; lanes past
    // cout are written as the zeros that pad the last panel.
    _Static_assert(AK_MR == 6, "full panels below are built as six lanes of a v8");
    for (int p0 = o0 / AK_MR * AK_MR; p0 < o1; p0 += AK_MR) {
        const int valid = cout - p0 < AK_MR ? cout - p0 : AK_MR;
        for (int c = cs; c < ce; c++) {
            v8 g[9];
            for (int j = 0; j < 9; j++) {
                int kk = (c0 + c) * 9 + j;
#define AK_W(l) weight_at(weights, layout, padded, depth, p0, (l), kk)
                // A full panel's six lanes go straight into a register: written to a stack array
                // and re-read as one vector they stalled store forwarding on every load (640 × 384
                // channel pairs of packed weights: 7.5 ms before, 3.9 ms after, clang, one Zen 3 thread).
                if (valid == 6) {
                    if (layout == AK_WEIGHTS_PACKED) {  // the fp32 default: one contiguous panel
                        const float *src = packed_panel(weights, padded, depth, p0, kk);
                        g[j] = (v8){src[0], src[1], src[2], src[3], src[4], src[5], 0, 0};
                    } else {
                        g[j] = (v8){AK_W(0), AK_W(1), AK_W(2), AK_W(3), AK_W(4), AK_W(5), 0, 0};
                    }
                    continue;
                }
                // The last, part-filled panel: lanes past cout are zero.
                float lanes[8] = {0};
                for (int l = 0; l < valid; l++) lanes[l] = AK_W(l);
#undef AK_W
                g[j] = load8(lanes);
            }
            // t[j] = G applied to column j of g, i.e. t[j][i] = (G g)[i][j]; then row i times Gᵀ.
            v8 t[3][6], r[6][6];
            for (int j = 0; j < 3; j++) g_column(g[j], g[3 + j], g[6 + j], t[j]);
            for (int i = 0; i < 6; i++) g_column(t[0][i], t[1][i], t[2][i], r[i]);
            // Where (p0, c) lies in each packed plane (ak_pack_a_whole's layout over [cout × width]).
            int k0 = c / AK_KC * AK_KC;
            int kc = width - k0 < AK_KC ? width - k0 : AK_KC;
            float *at = u + upadded * (size_t)k0 + (size_t)(p0 - obase) * kc + (size_t)(c - k0) * AK_MR;
            if (valid == 6) {
                for (int i = 0; i < 6; i++)
                    for (int k = 0; k < 6; k++) memcpy(at + (size_t)(i * 6 + k) * plane, &r[i][k], sizeof(float) * AK_MR);
                continue;
            }
            for (int i = 0; i < 6; i++)
                for (int k = 0; k < 6; k++) {
                    float lanes[8];
                    store8(lanes, r[i][k]);
                    for (int l = valid; l < AK_MR; l++) lanes[l] = 0.0f;
                    memcpy(at + (size_t)(i * 6 + k) * plane, lanes, sizeof(float) * AK_MR);
                }
        }
    }
    return 0;
}

static inline __attribute__((always_inline)) int input_impl(const float *x, int cin, int h, int w, int pad_top, int pad_left,
                       int ty0, int ty1, int tw, int c0, int c1, float *v, long ldv, long tile0, size_t plane) {
    // Each of the 6 input rows a tile row touches, zero outside the image, split by column phase:
    // ph[r][q][k] = row r at column 4k + q. Column q of tile tx is then ph[r][q][tx] (q < 4) or
    // ph[r][q − 4][tx + 1], so eight tiles are eight contiguous floats of each.
    const int blocks = (tw + 7) / 8, pw = blocks * 8 + 8;
    float *buf = malloc(sizeof(float) * 24 * (size_t)pw);
    if (!buf) return -1;
    for (int c = c0; c < c1; c++) {
        const float *xc = x + (size_t)c * h * w;
        for (int ty = ty0; ty < ty1; ty++) {
            for (int r = 0; r < 6; r++) {
                int iy = 4 * ty - pad_top + r;
                float *dst = buf + (size_t)(r * 4) * pw;  // its 4 phases, pw floats apart
                if (iy < 0 || iy >= h) { memset(dst, 0, sizeof(float) * 4 * pw); continue; }
                const float *src = xc + (size_t)iy * w;
                // Eight k at a time (pw is a multiple of 8): the 32 columns 4k − pad_left … + 31 as
                // four vectors, zero outside the row, then a 4-way de-interleave by shuffles. Only
                // values move, so the bits are those of the plain gather (which took most of this
                // transform's time as a scalar loop).
                for (int k = 0; k < pw; k += 8) {
                    int ix = 4 * k - pad_left;
                    v8 a0, a1, a2, a3;
                    if (ix >= 0 && ix + 32 <= w) {  // inside the row
                        a0 = load8(src + ix); a1 = load8(src + ix + 8); a2 = load8(src + ix + 16); a3 = load8(src + ix + 24);
                    } else if (ix == -1 && w >= 31) {  // the first block of a padding-1 row
                        const v8 zero = AK_SPLAT(0.0f);
                        a0 = __builtin_shufflevector(zero, load8(src), 0, 8, 9, 10, 11, 12, 13, 14);
                        a1 = load8(src + 7); a2 = load8(src + 15); a3 = load8(src + 23);
                    } else {  // the row's edge: through a zeroed copy
                        float part[32] = {0};
                        int lo = ix < 0 ? 0 : ix, hi = ix + 32 < w ? ix + 32 : w;
                        if (hi > lo) memcpy(part + (lo - ix), src + lo, sizeof(float) * (size_t)(hi - lo));
                        a0 = load8(part); a1 = load8(part + 8); a2 = load8(part + 16); a3 = load8(part + 24);
                    }
                    v8 t0 = __builtin_shufflevector(a0, a1, 0, 4, 8, 12, 1, 5, 9, 13);
                    v8 t1 = __builtin_shufflevector(a0, a1, 2, 6, 10, 14, 3, 7, 11, 15);
                    v8 t2 = __builtin_shufflevector(a2, a3, 0, 4, 8, 12, 1, 5, 9, 13);
                    v8 t3 = __builtin_shufflevector(a2, a3, 2, 6, 10, 14, 3, 7, 11, 15);
                    store8(dst + k, __builtin_shufflevector(t0, t2, 0, 1, 2, 3, 8, 9, 10, 11));
                    store8(dst + pw + k, __builtin_shufflevector(t0, t2, 4, 5, 6, 7, 12, 13, 14, 15));
                    store8(dst + 2 * pw + k, __builtin_shufflevector(t1, t3, 0, 1, 2, 3, 8, 9, 10, 11));
                    store8(dst + 3 * pw + k, __builtin_shufflevector(t1, t3, 4, 5, 6, 7, 12, 13, 14, 15));
                }
            }
            float *out = v + (size_t)c * ldv + tile0 + (size_t)(ty - ty0) * tw;
            for (int tb = 0; tb < tw; tb += 8) {
                const int nt = tw - tb < 8 ? tw - tb : 8;
                v8 s[6][6];  // s[q] = Bᵀ applied to column q of the patches
                for (int q = 0; q < 6; q++) {
                    v8 d[6];
                    for (int r = 0; r < 6; r++)
                        d[r] = load8(buf + (size_t)(r * 4 + (q & 3)) * pw + tb + (q >> 2));
                    b_column(d, s[q]);
                }
                for (int i = 0; i < 6; i++) {  // row i of Bᵀ d, times B
                    v8 d[6] = {s[0][i], s[1][i], s[2][i], s[3][i], s[4][i], s[5][i]}, e[6];
                    b_column(d, e);
                    for (int k = 0; k < 6; k++) {
                        float *dst = out + (size_t)(i * 6 + k) * plane + tb;
                        if (nt == 8) store8(dst, e[k]);
                        else { float lanes[8]; store8(lanes, e[k]); memcpy(dst, lanes, sizeof(float) * nt); }
                    }
                }
            }
        }
    }
    free(buf);
    return 0;
}

static inline __attribute__((always_inline)) void output_impl(const float *m, long ldm, long tile0, size_t plane, int ty0, int ty1, int tw,
                         int o0, int o1, const float *bias, float *y, int hout, int wout) {
    for (int o = o0; o < o1; o++) {
        float *yo = y + (size_t)o * hout * wout;
        const v8 b = AK_SPLAT(bias ? bias[o] : 0.0f);
        for (int ty = ty0; ty < ty1; ty++) {
            const float *mt = m + (size_t)o * ldm + tile0 + (size_t)(ty - ty0) * tw;
            int y0 = 4 * ty;
            for (int tb = 0; tb < tw; tb += 8) {  // eight tiles at a time
                const int nt = tw - tb < 8 ? tw - tb : 8;
                v8 a[6][4];  // a[q] = Aᵀ applied to column q of M
                for (int q = 0; q < 6; q++) {
                    v8 col[6];
                    for (int r = 0; r < 6; r++) {
                        const float *src = mt + (size_t)(r * 6 + q) * plane + tb;
                        if (nt == 8) col[r] = load8(src);
                        else { float lanes[8] = {0}; memcpy(lanes, src, sizeof(float) * nt); col[r] = load8(lanes); }
                    }
                    a_column(col, a[q]);
                }
                for (int i = 0; i < 4 && y0 + i < hout; i++) {  // row i of Aᵀ M, times A
                    v8 row[6] = {a[0][i], a[1][i], a[2][i], a[3][i], a[4][i], a[5][i]}, r4[4];
                    a_column(row, r4);
                    float res[4][8];
                    for (int k = 0; k < 4; k++) store8(res[k], bias ? r4[k] + b : r4[k]);
                    float *dst = yo + (size_t)(y0 + i) * wout;
                    for (int t = 0; t < nt; t++) {
                        int x0 = 4 * (tb + t);
                        for (int k = 0; k < 4 && x0 + k < wout; k++) dst[x0 + k] = res[k][t];
                    }
                }
            }
        }
    }
}

// Each transform compiled twice, for AVX2 (whole 8-lane vectors) and for the baseline; the same
// separate adds and multiplies either way (no FMA: -ffp-contract=off), so the same bits.
#if defined(__x86_64__)
#define AK_W4_AVX2 __attribute__((target("avx2")))
#define AK_W4_WIDE (ak_isa_current() >= AK_ISA_AVX2)
#else
#define AK_W4_AVX2
#define AK_W4_WIDE 0
#endif

static AK_W4_AVX2 int weights_avx2(const void *w, int layout, int cout, int cin, int c0, int c1, int o0, int o1, float *u,
                                   int obase, size_t urows, size_t plane, int cs, int ce) {
    return weights_impl(w, layout, cout, cin, c0, c1, o0, o1, u, obase, urows, plane, cs, ce);
}
static int weights_base(const void *w, int layout, int cout, int cin, int c0, int c1, int o0, int o1, float *u,
                        int obase, size_t urows, size_t plane, int cs, int ce) {
    return weights_impl(w, layout, cout, cin, c0, c1, o0, o1, u, obase, urows, plane, cs, ce);
}
#if defined(__x86_64__)
// AK_TARGET, as in the other AVX-512 files, so that scripts/avx512-emulation-check.sh can run these
// on SIMDe (vectors cross between the intrinsic and the vector types by memcpy, which SIMDe's
// emulated types allow).
#define AK_TARGET __attribute__((target("avx512f")))
#define AK_W4_512 AK_TARGET
typedef float v16 __attribute__((vector_size(64)));

#if defined(SIMDE_ENABLE_NATIVE_ALIASES)
// scripts/avx512-emulation-check.sh runs this file on SIMDe, which lacks these three: the same
// results lane by lane (only the emulation's speed differs).
static inline __m512 ak_mask_loadu_ps(__m512 src, __mmask16 k, const float *p) {
    float lanes[16];
    _mm512_storeu_ps(lanes, src);
    for (int i = 0; i < 16; i++)
        if ((k >> i) & 1) lanes[i] = p[i];
    return _mm512_loadu_ps(lanes);
}
static inline __m512i ak_gather_words(__m512i index, const uint16_t *base) {
    int32_t at[16];
    uint32_t words[16];
    _mm512_storeu_si512(at, index);
    for (int i = 0; i < 16; i++) memcpy(&words[i], base + at[i], 4);
    return _mm512_loadu_si512(words);
}
static inline __mmask16 ak_testn_epi32_mask(__m512i a, __m512i b) {
    uint32_t x[16], y[16];
    _mm512_storeu_si512(x, a);
    _mm512_storeu_si512(y, b);
    __mmask16 k = 0;
    for (int i = 0; i < 16; i++)
        if ((x[i] & y[i]) == 0) k |= (__mmask16)(1u << i);
    return k;
}
#else
#define ak_mask_loadu_ps _mm512_mask_loadu_ps
/// 32-bit words at base + index (in uint16_t units).
#define ak_gather_words(index, base) _mm512_i32gather_epi32((index), (const void *)(base), 2)
#define ak_testn_epi32_mask _mm512_testn_epi32_mask
#endif

static inline __attribute__((always_inline)) AK_W4_512 __m512 as_m512(v16 x) {
    __m512 y;
    memcpy(&y, &x, sizeof y);
    return y;
}

/// g_column on 16 lanes: the same separate operations, so the same bits per lane.
static inline __attribute__((always_inline)) AK_W4_512 void g_column16(v16 g0, v16 g1, v16 g2, v16 *t) {
    const v16 sixth = (v16){0} + (-1.0f / 6.0f), twentyfourth = (v16){0} + (1.0f / 24.0f);
    const v16 two = (v16){0} + 2.0f, four = (v16){0} + 4.0f;
    t[0] = g0 * ((v16){0} + 0.25f);
    t[1] = ((g0 + g1) + g2) * sixth;
    t[2] = ((g0 - g1) + g2) * sixth;
    t[3] = ((g0 + g1 * two) + g2 * four) * twentyfourth;
    t[4] = ((g0 - g1 * two) + g2 * four) * twentyfourth;
    t[5] = g2;
}

/// G g Gᵀ of 16 lanes' 3×3 weights g[0…8] (row-major), stored as 16 consecutive floats of each of
/// the 36 planes, `plane` floats apart.
static inline __attribute__((always_inline)) AK_W4_512 void transform_store16(const v16 *g, float *out, size_t plane) {
    v16 t[3][6], r[6][6];
    for (int j = 0; j < 3; j++) g_column16(g[j], g[3 + j], g[6 + j], t[j]);
    for (int i = 0; i < 6; i++) g_column16(t[0][i], t[1][i], t[2][i], r[i]);
    for (int i = 0; i < 6; i++)
        for (int k = 0; k < 6; k++) _mm512_storeu_ps(out + (size_t)(i * 6 + k) * plane, as_m512(r[i][k]));
}

/// weights_impl for packed fp32 weights on 16-lane vectors: one full panel (six output channels
/// from p0) and eight input channels from relative channel cs (a multiple of 8) at a time, whose
/// 48 transformed values are 48 consecutive floats of every packed plane, so each plane takes three
/// whole-vector stores; lane (channel cc, row r) reads its weight with a masked load per channel.
/// The per-lane operations are weights_impl's, so are the bits.
static AK_W4_512 void weights_packed_avx512(const float *w, int cout, int cin, int c0, int c1, int p0, int cs,
                                            float *u, int obase, size_t urows, size_t plane) {
    const size_t padded = (size_t)((cout + AK_MR - 1) / AK_MR) * AK_MR;
    const size_t upadded = (urows + AK_MR - 1) / AK_MR * AK_MR;
    const int depth = cin * 9, width = c1 - c0;
    const int k0 = cs / AK_KC * AK_KC, kc = width - k0 < AK_KC ? width - k0 : AK_KC;  // 8 | AK_KC: one block
    float *out = u + upadded * (size_t)k0 + (size_t)(p0 - obase) * kc + (size_t)(cs - k0) * AK_MR;
#pragma clang loop unroll(full)
    for (int part = 0; part < 3; part++) {
        v16 g[9];
        for (int j = 0; j < 9; j++) {
            __m512 x = _mm512_setzero_ps();
#pragma clang loop unroll(full)
            for (int cc = 0; cc < 8; cc++) {
                const int a = 6 * cc > 16 * part ? 6 * cc : 16 * part;
                const int b = 6 * cc + 6 < 16 * part + 16 ? 6 * cc + 6 : 16 * part + 16;
                if (a >= b) continue;
                const __mmask16 mask = (__mmask16)(((1u << (b - 16 * part)) - 1) & ~((1u << (a - 16 * part)) - 1));
                const int kk = (c0 + cs + cc) * 9 + j, bk = kk / AK_KC * AK_KC;
                const int bkc = depth - bk < AK_KC ? depth - bk : AK_KC;
                const float *src = w + padded * (size_t)bk + (size_t)p0 * bkc + (size_t)(kk - bk) * AK_MR;
                // Lane i is (channel (16·part + i) / 6, row (16·part + i) % 6) = src[16·part + i − 6·cc].
                x = ak_mask_loadu_ps(x, mask, src + 16 * part - 6 * cc);
            }
            memcpy(&g[j], &x, sizeof x);
        }
        transform_store16(g, out + 16 * part, plane);
    }
}

/// The same for bf16 weights [cout][cin][3][3] (a bf16 model's): lane (channel cc, row r) of each
/// j takes its value with a 32-bit gather at the bf16's own address (the bf16 in the low half,
/// widened by a shift, denormals read as signed zero as ak_widen_bf16 reads them). The gather
/// reads the 2 bytes after each value, so the caller keeps the tensor's last value off this path.
static AK_W4_512 void weights_bf16_avx512(const uint16_t *w, int cin, int c0, int c1, int p0, int cs,
                                          float *u, int obase, size_t urows, size_t plane) {
    const size_t upadded = (urows + AK_MR - 1) / AK_MR * AK_MR;
    const int depth = cin * 9, width = c1 - c0;
    const int k0 = cs / AK_KC * AK_KC, kc = width - k0 < AK_KC ? width - k0 : AK_KC;
    float *out = u + upadded * (size_t)k0 + (size_t)(p0 - obase) * kc + (size_t)(cs - k0) * AK_MR;
    const uint16_t *base = w + (size_t)p0 * depth + (size_t)(c0 + cs) * 9;
    const __m512i exponent = _mm512_set1_epi32(0x7f800000), sign = _mm512_set1_epi32((int)0x80000000u);
#pragma clang loop unroll(full)
    for (int part = 0; part < 3; part++) {
        int at[16];
        for (int i = 0; i < 16; i++) at[i] = ((16 * part + i) % 6) * depth + ((16 * part + i) / 6) * 9;
        const __m512i index = _mm512_loadu_si512(at);
        v16 g[9];
        for (int j = 0; j < 9; j++) {
            __m512i x = _mm512_slli_epi32(ak_gather_words(index, base + j), 16);
            x = _mm512_mask_and_epi32(x, ak_testn_epi32_mask(x, exponent), x, sign);
            __m512 f = _mm512_castsi512_ps(x);
            memcpy(&g[j], &f, sizeof f);
        }
        transform_store16(g, out + 16 * part, plane);
    }
}
#endif

static int weights_any(const void *w, int layout, int cout, int cin, int c0, int c1, int o0, int o1, float *u,
                       int obase, size_t urows, size_t plane) {
    const int width = c1 - c0;
    int fast_end = 0, pa = o0 / AK_MR * AK_MR, pb = pa;
#if defined(__x86_64__)
    if ((layout == AK_WEIGHTS_PACKED || layout == AK_WEIGHTS_BF16) && ak_isa_current() >= AK_ISA_AVX512) {
        // Full panels × whole groups of 8 channels here; the rest by the generic form below.
        fast_end = width / 8 * 8;
        while (pb + AK_MR <= o1 && pb + AK_MR <= cout) pb += AK_MR;
        // bf16's gathers read 2 bytes past each value: the group holding the tensor's last value
        // (last panel, last 8 channels) goes to the generic form.
        if (layout == AK_WEIGHTS_BF16 && pb == cout && c0 + fast_end == cin) fast_end -= 8;
        for (int p = pa; p < pb; p += AK_MR)
            for (int cs = 0; cs < fast_end; cs += 8) {
                if (layout == AK_WEIGHTS_PACKED) weights_packed_avx512(w, cout, cin, c0, c1, p, cs, u, obase, urows, plane);
                else weights_bf16_avx512(w, cin, c0, c1, p, cs, u, obase, urows, plane);
            }
    }
#endif
    int (*impl)(const void *, int, int, int, int, int, int, int, float *, int, size_t, size_t, int, int) =
        AK_W4_WIDE ? weights_avx2 : weights_base;
    if (pb > pa && fast_end < width) impl(w, layout, cout, cin, c0, c1, pa, pb, u, obase, urows, plane, fast_end, width);
    if (pb < o1) impl(w, layout, cout, cin, c0, c1, pb > pa ? pb : o0, o1, u, obase, urows, plane, 0, width);
    return 0;
}

int ak_winograd4_weights(const void *w, int layout, int cout, int cin, int c0, int c1, int o0, int o1, float *u) {
    return weights_any(w, layout, cout, cin, c0, c1, o0, o1, u, 0, (size_t)cout, ak_packed_a_floats(cout, c1 - c0));
}

_Static_assert(AK_W4_FUSED_KC <= AK_KC, "a fused block of transformed weights is one K-block");
_Static_assert(AK_KC % 8 == 0, "weights_packed_avx512's groups of 8 channels never straddle a K-block");

size_t ak_winograd4_packed_v_floats(int cin, int tiles) {
    if (cin <= 0 || tiles <= 0) return 0;
    const int nr = ak_nr();
    return (size_t)((tiles + nr - 1) / nr) * nr * (size_t)cin;
}

void ak_winograd4_pack_v(const float *v, long ldv, size_t vplane, int cin, int tiles, int x0, int x1, float *vpacked) {
    const int nr = ak_nr(), panels = (tiles + nr - 1) / nr;
    const size_t plane = ak_winograd4_packed_v_floats(cin, tiles);
    for (int xi = x0; xi < x1; xi++)
        for (int c0 = 0; c0 < cin; c0 += AK_W4_FUSED_KC) {
            int kc = cin - c0 < AK_W4_FUSED_KC ? cin - c0 : AK_W4_FUSED_KC;
            ak_pack_b(v + (size_t)xi * vplane, ldv, 0, c0, kc, 0, tiles, 0, panels,
                      vpacked + (size_t)xi * plane + (size_t)panels * nr * c0);
        }
}

int ak_winograd4_fused(const void *w, int layout, int cout, int cin, int o0, int o1,
                       const float *vpacked, int tiles, float *m, long ldm, size_t mplane, int accumulate) {
    if (o1 > cout) o1 = cout;
    if (o0 < 0 || o0 % AK_MR != 0 || o1 <= o0 || cin <= 0 || tiles <= 0) return 0;
    const int nr = ak_nr(), panels = (tiles + nr - 1) / nr;
    const size_t rows = (size_t)(o1 - o0 + AK_MR - 1) / AK_MR * AK_MR;
    // Planes a cache line more than a multiple of 4 KB apart would all fall in the same L1 sets
    // (the transform writes all 36 at once): one line of padding per plane spreads them.
    const size_t vplane = ak_winograd4_packed_v_floats(cin, tiles);
    float *u = ak_thread_scratch(14, 36 * (rows * AK_W4_FUSED_KC + 16));
    if (!u) return -1;
    for (int c0 = 0; c0 < cin; c0 += AK_W4_FUSED_KC) {
        const int kc = cin - c0 < AK_W4_FUSED_KC ? cin - c0 : AK_W4_FUSED_KC;
        // This block's 36 planes, each [rows × kc] packed (one K-block: kc ≤ AK_KC).
        const size_t uplane = rows * (size_t)kc + 16;
        weights_any(w, layout, cout, cin, c0, c0 + kc, o0, o1, u, o0, rows, uplane);
        for (int xi = 0; xi < 36; xi++)
            ak_macro_kernel(o1 - o0, tiles, kc, u + (size_t)xi * uplane,
                            vpacked + (size_t)xi * vplane + (size_t)panels * nr * c0,
                            m + (size_t)xi * mplane + (size_t)o0 * ldm, ldm, accumulate || c0 > 0,
                            c0 + kc >= cin, 1.0f, NULL, NULL);
    }
    return 0;
}

static AK_W4_AVX2 int input_avx2(const float *x, int cin, int h, int w, int pad_top, int pad_left, int ty0, int ty1,
                                 int tw, int c0, int c1, float *v, long ldv, long tile0, size_t plane) {
    return input_impl(x, cin, h, w, pad_top, pad_left, ty0, ty1, tw, c0, c1, v, ldv, tile0, plane);
}
static int input_base(const float *x, int cin, int h, int w, int pad_top, int pad_left, int ty0, int ty1,
                      int tw, int c0, int c1, float *v, long ldv, long tile0, size_t plane) {
    return input_impl(x, cin, h, w, pad_top, pad_left, ty0, ty1, tw, c0, c1, v, ldv, tile0, plane);
}
int ak_winograd4_input(const float *x, int cin, int h, int w, int pad_top, int pad_left,
                       int ty0, int ty1, int tw, int c0, int c1, float *v, long ldv, long tile0, size_t plane) {
    return AK_W4_WIDE ? input_avx2(x, cin, h, w, pad_top, pad_left, ty0, ty1, tw, c0, c1, v, ldv, tile0, plane)
                      : input_base(x, cin, h, w, pad_top, pad_left, ty0, ty1, tw, c0, c1, v, ldv, tile0, plane);
}

static AK_W4_AVX2 void output_avx2(const float *m, long ldm, long tile0, size_t plane, int ty0, int ty1, int tw,
                                   int o0, int o1, const float *bias, float *y, int hout, int wout) {
    output_impl(m, ldm, tile0, plane, ty0, ty1, tw, o0, o1, bias, y, hout, wout);
}
static void output_base(const float *m, long ldm, long tile0, size_t plane, int ty0, int ty1, int tw,
                        int o0, int o1, const float *bias, float *y, int hout, int wout) {
    output_impl(m, ldm, tile0, plane, ty0, ty1, tw, o0, o1, bias, y, hout, wout);
}
void ak_winograd4_output(const float *m, long ldm, long tile0, size_t plane, int ty0, int ty1, int tw,
                         int o0, int o1, const float *bias, float *y, int hout, int wout) {
    if (AK_W4_WIDE) output_avx2(m, ldm, tile0, plane, ty0, ty1, tw, o0, o1, bias, y, hout, wout);
    else output_base(m, ldm, tile0, plane, ty0, ty1, tw, o0, o1, bias, y, hout, wout);
}
