// bf16 numerics: rounding fp32 to bf16, widening back, and the floating-point mode the bf16
// GEMM runs in.
//
// Why one numerics class: `vdpbf16ps` (AVX512_BF16) accumulates each fp32 lane as
// acc = fma(a_odd, b_odd, acc); acc = fma(a_even, b_even, acc), with denormal inputs read as zero
// and denormal results flushed, whatever MXCSR says. A bf16 × bf16 product is exact in fp32, so the
// plain fp32 FMA kernels reproduce it bit for bit when both operands are rounded to bf16, the two
// k of each pair are fed odd first, and the thread runs with DAZ and FTZ set (MXCSR bits 6 and 15)
// for the whole GEMM, epilogue included. So a bf16 image is the same on every x86 CPU with FMA,
// with or without the bf16 instruction.

#include <string.h>
#include "AtelierKernelsC.h"
#include "MicroKernels.h"
#if defined(__x86_64__)
#include <immintrin.h>
#endif

uint16_t ak_bf16_from_float(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u | 0x00400000u) >> 16);  // NaN stays NaN (quiet)
    if ((u & 0x7f800000u) == 0) return (uint16_t)((u >> 16) & 0x8000u);                 // zero, denormal: signed zero
    u += 0x7fffu + ((u >> 16) & 1u);                                                     // round to nearest even
    return (uint16_t)(u >> 16);
}

float ak_float_from_bf16(uint16_t h) { return ak_widen_bf16(h); }

#if defined(__x86_64__)
AK_AVX2 long ak_round_row_bf16_avx2(const float *src, long n, float scale, uint16_t *dst) {
    long i = 0;
    __m256 s = _mm256_set1_ps(scale);
    for (; i + 16 <= n; i += 16) {
        __m256i lo = _mm256_srli_epi32(ak_round_hi8(_mm256_castps_si256(_mm256_mul_ps(_mm256_loadu_ps(src + i), s))), 16);
        __m256i hi = _mm256_srli_epi32(ak_round_hi8(_mm256_castps_si256(_mm256_mul_ps(_mm256_loadu_ps(src + i + 8), s))), 16);
        // packus works per 128-bit lane: lo0-3 hi0-3 | lo4-7 hi4-7; the permute restores the order.
        __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(lo, hi), 0xD8);
        _mm256_storeu_si256((__m256i *)(dst + i), p);
    }
    return i;
}
#endif

void ak_f32_to_bf16_scaled(const float *src, uint16_t *dst, long n, float scale) {
    long i = 0;
#if defined(__x86_64__)
    // Weights at load (865 M for an SD2 UNet), rows of A as they are packed and softmax rows:
    // 32 at a time by AVX512_BF16's own conversion where the CPU has it (the same rounding; also
    // where the products run on the fp32 kernels because `vdpbf16ps` is slow there), 16 at a time
    // where AVX2 is there.
    if (ak_bf16_round_native()) i = ak_round_row_bf16_native(src, n, scale, dst);
    if (ak_isa_current() != AK_ISA_SCALAR) i += ak_round_row_bf16_avx2(src + i, n - i, scale, dst + i);
#endif
    for (; i < n; i++) dst[i] = ak_bf16_from_float(src[i] * scale);
}

/// x·1 is x, and what it changes (a signalling NaN quieted, a denormal read as zero under DAZ)
/// the rounding does anyway, so this is exactly the unscaled conversion.
void ak_f32_to_bf16(const float *src, uint16_t *dst, long n) { ak_f32_to_bf16_scaled(src, dst, n, 1.0f); }

void ak_bf16_to_f32(const uint16_t *src, float *dst, long n) {
    for (long i = 0; i < n; i++) dst[i] = ak_widen_bf16(src[i]);
}

int ak_bf16_native(void) { return ak_isa_current() >= AK_ISA_AVX512BF16; }

int ak_bf16_round_native(void) {
    return ak_isa_detected() >= AK_ISA_AVX512BF16 && ak_isa_current() >= AK_ISA_AVX512;
}

int ak_bf16_amx(int kc) { return ak_isa_current() == AK_ISA_AMXBF16 && (kc + 1) / 2 >= 16; }

int ak_bf16_row_step(void) { return ak_isa_current() == AK_ISA_AMXBF16 ? 48 : AK_MR; }

unsigned ak_bf16_mode_enter(void) {
#if defined(__x86_64__)
    unsigned saved = _mm_getcsr();
    _mm_setcsr(saved | 0x8040u);  // FTZ (bit 15) and DAZ (bit 6)
    return saved;
#else
    return 0;
#endif
}

void ak_bf16_mode_leave(unsigned saved) {
#if defined(__x86_64__)
    _mm_setcsr(saved);
#else
    (void)saved;
#endif
}

#if !defined(__x86_64__)
// No `vdpbf16ps` off x86: nothing is computed (the caller checks ak_isa_detected first).
long ak_dpbf16_hardware(const uint32_t *a, const uint32_t *b, const float *acc, long n, float *out) {
    (void)a; (void)b; (void)acc; (void)n; (void)out;
    return 0;
}

int ak_tdpbf16ps_hardware(const uint32_t *a, const uint32_t *b, float *c) {
    (void)a; (void)b; (void)c;
    return 0;
}

int ak_amx_matches_sdm(void) { return 0; }
#endif
