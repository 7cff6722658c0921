// Internal: the one exp polynomial (Cephes expf: range reduction by ln 2 in two parts, degree-6
// polynomial, exponent bits; within 2 ulp of libm), as scalar and AVX2 code that give the same bits:
// the same operations in the same order, the multiply-adds fused on both sides (fmaf is one
// rounding, like vfmadd), everything else separate (the target is compiled with -ffp-contract=off).
// Fused, the polynomial takes 16 vector operations instead of 27 (softmax's exponentials were 5 %
// of a UNet pass). Every transcendental of the kernels goes through it, so no result depends on
// the system's libm.

#ifndef ATELIER_FAST_EXP_H
#define ATELIER_FAST_EXP_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#define AK_EXP_LO (-87.3f)
#define AK_EXP_HI 88.3f

static inline float exp_scalar(float x) {
    // Clamped as max(lo, x) then min(hi, ·) in the vector code (a NaN stays NaN on both paths).
    float xc = x < AK_EXP_LO ? AK_EXP_LO : (x > AK_EXP_HI ? AK_EXP_HI : x);
    const float magic = 12582912.0f;
    float t = fmaf(xc, 1.44269504f, magic);
    float n = t - magic;
    float r = fmaf(n, -0.693359375f, xc);
    r = fmaf(n, 2.12194440e-4f, r);
    float p = 1.98756915e-4f;
    p = fmaf(p, r, 1.39819995e-3f);
    p = fmaf(p, r, 8.3334519e-3f);
    p = fmaf(p, r, 4.1665796e-2f);
    p = fmaf(p, r, 1.66666555e-1f);
    p = fmaf(p, r, 5.0000001e-1f);
    float y = fmaf(p, r * r, r) + 1.0f;
    uint32_t tb;
    memcpy(&tb, &t, 4);
    uint32_t bits = (tb + (127u - 0x4B400000u)) << 23;
    float scale;
    memcpy(&scale, &bits, 4);
    return x < AK_EXP_LO ? 0.0f : y * scale;
}

#if defined(__x86_64__)
#include <immintrin.h>


/// The polynomial on W-bit vectors (W = 256 or 512): `y` times the exponent `bits` of x clamped
/// to [lo, hi], as exp_scalar's operations. One body for both widths, so that they cannot drift
/// apart; each function then zeroes the lanes below lo its own way.
#define AK_EXP_VECTOR(W, x, lo, hi, result)                                                             \
    do {                                                                                              \
        /* max/min return their second operand when one is NaN: x stays NaN, as in the scalar path. */ \
        __m##W xc = _mm##W##_min_ps(hi, _mm##W##_max_ps(lo, x));                                      \
        __m##W magic = _mm##W##_set1_ps(12582912.0f);                                                 \
        __m##W t = _mm##W##_fmadd_ps(xc, _mm##W##_set1_ps(1.44269504f), magic);                       \
        __m##W n = _mm##W##_sub_ps(t, magic);                                                         \
        __m##W r = _mm##W##_fmadd_ps(n, _mm##W##_set1_ps(-0.693359375f), xc);                         \
        r = _mm##W##_fmadd_ps(n, _mm##W##_set1_ps(2.12194440e-4f), r);                                \
        __m##W p = _mm##W##_set1_ps(1.98756915e-4f);                                                  \
        p = _mm##W##_fmadd_ps(p, r, _mm##W##_set1_ps(1.39819995e-3f));                                \
        p = _mm##W##_fmadd_ps(p, r, _mm##W##_set1_ps(8.3334519e-3f));                                 \
        p = _mm##W##_fmadd_ps(p, r, _mm##W##_set1_ps(4.1665796e-2f));                                 \
        p = _mm##W##_fmadd_ps(p, r, _mm##W##_set1_ps(1.66666555e-1f));                                \
        p = _mm##W##_fmadd_ps(p, r, _mm##W##_set1_ps(5.0000001e-1f));                                 \
        __m##W y = _mm##W##_add_ps(_mm##W##_fmadd_ps(p, _mm##W##_mul_ps(r, r), r), _mm##W##_set1_ps(1.0f)); \
        __m##W##i bits = _mm##W##_slli_epi32(_mm##W##_add_epi32(_mm##W##_castps_si##W(t),               \
                                                                _mm##W##_set1_epi32((int)(127u - 0x4B400000u))), 23); \
        result = _mm##W##_mul_ps(y, _mm##W##_castsi##W##_ps(bits));                                   \
    } while (0)

__attribute__((target("avx2,fma")))
static inline __m256 exp_avx2(__m256 x) {
    __m256 lo = _mm256_set1_ps(AK_EXP_LO), hi = _mm256_set1_ps(AK_EXP_HI), v;
    AK_EXP_VECTOR(256, x, lo, hi, v);
    return _mm256_blendv_ps(v, _mm256_setzero_ps(), _mm256_cmp_ps(x, lo, _CMP_LT_OQ));
}

#endif

#endif
