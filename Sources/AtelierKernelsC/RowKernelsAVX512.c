// AVX-512F forms of row loops whose AVX2 forms are in other files: 16 lanes at a time, the same
// operations per element in the same order, so the same bits (the tests compare every family).
// Kept in one file so that scripts/avx512-emulation-check.sh can run them with the intrinsics
// emulated by SIMDe, as it runs the AVX-512 micro-kernels.

#if defined(__x86_64__)
#include <immintrin.h>
#include <stdint.h>
#include "MicroKernels.h"
#include "FastExp.h"

#define AK_TARGET __attribute__((target("avx512f")))

/// PackingBF16.c's widening of stored bf16 into the emulated layout, 32 values at a time: each
/// pair's 32 bits hold k even (low half) and k odd (high half), so the odd value widened is the
/// dword with its low half cleared and the even one is the dword shifted left by 16; the two are
/// interleaved odd first, and a zero exponent (a denormal) becomes a signed zero. Returns how many
/// values it did (a multiple of 32 no greater than kc rounded down to even).
AK_TARGET
int ak_widen_swapped_row_avx512(const uint16_t *src, int kc, float *dst) {
    const __m512i inf = _mm512_set1_epi32(0x7f800000), sign = _mm512_set1_epi32((int)0x80000000u);
    const __m512i high = _mm512_set1_epi32((int)0xffff0000u), zero = _mm512_setzero_si512();
    const __m512i first = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i second = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    int q = 0;
    for (; q + 32 <= (kc & ~1); q += 32) {
        __m512i pairs = _mm512_loadu_si512((const void *)(src + q));
        __m512i odd = _mm512_and_si512(pairs, high), even = _mm512_slli_epi32(pairs, 16);
        __m512i w0 = _mm512_permutex2var_epi32(odd, first, even), w1 = _mm512_permutex2var_epi32(odd, second, even);
        w0 = _mm512_mask_and_epi32(w0, _mm512_cmpeq_epi32_mask(_mm512_and_si512(w0, inf), zero), w0, sign);
        w1 = _mm512_mask_and_epi32(w1, _mm512_cmpeq_epi32_mask(_mm512_and_si512(w1, inf), zero), w1, sign);
        _mm512_storeu_si512((void *)(dst + q), w0);
        _mm512_storeu_si512((void *)(dst + q + 16), w1);
    }
    return q;
}

/// FastExp.h's exp_avx2 on 16 lanes: the same polynomial (AK_EXP_VECTOR), the same lanes zeroed.
AK_TARGET static inline __m512 exp_avx512(__m512 x) {
    __m512 lo = _mm512_set1_ps(AK_EXP_LO), hi = _mm512_set1_ps(AK_EXP_HI), v;
    AK_EXP_VECTOR(512, x, lo, hi, v);
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ), v, _mm512_setzero_ps());
}

AK_TARGET
int ak_softmax_exp_avx512(float *row, int valid, float scale, float max_scaled, float partial[8]) {
    __m512 m16 = _mm512_set1_ps(max_scaled), s16 = _mm512_set1_ps(scale);
    __m256 acc = _mm256_loadu_ps(partial);
    int j = 0;
    for (; j + 16 <= valid; j += 16) {
        __m512 e = exp_avx512(_mm512_sub_ps(_mm512_mul_ps(_mm512_loadu_ps(row + j), s16), m16));
        _mm512_storeu_ps(row + j, e);
        // Elements j…j+7, then j+8…j+15: the AVX2 loop's two additions, in its order.
        acc = _mm256_add_ps(acc, _mm512_castps512_ps256(e));
        acc = _mm256_add_ps(acc, _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1)));
    }
    _mm256_storeu_ps(partial, acc);
    return j;
}

/// The largest of row[0, n), 64 at a time in four accumulators (the AVX2 pass keeps one chain of
/// dependent maxima: 85 % of its time there). For rows without a NaN the maximum is one value
/// whatever the order of the comparisons, except that +0 and −0 compare equal and the order picks
/// the sign: so it returns 1 with *out set only when it saw no NaN and the maximum is not a zero,
/// and 0 otherwise, and the caller takes the ordered pass, whose result is the definition. (A
/// zero's sign does not reach the exponentials today; declining keeps that from mattering.) A
/// softmax row of 4096 takes 0.81–0.87 × its former time. Needs n ≥ 64.
AK_TARGET
int ak_row_max_avx512(const float *row, int n, float *out) {
    if (n < 64) return 0;
    __m512 m0 = _mm512_loadu_ps(row), m1 = _mm512_loadu_ps(row + 16);
    __m512 m2 = _mm512_loadu_ps(row + 32), m3 = _mm512_loadu_ps(row + 48);
    __mmask16 nan = _mm512_cmp_ps_mask(m0, m0, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(m1, m1, _CMP_UNORD_Q) |
                    _mm512_cmp_ps_mask(m2, m2, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(m3, m3, _CMP_UNORD_Q);
    int j = 64;
    for (; j + 64 <= n; j += 64) {
        __m512 x0 = _mm512_loadu_ps(row + j), x1 = _mm512_loadu_ps(row + j + 16);
        __m512 x2 = _mm512_loadu_ps(row + j + 32), x3 = _mm512_loadu_ps(row + j + 48);
        nan |= _mm512_cmp_ps_mask(x0, x0, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(x1, x1, _CMP_UNORD_Q) |
               _mm512_cmp_ps_mask(x2, x2, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(x3, x3, _CMP_UNORD_Q);
        m0 = _mm512_max_ps(m0, x0); m1 = _mm512_max_ps(m1, x1);
        m2 = _mm512_max_ps(m2, x2); m3 = _mm512_max_ps(m3, x3);
    }
    if (nan) return 0;
    float lanes[16];
    _mm512_storeu_ps(lanes, _mm512_max_ps(_mm512_max_ps(m0, m1), _mm512_max_ps(m2, m3)));
    float mx = lanes[0];
    for (int i = 1; i < 16; i++) mx = lanes[i] > mx ? lanes[i] : mx;
    for (; j < n; j++) {
        if (row[j] != row[j]) return 0;
        mx = row[j] > mx ? row[j] : mx;
    }
    if (mx == 0.0f) return 0;
    *out = mx;
    return 1;
}

AK_TARGET
int ak_scale_row_avx512(float *row, int n, float factor) {
    __m512 f = _mm512_set1_ps(factor);
    int j = 0;
    for (; j + 16 <= n; j += 16) _mm512_storeu_ps(row + j, _mm512_mul_ps(_mm512_loadu_ps(row + j), f));
    return j;
}
#endif
