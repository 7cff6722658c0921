// GELU (exact erf form, as SD2 uses: 0.5·x·(1 + erf(x/√2))) and GEGLU rows, the same bits on
// every x86 CPU. erf is Abramowitz & Stegun 7.1.26 (absolute error ≤ 1.5e-7, odd-symmetric) with
// the shared exp polynomial: GELU's relative error stays ~1e-7, and no result depends on libm's
// erff (which was 3% of a UNet step, scalar, and may differ between systems).

#include <math.h>
#include "AtelierKernelsC.h"
#include "FastExp.h"

static inline float gelu_scalar(float v) {
    float x = v * 0.70710678f;
    float ax = x < 0 ? -x : x;
    float t = 1.0f / (1.0f + 0.3275911f * ax);
    float p = 1.061405429f;
    p = p * t + -1.453152027f;
    p = p * t + 1.421413741f;
    p = p * t + -0.284496736f;
    p = p * t + 0.254829592f;
    p = p * t;
    float e = 1.0f - p * exp_scalar(-(ax * ax));
    float erf = x < 0 ? -e : e;
    return 0.5f * v * (1.0f + erf);
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma")))
static inline __m256 gelu_avx2(__m256 v) {
    __m256 x = _mm256_mul_ps(v, _mm256_set1_ps(0.70710678f));
    __m256 sign = _mm256_and_ps(x, _mm256_set1_ps(-0.0f));
    __m256 ax = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
    __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_add_ps(_mm256_set1_ps(1.0f), _mm256_mul_ps(_mm256_set1_ps(0.3275911f), ax)));
    __m256 p = _mm256_set1_ps(1.061405429f);
    p = _mm256_add_ps(_mm256_mul_ps(p, t), _mm256_set1_ps(-1.453152027f));
    p = _mm256_add_ps(_mm256_mul_ps(p, t), _mm256_set1_ps(1.421413741f));
    p = _mm256_add_ps(_mm256_mul_ps(p, t), _mm256_set1_ps(-0.284496736f));
    p = _mm256_add_ps(_mm256_mul_ps(p, t), _mm256_set1_ps(0.254829592f));
    p = _mm256_mul_ps(p, t);
    __m256 negsq = _mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(ax, ax));
    __m256 e = _mm256_sub_ps(_mm256_set1_ps(1.0f), _mm256_mul_ps(p, exp_avx2(negsq)));
    __m256 erf = _mm256_or_ps(e, sign);  // e ≥ 0, so setting the sign bit negates it
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), v), _mm256_add_ps(_mm256_set1_ps(1.0f), erf));
}

__attribute__((target("avx2,fma")))
static void gelu_mul_avx2(const float *gate, const float *value, float *out, long n) {
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 g = gelu_avx2(_mm256_loadu_ps(gate + i));
        _mm256_storeu_ps(out + i, value ? _mm256_mul_ps(_mm256_loadu_ps(value + i), g) : g);
    }
    for (; i < n; i++) out[i] = value ? value[i] * gelu_scalar(gate[i]) : gelu_scalar(gate[i]);
}
#endif

/// out[i] = (value ? value[i] · : ) GELU(gate[i]).
static void gelu_mul(const float *gate, const float *value, float *out, long n) {
#if defined(__x86_64__)
    if (ak_isa_current() != AK_ISA_SCALAR) {
        gelu_mul_avx2(gate, value, out, n);
        return;
    }
#endif
    for (long i = 0; i < n; i++) out[i] = value ? value[i] * gelu_scalar(gate[i]) : gelu_scalar(gate[i]);
}

void ak_gelu(const float *x, float *y, long n) { gelu_mul(x, NULL, y, n); }

void ak_geglu_rows(const float *x, float *y, long rows, long d) {
    for (long r = 0; r < rows; r++) gelu_mul(x + r * 2 * d + d, x + r * 2 * d, y + r * d, d);
}
