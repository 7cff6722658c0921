// Softmax of one attention score row, the same bits on every x86 CPU: the exponential is one
// polynomial (Cephes expf, separate multiplies and adds, no fused operations) evaluated per element,
// and the sum always uses eight partial sums (element j goes to partial j mod 8, in order) combined
// by one fixed tree. The AVX2 path runs this as eight lanes; the scalar path emulates the lanes.
// (It was 14% of a UNet step as Swift SIMD code whose min/max calls were not inlined.)

#include <math.h>
#include <string.h>
#include "AtelierKernelsC.h"
#include "FastExp.h"
#include "MicroKernels.h"

static inline float sum8(const float s[8]) {
    return ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]));
}

/// The max and exponential passes: row[j] = exp(row[j]·scale − max·scale) for j < valid; returns
/// 1 / (their sum by the fixed tree).
static float softmax_exp_scalar(float *row, int valid, float scale) {
    float mx = -INFINITY;
    for (int j = 0; j < valid; j++) mx = row[j] > mx ? row[j] : mx;
    mx = mx * scale;
    float part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int j = 0; j < valid; j++) {
        float e = exp_scalar(row[j] * scale - mx);
        row[j] = e;
        part[j & 7] = part[j & 7] + e;
    }
    return 1.0f / sum8(part);
}

#if defined(__x86_64__)
#include <immintrin.h>
__attribute__((target("avx2,fma")))
static float softmax_exp_avx2(float *row, int valid, float scale) {
    float mx = -INFINITY;
    int j = 0;
    if (valid >= 64 && ak_isa_current() >= AK_ISA_AVX512 && ak_row_max_avx512(row, valid, &mx)) {
        // The same maximum, four chains at a time (ak_row_max_avx512 says when it declines).
    } else {
        if (valid >= 8) {
            __m256 m = _mm256_loadu_ps(row);
            for (j = 8; j + 8 <= valid; j += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(row + j));
            float t[8];
            _mm256_storeu_ps(t, m);
            for (int i = 0; i < 8; i++) mx = t[i] > mx ? t[i] : mx;
        }
        for (; j < valid; j++) mx = row[j] > mx ? row[j] : mx;
    }
    mx = mx * scale;
    // 16 at a time on the avx512 families (the same exponentials and additions), then 8.
    float part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    j = ak_isa_current() >= AK_ISA_AVX512 ? ak_softmax_exp_avx512(row, valid, scale, mx, part) : 0;
    __m256 m8 = _mm256_set1_ps(mx), s8 = _mm256_set1_ps(scale), acc = _mm256_loadu_ps(part);
    for (; j + 8 <= valid; j += 8) {
        __m256 e = exp_avx2(_mm256_sub_ps(_mm256_mul_ps(_mm256_loadu_ps(row + j), s8), m8));
        _mm256_storeu_ps(row + j, e);
        acc = _mm256_add_ps(acc, e);
    }
    _mm256_storeu_ps(part, acc);
    for (; j < valid; j++) {  // the tail continues each lane's partial sum, as the scalar path does
        float e = exp_scalar(row[j] * scale - mx);
        row[j] = e;
        part[j & 7] = part[j & 7] + e;
    }
    return 1.0f / sum8(part);
}

__attribute__((target("avx2,fma")))
static void normalize_avx2(float *row, int valid, float inv) {
    __m256 inv8 = _mm256_set1_ps(inv);
    int j = ak_isa_current() >= AK_ISA_AVX512 ? ak_scale_row_avx512(row, valid, inv) : 0;
    for (; j + 8 <= valid; j += 8) _mm256_storeu_ps(row + j, _mm256_mul_ps(_mm256_loadu_ps(row + j), inv8));
    for (; j < valid; j++) row[j] = row[j] * inv;
}
#endif

void ak_softmax_row(float *row, int cols, int valid) { ak_softmax_row_scaled(row, cols, valid, 1.0f); }

static float softmax_exp(float *row, int valid, float scale) {
#if defined(__x86_64__)
    if (ak_isa_current() != AK_ISA_SCALAR) return softmax_exp_avx2(row, valid, scale);
#endif
    return softmax_exp_scalar(row, valid, scale);
}

void ak_softmax_row_scaled(float *row, int cols, int valid, float scale) {
    if (valid > cols) valid = cols;
    if (valid <= 0) {
        for (int j = 0; j < cols; j++) row[j] = 0.0f;
        return;
    }
    float inv = softmax_exp(row, valid, scale);
#if defined(__x86_64__)
    if (ak_isa_current() != AK_ISA_SCALAR) normalize_avx2(row, valid, inv);
    else
#endif
    for (int j = 0; j < valid; j++) row[j] = row[j] * inv;
    for (int j = valid; j < cols; j++) row[j] = 0.0f;
}

void ak_softmax_row_bf16(float *row, int cols, int valid, float scale, uint16_t *out) {
    if (valid > cols) valid = cols;
    int done = 0;
    if (valid > 0) {
        ak_f32_to_bf16_scaled(row, out, valid, softmax_exp(row, valid, scale));
        done = valid;
    }
    for (int j = done; j < cols; j++) out[j] = 0;
}
