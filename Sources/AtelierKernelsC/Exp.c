// exp over an array with the kernels' one polynomial (FastExp.h), for tests and for any caller that
// needs the exponential the softmax, GELU and SiLU kernels use: the same bits on every path.

#include "AtelierKernelsC.h"
#include "FastExp.h"

#if defined(__x86_64__)
__attribute__((target("avx2,fma")))
static void exp_rows_avx2(const float *x, float *y, long n) {
    long i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, exp_avx2(_mm256_loadu_ps(x + i)));
    for (; i < n; i++) y[i] = exp_scalar(x[i]);
}
#endif

void ak_exp(const float *x, float *y, long n) {
#if defined(__x86_64__)
    if (ak_isa_current() != AK_ISA_SCALAR) {
        exp_rows_avx2(x, y, n);
        return;
    }
#endif
    for (long i = 0; i < n; i++) y[i] = exp_scalar(x[i]);
}
