// A whole GEMM on the calling thread, for work that is already split across threads (one
// attention head, or one Winograd plane, per task). Same blocking and the same chains as the
// parallel Swift driver.

#include <stdlib.h>
#include "AtelierKernelsC.h"
#include "MicroKernels.h"

enum { AK_SERIAL_NC = 2048 };

/// The one serial loop nest. A comes either plain (a, lda, trans_a: each row block packed into
/// thread scratch per K-block) or already packed whole (`apacked`, ak_pack_a_whole's layout).
static void serial_gemm(int m, int n, int k, float alpha,
                        const float *a, long lda, int trans_a, const float *apacked,
                        const float *b, long ldb, int trans_b,
                        float *c, long ldc, int accumulate,
                        const float *bias_row, const float *bias_col) {
    if (m <= 0 || n <= 0) return;
    const int mr = AK_MR, nr = ak_nr();
    const size_t padded = (size_t)((m + mr - 1) / mr) * mr;
    size_t ncPad = (size_t)((AK_SERIAL_NC + nr - 1) / nr) * nr;
    float *bpack = ak_thread_scratch(2, ncPad * AK_KC);
    // Row blocks of equal size (a multiple of MR), at most AK_MC rows.
    int rowBlocks = (m + AK_MC - 1) / AK_MC;
    int mcStep = ((m + rowBlocks - 1) / rowBlocks + mr - 1) / mr * mr;
    float *apack = apacked ? NULL : ak_thread_scratch(3, (size_t)mcStep * AK_KC);
    if (!bpack || (!apacked && !apack)) abort();
    for (int jc = 0; jc < n; jc += AK_SERIAL_NC) {
        int nc = n - jc < AK_SERIAL_NC ? n - jc : AK_SERIAL_NC;
        int panels = (nc + nr - 1) / nr;
        int pc = 0;
        do {
            int kc = k - pc < AK_KC ? k - pc : AK_KC;
            int last = pc + kc >= k;
            ak_pack_b(b, ldb, trans_b, pc, kc, jc, nc, 0, panels, bpack);
            for (int ic = 0; ic < m; ic += mcStep) {
                int mc = m - ic < mcStep ? m - ic : mcStep;
                const float *ap = apack;
                if (apacked) ap = apacked + padded * (size_t)pc + (size_t)ic * kc;
                else ak_pack_a(a, lda, trans_a, ic, mc, pc, kc, apack);
                ak_macro_kernel(mc, nc, kc, ap, bpack, c + (size_t)ic * ldc + jc, ldc,
                                accumulate || pc > 0, last, alpha,
                                bias_row ? bias_row + ic : NULL, bias_col ? bias_col + jc : NULL);
            }
            pc += kc;
        } while (pc < k);
    }
}

void ak_sgemm_serial(int m, int n, int k, float alpha,
                     const float *a, long lda, int trans_a,
                     const float *b, long ldb, int trans_b,
                     float *c, long ldc, int accumulate,
                     const float *bias_row, const float *bias_col) {
    serial_gemm(m, n, k, alpha, a, lda, trans_a, NULL, b, ldb, trans_b, c, ldc, accumulate, bias_row, bias_col);
}

void ak_sgemm_packed_a_serial(int m, int n, int k, const float *apacked,
                              const float *b, long ldb, float *c, long ldc, int accumulate) {
    serial_gemm(m, n, k, 1.0f, NULL, 0, 0, apacked, b, ldb, 0, c, ldc, accumulate, NULL, NULL);
}
