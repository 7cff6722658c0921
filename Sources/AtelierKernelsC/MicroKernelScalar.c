// The reference micro-kernel: plain C, one fmaf per product, the same chain order as the SIMD
// kernels, so it also defines what they must produce bit for bit.

#include <math.h>
#include "MicroKernels.h"

void ak_ukr_scalar_6x16(int kc, const float *a, const float *b, float *c, long ldc, int accumulate) {
    float acc[AK_MR][16];
    for (int i = 0; i < AK_MR; i++)
        for (int j = 0; j < 16; j++) acc[i][j] = accumulate ? c[i * ldc + j] : 0.0f;
    for (int k = 0; k < kc; k++) {
        for (int i = 0; i < AK_MR; i++) {
            float av = a[k * AK_MR + i];
            for (int j = 0; j < 16; j++) acc[i][j] = fmaf(av, b[k * 16 + j], acc[i][j]);
        }
    }
    for (int i = 0; i < AK_MR; i++)
        for (int j = 0; j < 16; j++) c[i * ldc + j] = acc[i][j];
}
