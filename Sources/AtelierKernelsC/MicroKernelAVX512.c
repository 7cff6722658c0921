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
#define AK_FM(c) _mm512_fmadd_ps(x, y, (c))

/// Where the timing loops leave a result, so that their chains are not dead code.
static volatile float ak_timing_sink;

/// 12 chains × n `vfmadd231ps` in registers (see MicroKernels.h); the sums are stored so that the
/// chains are not dead code.
AK_TARGET
double ak_time_fma512(long n) {
    __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
    __m512 c6 = c0, c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0;
    static volatile float one = 1.0f, small = 0x1p-20f;  // opaque: no fold of fma(1, y, c) to an add
    __m512 x = _mm512_set1_ps(one), y = _mm512_set1_ps(small);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < n; i++) {
        c0 = AK_FM(c0); c1 = AK_FM(c1); c2 = AK_FM(c2); c3 = AK_FM(c3); c4 = AK_FM(c4); c5 = AK_FM(c5);
        c6 = AK_FM(c6); c7 = AK_FM(c7); c8 = AK_FM(c8); c9 = AK_FM(c9); c10 = AK_FM(c10); c11 = AK_FM(c11);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    float lanes[16];
    _mm512_storeu_ps(lanes, _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3)),
                                          _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c4, c5), _mm512_add_ps(c6, c7)),
                                                        _mm512_add_ps(_mm512_add_ps(c8, c9), _mm512_add_ps(c10, c11)))));
    ak_timing_sink = lanes[0];
    return (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
}
#undef AK_FM
#endif
