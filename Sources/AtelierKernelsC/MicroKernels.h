// Internal: the micro-kernels. Each computes one full MR×NR tile of C from an MR-row panel of A
// and an NR-column panel of B (both packed, kc deep): C[i][j] = fma chain over k in order,
// starting from 0, or from C[i][j] when `accumulate`. No epilogue here (see MacroKernel.c).

#ifndef ATELIER_MICRO_KERNELS_H
#define ATELIER_MICRO_KERNELS_H

#include <stddef.h>
#include <stdint.h>

enum { AK_MR = 6, AK_NR_MAX = 32 };

/// bf16 → fp32, exact; a denormal bf16 reads as signed zero (DAZ), as every bf16 read here does.
static inline float ak_widen_bf16(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    if ((u & 0x7f800000u) == 0) u &= 0x80000000u;
    float f;
    __builtin_memcpy(&f, &u, 4);
    return f;
}

typedef void (*ak_micro_kernel)(int kc, const float *a, const float *b, float *c, long ldc,
                                int accumulate);

void ak_ukr_scalar_6x16(int kc, const float *a, const float *b, float *c, long ldc, int accumulate);
#if defined(__x86_64__)
void ak_ukr_avx2_6x16(int kc, const float *a, const float *b, float *c, long ldc, int accumulate);
void ak_ukr_avx512_6x32(int kc, const float *a, const float *b, float *c, long ldc, int accumulate);
/// kp k-pairs of the native bf16 layout (see PackingBF16.c).
/// The epilogue of a full tile whose chains finish in this call (see ak_epilogue_tile), with the
/// bias pointers at the tile's first row and column; NULL for none.
typedef struct { float alpha; const float *bias_row; const float *bias_col; } ak_tile_epilogue;
void ak_ukr_avx512bf16_6x32(int kp, const float *a, const float *b, float *c, long ldc, int accumulate,
                            const ak_tile_epilogue *epi);
/// Seconds that 12 independent chains × n `vdpbf16ps` (or 512-bit `vfmadd231ps`) take, all in
/// registers: the issue rates behind ak_vdpbf16ps_rate_ratio (CPUDispatch.c). Each lives beside
/// its kernel, so the AVX-512 emulation check runs them emulated like the kernels.
double ak_time_vdpbf16ps(long n);
double ak_time_fma512(long n);
/// The body of both: 12 accumulators c0…c11, each `c = STEP(c)` n times between two clock reads,
/// their sum stored to `sink` so that the chains are not dead code; yields the seconds.
#define AK_TIMING_LOOP(n, STEP, sink)                                                              \
    do {                                                                                           \
        __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;               \
        __m512 c6 = c0, c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0;                              \
        struct timespec t0, t1;                                                                    \
        clock_gettime(CLOCK_MONOTONIC, &t0);                                                       \
        for (long i = 0; i < (n); i++) {                                                           \
            c0 = STEP(c0); c1 = STEP(c1); c2 = STEP(c2); c3 = STEP(c3); c4 = STEP(c4); c5 = STEP(c5); \
            c6 = STEP(c6); c7 = STEP(c7); c8 = STEP(c8); c9 = STEP(c9); c10 = STEP(c10); c11 = STEP(c11); \
        }                                                                                          \
        clock_gettime(CLOCK_MONOTONIC, &t1);                                                       \
        float lanes[16];                                                                           \
        _mm512_storeu_ps(lanes, _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3)), \
                                              _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c4, c5), _mm512_add_ps(c6, c7)), \
                                                            _mm512_add_ps(_mm512_add_ps(c8, c9), _mm512_add_ps(c10, c11))))); \
        sink = lanes[0];                                                                           \
        return (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);         \
    } while (0)
/// Row loops on AVX-512F (RowKernelsAVX512.c), each the same per-element operations as its AVX2
/// form; each returns how many elements it did (a multiple of 16), the caller does the rest:
/// stored bf16 widened into the emulated layout, each pair swapped (PackingBF16.c); softmax's
/// exponentials, summed into the 8 partial sums in the AVX2 loop's order (Softmax.c); a row times
/// a factor.
int ak_widen_swapped_row_avx512(const uint16_t *src, int kc, float *dst);
int ak_softmax_exp_avx512(float *row, int valid, float scale, float max_scaled, float partial[8]);
int ak_scale_row_avx512(float *row, int n, float factor);
/// The largest of a row of at least 64 floats, 1 when it is *out; 0 (take the ordered pass) when
/// the row holds a NaN or its maximum is a zero (RowKernelsAVX512.c).
int ak_row_max_avx512(const float *row, int n, float *out);
/// One K-block on AMX tiles (MacroKernelAMX.c): C (+)= A·B for the AMX A layout and native B
/// panels, no epilogue. Only where ak_bf16_amx(kc).
void ak_macro_kernel_amx(int mc, int nc, int kc, const float *apack, const float *bpack, float *c,
                         long ldc, int accumulate);
#endif

ak_micro_kernel ak_current_micro_kernel(void);

#if defined(__x86_64__)
#include <immintrin.h>
#define AK_AVX2 __attribute__((target("avx2,fma")))

/// ak_bf16_from_float on 8 lanes: fp32 bits → bf16 bits in the upper half (lower half zero);
/// NaN stays a quiet NaN, zero and denormals become signed zero, the rest rounds to nearest even.
AK_AVX2 static inline __m256i ak_round_hi8(__m256i u) {
    const __m256i absmask = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000);
    const __m256i hi = _mm256_set1_epi32((int)0xffff0000u);
    __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, absmask), inf);
    __m256i den = _mm256_cmpeq_epi32(_mm256_and_si256(u, inf), _mm256_setzero_si256());
    __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_and_si256(_mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7fff), lsb)), hi);
    __m256i qnan = _mm256_and_si256(_mm256_or_si256(u, _mm256_set1_epi32(0x00400000)), hi);
    __m256i zero = _mm256_and_si256(u, _mm256_set1_epi32((int)0x80000000u));
    r = _mm256_blendv_epi8(r, qnan, nan);
    return _mm256_blendv_epi8(r, zero, den);
}
#endif

#if defined(__x86_64__)
/// Packs one full B panel from a stored [nr × kc] block (row stride ld) by 8×8 transposes.
void ak_pack_b_transposed_avx2(const float *src, long ld, int kc, int nr, float *dst);
/// Packs one full A panel from 6 stored rows (row stride ld), kc deep.
void ak_pack_a_rows6_avx2(const float *src, long ld, int kc, float *dst);
/// n fp32 → bf16 in order, bf16(src[i]·scale) by ak_bf16_from_float's rounding, 16 at a time
/// (AVX2); returns how many it did (a multiple of 16). ak_f32_to_bf16_scaled wraps it with the
/// scalar rest.
long ak_round_row_bf16_avx2(const float *src, long n, float scale, uint16_t *dst);
/// The same with `vcvtne2ps2bf16`, 32 at a time (family avx512bf16 and up only).
long ak_round_row_bf16_native(const float *src, long n, float scale, uint16_t *dst);
#endif

#endif
