// Mean and sum of squared deviations of a float array, in double, two passes — GroupNorm's and
// LayerNorm's statistics. Eight double partial sums (element i goes to partial i mod 8, in order),
// combined by one fixed tree, on every path: as fast as the memory on AVX2 where the sequential
// double sum was latency-bound (a VAE decode normalises 33 M-float maps), and the same bits on
// every machine.

#include "AtelierKernelsC.h"

static inline double tree8(const double p[8]) {
    return ((p[0] + p[4]) + (p[2] + p[6])) + ((p[1] + p[5]) + (p[3] + p[7]));
}

static void moments_scalar(const float *x, long n, double *mean, double *sq) {
    double p[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (long i = 0; i < n; i++) p[i & 7] = p[i & 7] + (double)x[i];
    double m = tree8(p) / (double)n;
    double q[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (long i = 0; i < n; i++) {
        double d = (double)x[i] - m;
        q[i & 7] = q[i & 7] + d * d;
    }
    *mean = m;
    *sq = tree8(q);
}

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx2,fma")))
static void moments_avx2(const float *x, long n, double *mean, double *sq) {
    // Lanes 0–3 of lo hold partials 0–3, lanes of hi partials 4–7: element i → partial i mod 8.
    __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
        hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
    }
    double p[8];
    _mm256_storeu_pd(p, lo);
    _mm256_storeu_pd(p + 4, hi);
    for (; i < n; i++) p[i & 7] = p[i & 7] + (double)x[i];
    double m = tree8(p) / (double)n;
    __m256d mm = _mm256_set1_pd(m);
    lo = _mm256_setzero_pd();
    hi = _mm256_setzero_pd();
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256d a = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), mm);
        __m256d b = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)), mm);
        lo = _mm256_add_pd(lo, _mm256_mul_pd(a, a));  // separate multiply and add, as the scalar path
        hi = _mm256_add_pd(hi, _mm256_mul_pd(b, b));
    }
    double q[8];
    _mm256_storeu_pd(q, lo);
    _mm256_storeu_pd(q + 4, hi);
    for (; i < n; i++) {
        double d = (double)x[i] - m;
        q[i & 7] = q[i & 7] + d * d;
    }
    *mean = m;
    *sq = tree8(q);
}
#endif

void ak_moments(const float *x, long n, double *mean, double *sum_sq_dev) {
    if (n <= 0) {
        *mean = 0;
        *sum_sq_dev = 0;
        return;
    }
#if defined(__x86_64__)
    if (ak_isa_current() != AK_ISA_SCALAR) {
        moments_avx2(x, n, mean, sum_sq_dev);
        return;
    }
#endif
    moments_scalar(x, n, mean, sum_sq_dev);
}
