// Softmax of one attention score row, the same bits on every x86 CPU: the exponential is one
// polynomial (FastExp.h) evaluated per element, and the sum always uses eight partial sums (element
// j goes to partial j mod 8, in order) combined by one fixed tree. The AVX2 path runs this as eight
// lanes; the scalar path emulates the lanes. (It was 14% of a UNet step as Swift SIMD code whose
// min/max calls were not inlined.) ak_attention_rows splits it in two — the exponentials with the
// score scale folded in, then the normalisation slice by slice just before each slice is packed —
// so that the score block is swept once instead of three times; ak_softmax_row is the two joined.

#include <math.h>
#include <string.h>
#include "AtelierKernelsC.h"
#include "FastExp.h"

static inline float sum8(const float s[8]) {
    return ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]));
}

/// Exponentials of one row: row[j] = exp(scale·row[j] − max) for j < valid (the max over the
/// scaled entries), 0 after; returns 1 / their sum (eight partial sums, one fixed tree). The scale
/// is applied here, in registers, rather than as a separate pass over the stored scores (the GEMM's
/// alpha): the same single rounding, so the same bits, one sweep of the score block fewer.
static float softmax_exp_scalar(float *row, int cols, int valid, float scale) {
    float mx = -INFINITY;
    for (int j = 0; j < valid; j++) {
        float x = row[j] * scale;
        mx = x > mx ? x : mx;
    }
    float part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int j = 0; j < valid; j++) {
        float e = exp_scalar(row[j] * scale - mx);
        row[j] = e;
        part[j & 7] = part[j & 7] + e;
    }
    for (int j = valid; j < cols; j++) row[j] = 0.0f;
    return 1.0f / sum8(part);
}

static void scale_scalar(float *x, int n, float s) {
    for (int j = 0; j < n; j++) x[j] = x[j] * s;
}

#if defined(__x86_64__)
#include <immintrin.h>
__attribute__((target("avx2,fma")))
static float softmax_exp_avx2(float *row, int cols, int valid, float scale) {
    float mx = -INFINITY;
    __m256 s8 = _mm256_set1_ps(scale);
    int j = 0;
    if (valid >= 8) {
        __m256 m = _mm256_mul_ps(_mm256_loadu_ps(row), s8);
        for (j = 8; j + 8 <= valid; j += 8) m = _mm256_max_ps(m, _mm256_mul_ps(_mm256_loadu_ps(row + j), s8));
        float t[8];
        _mm256_storeu_ps(t, m);
        for (int i = 0; i < 8; i++) mx = t[i] > mx ? t[i] : mx;
    }
    for (; j < valid; j++) {
        float x = row[j] * scale;
        mx = x > mx ? x : mx;
    }
    __m256 m8 = _mm256_set1_ps(mx), acc = _mm256_setzero_ps();
    for (j = 0; j + 8 <= valid; j += 8) {
        __m256 e = exp_avx2(_mm256_sub_ps(_mm256_mul_ps(_mm256_loadu_ps(row + j), s8), m8));
        _mm256_storeu_ps(row + j, e);
        acc = _mm256_add_ps(acc, e);
    }
    float part[8];
    _mm256_storeu_ps(part, acc);
    for (; j < valid; j++) {  // the tail continues each lane's partial sum, as the scalar path does
        float e = exp_scalar(row[j] * scale - mx);
        row[j] = e;
        part[j & 7] = part[j & 7] + e;
    }
    for (j = valid; j < cols; j++) row[j] = 0.0f;
    return 1.0f / sum8(part);
}

__attribute__((target("avx2,fma")))
static void scale_avx2(float *x, int n, float s) {
    __m256 s8 = _mm256_set1_ps(s);
    int j = 0;
    for (; j + 8 <= n; j += 8) _mm256_storeu_ps(x + j, _mm256_mul_ps(_mm256_loadu_ps(x + j), s8));
    for (; j < n; j++) x[j] = x[j] * s;
}
#endif

float ak_softmax_exp_row(float *row, int cols, int valid, float scale) {
    if (valid > cols) valid = cols;
    if (valid <= 0) {
        for (int j = 0; j < cols; j++) row[j] = 0.0f;
        return 0.0f;
    }
#if defined(__x86_64__)
    if (ak_isa_current() != AK_ISA_SCALAR) return softmax_exp_avx2(row, cols, valid, scale);
#endif
    return softmax_exp_scalar(row, cols, valid, scale);
}

void ak_scale_floats(float *x, int n, float s) {
    if (n <= 0) return;
#if defined(__x86_64__)
    if (ak_isa_current() != AK_ISA_SCALAR) {
        scale_avx2(x, n, s);
        return;
    }
#endif
    scale_scalar(x, n, s);
}

void ak_softmax_row(float *row, int cols, int valid) {
    if (valid > cols) valid = cols;
    float inv = ak_softmax_exp_row(row, cols, valid, 1.0f);
    ak_scale_floats(row, valid, inv);
}
