// Internal: the micro-kernels. Each computes one full MR×NR tile of C from an MR-row panel of A
// and an NR-column panel of B (both packed, kc deep): C[i][j] = fma chain over k in order,
// starting from 0, or from C[i][j] when `accumulate`. No epilogue here (see MacroKernel.c).

#ifndef ATELIER_MICRO_KERNELS_H
#define ATELIER_MICRO_KERNELS_H

#include <stddef.h>

enum { AK_MR = 6, AK_NR_MAX = 32 };

typedef void (*ak_micro_kernel)(int kc, const float *a, const float *b, float *c, long ldc,
                                int accumulate);

void ak_ukr_scalar_6x16(int kc, const float *a, const float *b, float *c, long ldc, int accumulate);
#if defined(__x86_64__)
void ak_ukr_avx2_6x16(int kc, const float *a, const float *b, float *c, long ldc, int accumulate);
void ak_ukr_avx512_6x32(int kc, const float *a, const float *b, float *c, long ldc, int accumulate);
/// kp k-pairs of the native bf16 layout (see PackingBF16.c).
void ak_ukr_avx512bf16_6x32(int kp, const float *a, const float *b, float *c, long ldc, int accumulate);
/// One K-block on AMX tiles (MacroKernelAMX.c): C (+)= A·B for the AMX A layout and native B
/// panels, no epilogue. Only where ak_bf16_amx(kc).
void ak_macro_kernel_amx(int mc, int nc, int kc, const float *apack, const float *bpack, float *c,
                         long ldc, int accumulate);
#endif

ak_micro_kernel ak_current_micro_kernel(void);

#if defined(__x86_64__)
/// Packs one full B panel from a stored [nr × kc] block (row stride ld) by 8×8 transposes.
void ak_pack_b_transposed_avx2(const float *src, long ld, int kc, int nr, float *dst);
/// Packs one full A panel from 6 stored rows (row stride ld), kc deep.
void ak_pack_a_rows6_avx2(const float *src, long ld, int kc, float *dst);
#endif

#endif
