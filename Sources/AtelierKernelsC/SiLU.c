// SiLU, x·sigmoid(x) computed as x / (1 + exp(−x)) with the shared exp polynomial: vectorised
// (libm's scalar expf made it a visible share of a VAE decode, whose activations are 33 M floats)
// and the same bits on every path and every system.

#include "AtelierKernelsC.h"
#include "FastExp.h"

static inline float silu_scalar(float v) { return v / (1.0f + exp_scalar(-v)); }

#if defined(__x86_64__)
__attribute__((target("avx2,fma")))
static void silu_avx2(const float *x, float *y, long n) {
    long i = 0;
    __m256 one = _mm256_set1_ps(1.0f);
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 e = exp_avx2(_mm256_sub_ps(_mm256_setzero_ps(), v));
        _mm256_storeu_ps(y + i, _mm256_div_ps(v, _mm256_add_ps(one, e)));
    }
    for (; i < n; i++) y[i] = silu_scalar(x[i]);
}
#endif

void ak_silu(const float *x, float *y, long n) {
#if defined(__x86_64__)
    if (ak_isa_current() != AK_ISA_SCALAR) {
        silu_avx2(x, y, n);
        return;
    }
#endif
    for (long i = 0; i < n; i++) y[i] = silu_scalar(x[i]);
}
