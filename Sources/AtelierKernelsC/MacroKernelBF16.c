// The bf16 GEMM's macro-kernel: the packed panels (see PackingBF16.c) run on the AVX512_BF16
// micro-kernel where the CPU has it, else on the fp32 micro-kernels of the emulated layout, under
// DAZ and FTZ for the whole block, epilogue included, so both give the same bits. On family
// amxbf16, K-blocks of at least 16 pairs run on AMX tiles instead (their own numerics class).

#include <string.h>
#include "AtelierKernelsC.h"
#include "MicroKernels.h"

void ak_macro_kernel_bf16(int mc, int nc, int kc, const float *apack, const float *bpack,
                          float *c, long ldc, int accumulate, int final, float alpha,
                          const float *bias_row, const float *bias_col) {
    const int kcp = (kc + 1) & ~1;
    unsigned mode = ak_bf16_mode_enter();
#if defined(__x86_64__)
    if (ak_bf16_amx(kc)) {
        ak_macro_kernel_amx(mc, nc, kc, apack, bpack, c, ldc, accumulate);
        ak_macro_kernel(mc, nc, 0, apack, bpack, c, ldc, 1, final, alpha, bias_row, bias_col);
        ak_bf16_mode_leave(mode);
        return;
    }
    if (ak_bf16_native()) {
        const int mr = AK_MR, nr = 32;
        const int epilogue = final && (alpha != 1.0f || bias_row || bias_col);
        float edge[AK_MR * 32] __attribute__((aligned(64)));
        for (int jr = 0; jr < nc; jr += nr) {
            int cols = nc - jr < nr ? nc - jr : nr;
            const float *bp = bpack + (size_t)(jr / nr) * nr * kcp;
            for (int ir = 0; ir < mc; ir += mr) {
                int rows = mc - ir < mr ? mc - ir : mr;
                const float *ap = apack + (size_t)(ir / mr) * mr * kcp;
                float *ct = c + (size_t)ir * ldc + jr;
                if (kcp == 0) {
                    if (!accumulate)
                        for (int i = 0; i < rows; i++) memset(ct + (size_t)i * ldc, 0, sizeof(float) * cols);
                } else if (rows == mr && cols == nr) {
                    // A full tile takes the epilogue in registers, before its one store.
                    ak_tile_epilogue epi = {alpha, bias_row ? bias_row + ir : NULL, bias_col ? bias_col + jr : NULL};
                    ak_ukr_avx512bf16_6x32(kcp / 2, ap, bp, ct, ldc, accumulate, epilogue ? &epi : NULL);
                    continue;
                } else {
                    if (accumulate)
                        for (int i = 0; i < rows; i++) memcpy(edge + i * nr, ct + (size_t)i * ldc, sizeof(float) * cols);
                    ak_ukr_avx512bf16_6x32(kcp / 2, ap, bp, edge, nr, accumulate, NULL);
                    for (int i = 0; i < rows; i++) memcpy(ct + (size_t)i * ldc, edge + i * nr, sizeof(float) * cols);
                }
                // The tile's chain is done: the shared epilogue, while the tile is in L1.
                if (epilogue)
                    ak_epilogue_tile(ct, ldc, rows, cols, alpha, bias_row ? bias_row + ir : NULL,
                                     bias_col ? bias_col + jr : NULL);
            }
        }
        ak_bf16_mode_leave(mode);
        return;
    }
#endif
    ak_macro_kernel(mc, nc, kcp, apack, bpack, c, ldc, accumulate, final, alpha, bias_row, bias_col);
    ak_bf16_mode_leave(mode);
}
