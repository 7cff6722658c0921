// AVX-512F micro-kernel, 6 rows × 32 columns: 12 zmm accumulators. Same chains as the AVX2 and
// scalar kernels (one lane per C element, k in order), so the same bits; on CPUs with two 512-bit
// FMA pipes (Sapphire Rapids) it doubles the AVX2 rate, on Zen 4 it saves instructions.

#if defined(__x86_64__)
#include <immintrin.h>
#include <time.h>
#include "MicroKernels.h"

#define AK_TARGET __attribute__((target("avx512f")))

AK_TARGET
void ak_ukr_avx512_6x32(int kc, const float *a, const float *b, float *c, long ldc, int accumulate) {
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
#define AK_STEP(k)                                                                          \
    do {                                                                                    \
        __m512 b0 = _mm512_load_ps(b + 32 * (k)), b1 = _mm512_load_ps(b + 32 * (k) + 16);   \
        __m512 av;                                                                          \
        av = _mm512_set1_ps(a[6 * (k) + 0]); c00 = _mm512_fmadd_ps(av, b0, c00); c01 = _mm512_fmadd_ps(av, b1, c01); \
        av = _mm512_set1_ps(a[6 * (k) + 1]); c10 = _mm512_fmadd_ps(av, b0, c10); c11 = _mm512_fmadd_ps(av, b1, c11); \
        av = _mm512_set1_ps(a[6 * (k) + 2]); c20 = _mm512_fmadd_ps(av, b0, c20); c21 = _mm512_fmadd_ps(av, b1, c21); \
        av = _mm512_set1_ps(a[6 * (k) + 3]); c30 = _mm512_fmadd_ps(av, b0, c30); c31 = _mm512_fmadd_ps(av, b1, c31); \
        av = _mm512_set1_ps(a[6 * (k) + 4]); c40 = _mm512_fmadd_ps(av, b0, c40); c41 = _mm512_fmadd_ps(av, b1, c41); \
        av = _mm512_set1_ps(a[6 * (k) + 5]); c50 = _mm512_fmadd_ps(av, b0, c50); c51 = _mm512_fmadd_ps(av, b1, c51); \
    } while (0)
    int k = 0;
    for (; k + 4 <= kc; k += 4) {
        _mm_prefetch((const char *)(b + 32 * 8), _MM_HINT_T0);
        _mm_prefetch((const char *)(b + 32 * 8 + 16), _MM_HINT_T0);
        AK_STEP(0); AK_STEP(1); AK_STEP(2); AK_STEP(3);
        a += 24; b += 128;
    }
    for (; k < kc; k++) {
        AK_STEP(0);
        a += 6; b += 32;
    }
#undef AK_STEP
    _mm512_storeu_ps(c + 0 * ldc, c00); _mm512_storeu_ps(c + 0 * ldc + 16, c01);
    _mm512_storeu_ps(c + 1 * ldc, c10); _mm512_storeu_ps(c + 1 * ldc + 16, c11);
    _mm512_storeu_ps(c + 2 * ldc, c20); _mm512_storeu_ps(c + 2 * ldc + 16, c21);
    _mm512_storeu_ps(c + 3 * ldc, c30); _mm512_storeu_ps(c + 3 * ldc + 16, c31);
    _mm512_storeu_ps(c + 4 * ldc, c40); _mm512_storeu_ps(c + 4 * ldc + 16, c41);
    _mm512_storeu_ps(c + 5 * ldc, c50); _mm512_storeu_ps(c + 5 * ldc + 16, c51);
}

/// Where the timing loop leaves a result, so that its chains are not dead code.
static volatile float ak_timing_sink;

#define AK_STEP_ONE(c) _mm512_fmadd_ps(x, y, (c))
/// 12 chains × n `vfmadd231ps` in registers (see MicroKernels.h).
AK_TARGET
double ak_time_fma512(long n) {
    static volatile float one = 1.0f, small = 0x1p-20f;  // opaque: no fold of fma(1, y, c) to an add
    __m512 x = _mm512_set1_ps(one), y = _mm512_set1_ps(small);
    AK_TIMING_LOOP(n, AK_STEP_ONE, ak_timing_sink);
}
#undef AK_STEP_ONE
#endif
