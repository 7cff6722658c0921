// AVX512_BF16 micro-kernel, 6 rows × 32 columns, one `vdpbf16ps` per 16 lanes and k pair: the
// instruction does the odd then the even FMA of each pair (see BF16.c), so every lane is the same
// chain the emulated layout feeds the fp32 kernels, at twice their rate.

#if defined(__x86_64__)
#include <immintrin.h>
#include <stdint.h>
#include <time.h>
#include "MicroKernels.h"

#define AK_TARGET __attribute__((target("avx512f,avx512bf16")))
/// Reinterprets 16 × 32 bits as 32 bf16 (a pair per lane).
#define AK_BH(v) ((__m512bh)(v))
/// And back: 32 bf16 as 512 integer bits.
#define AK_BI(v) ((__m512i)(v))

AK_TARGET
void ak_ukr_avx512bf16_6x32(int kp, const float *apack, const float *bpack, float *c, long ldc, int accumulate,
                            const ak_tile_epilogue *epi) {
    const int32_t *a = (const int32_t *)apack;
    const float *b = bpack;
    __m512 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
    if (accumulate) {
        c00 = _mm512_loadu_ps(c + 0 * ldc); c01 = _mm512_loadu_ps(c + 0 * ldc + 16);
        c10 = _mm512_loadu_ps(c + 1 * ldc); c11 = _mm512_loadu_ps(c + 1 * ldc + 16);
        c20 = _mm512_loadu_ps(c + 2 * ldc); c21 = _mm512_loadu_ps(c + 2 * ldc + 16);
        c30 = _mm512_loadu_ps(c + 3 * ldc); c31 = _mm512_loadu_ps(c + 3 * ldc + 16);
        c40 = _mm512_loadu_ps(c + 4 * ldc); c41 = _mm512_loadu_ps(c + 4 * ldc + 16);
        c50 = _mm512_loadu_ps(c + 5 * ldc); c51 = _mm512_loadu_ps(c + 5 * ldc + 16);
    } else {
        c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = _mm512_setzero_ps();
    }
#define AK_STEP(p)                                                                          \
    do {                                                                                    \
        __m512bh b0 = AK_BH(_mm512_load_si512((const void *)(b + 32 * (p))));              \
        __m512bh b1 = AK_BH(_mm512_load_si512((const void *)(b + 32 * (p) + 16)));         \
        __m512bh av;                                                                        \
        av = AK_BH(_mm512_set1_epi32(a[6 * (p) + 0])); c00 = _mm512_dpbf16_ps(c00, av, b0); c01 = _mm512_dpbf16_ps(c01, av, b1); \
        av = AK_BH(_mm512_set1_epi32(a[6 * (p) + 1])); c10 = _mm512_dpbf16_ps(c10, av, b0); c11 = _mm512_dpbf16_ps(c11, av, b1); \
        av = AK_BH(_mm512_set1_epi32(a[6 * (p) + 2])); c20 = _mm512_dpbf16_ps(c20, av, b0); c21 = _mm512_dpbf16_ps(c21, av, b1); \
        av = AK_BH(_mm512_set1_epi32(a[6 * (p) + 3])); c30 = _mm512_dpbf16_ps(c30, av, b0); c31 = _mm512_dpbf16_ps(c31, av, b1); \
        av = AK_BH(_mm512_set1_epi32(a[6 * (p) + 4])); c40 = _mm512_dpbf16_ps(c40, av, b0); c41 = _mm512_dpbf16_ps(c41, av, b1); \
        av = AK_BH(_mm512_set1_epi32(a[6 * (p) + 5])); c50 = _mm512_dpbf16_ps(c50, av, b0); c51 = _mm512_dpbf16_ps(c51, av, b1); \
    } while (0)
    int p = 0;
    for (; p + 4 <= kp; p += 4) {
        _mm_prefetch((const char *)(b + 32 * 8), _MM_HINT_T0);
        _mm_prefetch((const char *)(b + 32 * 8 + 16), _MM_HINT_T0);
        AK_STEP(0); AK_STEP(1); AK_STEP(2); AK_STEP(3);
        a += 24; b += 128;
    }
    for (; p < kp; p++) {
        AK_STEP(0);
        a += 6; b += 32;
    }
#undef AK_STEP
    if (epi) {
        // The finished chains' epilogue in registers, in ak_epilogue_tile's order: ·alpha, +row
        // bias, +column bias, each its own rounding.
        if (epi->alpha != 1.0f) {
            __m512 al = _mm512_set1_ps(epi->alpha);
            c00 = _mm512_mul_ps(c00, al); c01 = _mm512_mul_ps(c01, al); c10 = _mm512_mul_ps(c10, al); c11 = _mm512_mul_ps(c11, al);
            c20 = _mm512_mul_ps(c20, al); c21 = _mm512_mul_ps(c21, al); c30 = _mm512_mul_ps(c30, al); c31 = _mm512_mul_ps(c31, al);
            c40 = _mm512_mul_ps(c40, al); c41 = _mm512_mul_ps(c41, al); c50 = _mm512_mul_ps(c50, al); c51 = _mm512_mul_ps(c51, al);
        }
        if (epi->bias_row) {
            const float *r = epi->bias_row;
            __m512 v;
            v = _mm512_set1_ps(r[0]); c00 = _mm512_add_ps(c00, v); c01 = _mm512_add_ps(c01, v);
            v = _mm512_set1_ps(r[1]); c10 = _mm512_add_ps(c10, v); c11 = _mm512_add_ps(c11, v);
            v = _mm512_set1_ps(r[2]); c20 = _mm512_add_ps(c20, v); c21 = _mm512_add_ps(c21, v);
            v = _mm512_set1_ps(r[3]); c30 = _mm512_add_ps(c30, v); c31 = _mm512_add_ps(c31, v);
            v = _mm512_set1_ps(r[4]); c40 = _mm512_add_ps(c40, v); c41 = _mm512_add_ps(c41, v);
            v = _mm512_set1_ps(r[5]); c50 = _mm512_add_ps(c50, v); c51 = _mm512_add_ps(c51, v);
        }
        if (epi->bias_col) {
            __m512 b0 = _mm512_loadu_ps(epi->bias_col), b1 = _mm512_loadu_ps(epi->bias_col + 16);
            c00 = _mm512_add_ps(c00, b0); c01 = _mm512_add_ps(c01, b1); c10 = _mm512_add_ps(c10, b0); c11 = _mm512_add_ps(c11, b1);
            c20 = _mm512_add_ps(c20, b0); c21 = _mm512_add_ps(c21, b1); c30 = _mm512_add_ps(c30, b0); c31 = _mm512_add_ps(c31, b1);
            c40 = _mm512_add_ps(c40, b0); c41 = _mm512_add_ps(c41, b1); c50 = _mm512_add_ps(c50, b0); c51 = _mm512_add_ps(c51, b1);
        }
    }
    _mm512_storeu_ps(c + 0 * ldc, c00); _mm512_storeu_ps(c + 0 * ldc + 16, c01);
    _mm512_storeu_ps(c + 1 * ldc, c10); _mm512_storeu_ps(c + 1 * ldc + 16, c11);
    _mm512_storeu_ps(c + 2 * ldc, c20); _mm512_storeu_ps(c + 2 * ldc + 16, c21);
    _mm512_storeu_ps(c + 3 * ldc, c30); _mm512_storeu_ps(c + 3 * ldc + 16, c31);
    _mm512_storeu_ps(c + 4 * ldc, c40); _mm512_storeu_ps(c + 4 * ldc + 16, c41);
    _mm512_storeu_ps(c + 5 * ldc, c50); _mm512_storeu_ps(c + 5 * ldc + 16, c51);
}

/// bf16(src[i]·scale) by `vcvtne2ps2bf16`, the product rounded to fp32 first, 32 at a time;
/// returns how many it did (a multiple of 32). The SDM's rounding is ak_bf16_from_float's
/// (nearest even, NaN quieted, denormals to signed zero, MXCSR ignored), so this is the AVX2
/// rounding at one instruction per 32 values; the tests check the instruction against the scalar
/// rule where the CPU has it.
AK_TARGET
long ak_round_row_bf16_native(const float *src, long n, float scale, uint16_t *dst) {
    long i = 0;
    __m512 s = _mm512_set1_ps(scale);
    for (; i + 32 <= n; i += 32) {
        __m512bh r = _mm512_cvtne2ps_pbh(_mm512_mul_ps(_mm512_loadu_ps(src + i + 16), s),
                                         _mm512_mul_ps(_mm512_loadu_ps(src + i), s));
        _mm512_storeu_si512((void *)(dst + i), AK_BI(r));
    }
    return i;
}

AK_TARGET
long ak_dpbf16_hardware(const uint32_t *a, const uint32_t *b, const float *acc, long n, float *out) {
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 r = _mm512_dpbf16_ps(_mm512_loadu_ps(acc + i), AK_BH(_mm512_loadu_si512(a + i)),
                                    AK_BH(_mm512_loadu_si512(b + i)));
        _mm512_storeu_ps(out + i, r);
    }
    return i;
}

/// Where the timing loop leaves a result, so that its chains are not dead code.
static volatile float ak_timing_sink;

#define AK_STEP_ONE(c) _mm512_dpbf16_ps((c), x, x)
/// 12 chains × n `vdpbf16ps` in registers (see MicroKernels.h).
AK_TARGET
double ak_time_vdpbf16ps(long n) {
    __m512bh x = AK_BH(_mm512_set1_epi32(0x3f803f80));
    AK_TIMING_LOOP(n, AK_STEP_ONE, ak_timing_sink);
}
#undef AK_STEP_ONE
#endif
