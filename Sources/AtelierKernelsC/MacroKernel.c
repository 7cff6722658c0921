// The macro-kernel: every micro-tile of one packed A block × one packed B block, B's micro-panel
// outer (it stays in L1 while A's panels stream from L2), then the epilogue once the chain is
// complete. Edge tiles run the same micro-kernel on a private full tile and copy back the valid
// part, so an element's bits never depend on where the tile boundaries fall.

#include <string.h>
#include "AtelierKernelsC.h"
#include "MicroKernels.h"

void ak_epilogue_tile(float *c, long ldc, int rows, int cols, float alpha,
                      const float *bias_row, const float *bias_col) {
    for (int i = 0; i < rows; i++) {
        float *row = c + (size_t)i * ldc;
        if (alpha != 1.0f)
            for (int j = 0; j < cols; j++) row[j] = row[j] * alpha;
        if (bias_row) {
            float bv = bias_row[i];
            for (int j = 0; j < cols; j++) row[j] = row[j] + bv;
        }
        if (bias_col)
            for (int j = 0; j < cols; j++) row[j] = row[j] + bias_col[j];
    }
}

void ak_macro_kernel(int mc, int nc, int kc, const float *apack, const float *bpack,
                     float *c, long ldc, int accumulate, int final, float alpha,
                     const float *bias_row, const float *bias_col) {
    const int mr = AK_MR, nr = ak_nr();
    ak_micro_kernel ukr = ak_current_micro_kernel();
    // The epilogue runs on each tile as soon as its chain is complete, while it is in L1.
    const int epilogue = final && (alpha != 1.0f || bias_row || bias_col);
    float edge[AK_MR * AK_NR_MAX] __attribute__((aligned(64)));
    for (int jr = 0; jr < nc; jr += nr) {
        int cols = nc - jr < nr ? nc - jr : nr;
        const float *bp = bpack + (size_t)(jr / nr) * nr * kc;
        for (int ir = 0; ir < mc; ir += mr) {
            int rows = mc - ir < mr ? mc - ir : mr;
            const float *ap = apack + (size_t)(ir / mr) * mr * kc;
            float *ct = c + (size_t)ir * ldc + jr;
            // Start fetching the next tile's rows of C now: it is read (accumulate) or written
            // after a whole micro-kernel of compute, instead of stalling on up to 12 misses.
            {
                int nir = ir + mr, njr = jr;
                if (nir >= mc) { nir = 0; njr = jr + nr; }
                if (njr < nc) {
                    float *nt = c + (size_t)nir * ldc + njr;
                    for (int i = 0; i < mr && nir + i < mc; i++) {
                        __builtin_prefetch(nt + (size_t)i * ldc, 1, 3);
                        __builtin_prefetch(nt + (size_t)i * ldc + nr - 1, 1, 3);
                    }
                }
            }
            if (kc == 0) {
                if (!accumulate)
                    for (int i = 0; i < rows; i++) memset(ct + (size_t)i * ldc, 0, sizeof(float) * cols);
            } else if (rows == mr && cols == nr) {
                ukr(kc, ap, bp, ct, ldc, accumulate);
            } else {
                if (accumulate)
                    for (int i = 0; i < rows; i++) memcpy(edge + i * nr, ct + (size_t)i * ldc, sizeof(float) * cols);
                ukr(kc, ap, bp, edge, nr, accumulate);
                for (int i = 0; i < rows; i++) memcpy(ct + (size_t)i * ldc, edge + i * nr, sizeof(float) * cols);
            }
            if (epilogue)
                ak_epilogue_tile(ct, ldc, rows, cols, alpha, bias_row ? bias_row + ir : NULL, bias_col ? bias_col + jr : NULL);
        }
    }
}
