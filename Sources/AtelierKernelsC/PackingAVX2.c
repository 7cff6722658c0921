// AVX2 helpers of the packing: transposing a stored [columns × k] block (a linear layer's
// weight, attention keys) into B's [k × NR] panel order with 8×8 in-register transposes, 3×
// faster than the scalar loop. Packing only moves values, so it cannot change any result.

#if defined(__x86_64__)
#include <immintrin.h>
#include "MicroKernels.h"

/// In-register transpose of 8 rows of 8: o[t] holds element t of every row.
__attribute__((target("avx2,fma")))
static inline void transpose8(__m256 r0, __m256 r1, __m256 r2, __m256 r3, __m256 r4, __m256 r5,
                              __m256 r6, __m256 r7, __m256 o[8]) {
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    o[0] = _mm256_permute2f128_ps(u0, u4, 0x20); o[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    o[2] = _mm256_permute2f128_ps(u2, u6, 0x20); o[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    o[4] = _mm256_permute2f128_ps(u0, u4, 0x31); o[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    o[6] = _mm256_permute2f128_ps(u2, u6, 0x31); o[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

__attribute__((target("avx2,fma")))
void ak_pack_b_transposed_avx2(const float *src, long ld, int kc, int nr, float *dst) {
    int kk = 0;
    for (; kk + 8 <= kc; kk += 8) {
        for (int jb = 0; jb < nr; jb += 8) {
            const float *s = src + (size_t)jb * ld + kk;
            __m256 r0 = _mm256_loadu_ps(s), r1 = _mm256_loadu_ps(s + ld), r2 = _mm256_loadu_ps(s + 2 * ld),
                   r3 = _mm256_loadu_ps(s + 3 * ld), r4 = _mm256_loadu_ps(s + 4 * ld), r5 = _mm256_loadu_ps(s + 5 * ld),
                   r6 = _mm256_loadu_ps(s + 6 * ld), r7 = _mm256_loadu_ps(s + 7 * ld);
            __m256 o[8];
            transpose8(r0, r1, r2, r3, r4, r5, r6, r7, o);
            float *d = dst + (size_t)kk * nr + jb;
            for (int t = 0; t < 8; t++) _mm256_storeu_ps(d + t * nr, o[t]);
        }
    }
    for (; kk < kc; kk++)
        for (int j = 0; j < nr; j++) dst[(size_t)kk * nr + j] = src[(size_t)j * ld + kk];
}

/// Packs one full A panel: 6 stored rows (row stride ld) × kc into [kc × 6], 8 k at a time by an
/// in-register 8×8 transpose (two rows unused); each k's 6 values are stored as 4 + 2.
__attribute__((target("avx2,fma")))
void ak_pack_a_rows6_avx2(const float *src, long ld, int kc, float *dst) {
    int kk = 0;
    __m256 z = _mm256_setzero_ps();
    for (; kk + 8 <= kc; kk += 8) {
        const float *s = src + kk;
        __m256 r0 = _mm256_loadu_ps(s), r1 = _mm256_loadu_ps(s + ld), r2 = _mm256_loadu_ps(s + 2 * ld),
               r3 = _mm256_loadu_ps(s + 3 * ld), r4 = _mm256_loadu_ps(s + 4 * ld), r5 = _mm256_loadu_ps(s + 5 * ld);
        __m256 o[8];
        transpose8(r0, r1, r2, r3, r4, r5, z, z, o);
        float *d = dst + (size_t)kk * 6;
        for (int t = 0; t < 8; t++) {
            _mm_storeu_ps(d + 6 * t, _mm256_castps256_ps128(o[t]));
            _mm_storel_pi((__m64 *)(d + 6 * t + 4), _mm256_extractf128_ps(o[t], 1));
        }
    }
    for (; kk < kc; kk++)
        for (int r = 0; r < 6; r++) dst[(size_t)kk * 6 + r] = src[(size_t)r * ld + kk];
}
#endif
