// Packing for the bf16 GEMM. Both operands are rounded to bf16 (activations here, weights when
// they were stored) and laid out for one of two kernels, chosen by the instruction set:
//  - emulated (the fp32 micro-kernels, any CPU): fp32 panels [kcp][R] whose k order is swapped
//    within each pair (packed k 2p holds logical k 2p+1), so that the fp32 chain runs odd then even
//    exactly as `vdpbf16ps` does;
//  - native (AVX512_BF16): uint32 panels [kcp/2][R], each lane the pair bf16(k=2p) | bf16(k=2p+1) << 16.
// kcp is kc rounded up to even; the missing odd k is zero. A panel's stride is R·kcp floats in both
// layouts (the native one uses half of it), so the driver's offsets do not depend on the layout.
// A K-block that runs on AMX tiles (ak_bf16_amx) packs A a third way, row-major: row i at i·kcp
// floats, its bf16 values in k order (so each uint32 is a pair, even k low), then zeros up to a
// whole 16-pair tile step; that fits in kcp floats because such a block has at least 16 pairs.
// Row i at i·kcp is also where the panel layouts put panel i/MR, so the driver's offsets hold.

#include <string.h>
#include "AtelierKernelsC.h"
#include "MicroKernels.h"
#if defined(__x86_64__)
#include <immintrin.h>
#endif

/// fp32 bits → bf16 bits in the upper half (lower half zero): the same rule as ak_bf16_from_float.
static inline uint32_t round_hi(uint32_t u) {
    if ((u & 0x7fffffffu) > 0x7f800000u) return (u | 0x00400000u) & 0xffff0000u;
    if ((u & 0x7f800000u) == 0) return u & 0x80000000u;
    return (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
}

static inline uint32_t bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float from_bits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

#if defined(__x86_64__)

/// One pair of rows (R a multiple of 8) in either layout.
AK_AVX2 static void convert_pair_avx2(const float *even, const float *odd, int R, float *dst, int native) {
    for (int r = 0; r < R; r += 8) {
        __m256i e = even ? ak_round_hi8(_mm256_loadu_si256((const __m256i *)(even + r))) : _mm256_setzero_si256();
        __m256i o = odd ? ak_round_hi8(_mm256_loadu_si256((const __m256i *)(odd + r))) : _mm256_setzero_si256();
        if (native) {
            _mm256_storeu_si256((__m256i *)(dst + r), _mm256_or_si256(o, _mm256_srli_epi32(e, 16)));
        } else {
            _mm256_storeu_si256((__m256i *)(dst + r), o);
            _mm256_storeu_si256((__m256i *)(dst + R + r), e);
        }
    }
}
#endif

/// The AMX layout of rows [i0, i0+mc) of A over k [k0, k0+kc): A(i, k) read from fp32 (row-major,
/// or transposed) or from stored bf16 (row-major), then zeros up to a whole 16-pair step. Stored
/// denormals are copied as they are: the tiles read them as zero, as the other layouts do.
static void pack_a_amx(const float *a32, const uint16_t *a16, long lda, int trans, int i0, int mc,
                       int k0, int kc, float *dst) {
    const int kcp = (kc + 1) & ~1, kp16 = ((kcp / 2 + 15) / 16) * 16;
    for (int i = 0; i < mc; i++) {
        uint16_t *row = (uint16_t *)(void *)(dst + (size_t)i * kcp);
        int done = 0;
        if (a16) {
            memcpy(row, a16 + (size_t)(i0 + i) * lda + k0, sizeof(uint16_t) * kc);
            done = kc;
        } else if (!trans) {
            ak_f32_to_bf16(a32 + (size_t)(i0 + i) * lda + k0, row, kc);
            done = kc;
        } else {
            for (; done < kc; done++) row[done] = ak_bf16_from_float(a32[(size_t)(k0 + done) * lda + i0 + i]);
        }
        memset(row + kc, 0, sizeof(uint16_t) * (size_t)(2 * kp16 - kc));
    }
}

/// One stored bf16 row, k [0, kc), widened to fp32 in the emulated layout's k order (pairs
/// swapped, a zero for the missing odd k): kcp values. Denormals read as zero.
static void widen_swapped_row_scalar(const uint16_t *src, int kc, float *dst) {
    int kcp = (kc + 1) & ~1;
    for (int q = 0; q < kcp; q += 2) {
        uint32_t e = (uint32_t)src[q] << 16, o = q + 1 < kc ? (uint32_t)src[q + 1] << 16 : 0;
        if ((e & 0x7f800000u) == 0) e &= 0x80000000u;
        if ((o & 0x7f800000u) == 0) o &= 0x80000000u;
        dst[q] = from_bits(o);
        dst[q + 1] = from_bits(e);
    }
}

#if defined(__x86_64__)
AK_AVX2 static void widen_swapped_row_avx2(const uint16_t *src, int kc, float *dst) {
    const __m256i inf = _mm256_set1_epi32(0x7f800000), sign = _mm256_set1_epi32((int)0x80000000u);
    // 32 at a time first on the avx512 families (RowKernelsAVX512.c): where the emulated layout
    // runs on a CPU whose `vdpbf16ps` is slow, this widening is a few per cent of a bf16 UNet pass.
    int q = ak_isa_current() >= AK_ISA_AVX512 ? ak_widen_swapped_row_avx512(src, kc, dst) : 0;
    for (; q + 8 <= (kc & ~1); q += 8) {
        __m128i v = _mm_loadu_si128((const __m128i *)(src + q));
        v = _mm_shufflehi_epi16(_mm_shufflelo_epi16(v, 0xB1), 0xB1);  // swap the two halves of each pair
        __m256i w = _mm256_slli_epi32(_mm256_cvtepu16_epi32(v), 16);
        __m256i den = _mm256_cmpeq_epi32(_mm256_and_si256(w, inf), _mm256_setzero_si256());
        w = _mm256_blendv_epi8(w, _mm256_and_si256(w, sign), den);
        _mm256_storeu_si256((__m256i *)(dst + q), w);
    }
    widen_swapped_row_scalar(src + q, kc - q, dst + q);
}
#endif

/// Converts one packed fp32 panel [kc][R] into the bf16 layout at dst (stride R·kcp floats).
static void convert_panel(const float *src, int kc, int R, float *dst, int native) {
    int kcp = (kc + 1) & ~1;
    for (int q = 0; q < kcp; q += 2) {
        const float *even = src + (size_t)q * R, *odd = q + 1 < kc ? src + (size_t)(q + 1) * R : NULL;
        float *d = native ? dst + (size_t)(q / 2) * R : dst + (size_t)q * R;
#if defined(__x86_64__)
        if (R % 8 == 0 && ak_isa_current() != AK_ISA_SCALAR) {
            convert_pair_avx2(even, odd, R, d, native);
            continue;
        }
#endif
        for (int r = 0; r < R; r++) {
            uint32_t e = round_hi(bits(even[r])), o = odd ? round_hi(bits(odd[r])) : 0;
            if (native) {
                uint32_t lane = o | (e >> 16);
                memcpy(d + r, &lane, 4);
            } else {
                d[r] = from_bits(o);
                d[R + r] = from_bits(e);
            }
        }
    }
}

void ak_pack_a_bf16(const float *a, long lda, int trans, int i0, int mc, int k0, int kc, float *dst) {
    if (ak_bf16_amx(kc)) {
        pack_a_amx(a, NULL, lda, trans, i0, mc, k0, kc, dst);
        return;
    }
    const int mr = AK_MR, kcp = (kc + 1) & ~1, native = ak_bf16_native();
    int panels = (mc + mr - 1) / mr;
#if defined(__x86_64__)
    // Full panels of a row-major A on AVX2, in one pass per row instead of a packed fp32 panel
    // converted lane by lane (6-lane panels have no vector path in convert_panel): each of the 6
    // rows rounded to bf16 (16 at a time), then the 6-row transpose — of 32-bit pairs for the
    // native layout, of the widened, pair-swapped rows for the emulated one. The same bits.
    if (!trans && ak_isa_current() != AK_ISA_SCALAR && kc > 0) {
        int full = mc / mr;
        float *work = ak_thread_scratch(7, (size_t)mr * kcp * 2);
        if (!work) return;
        uint16_t *r16 = (uint16_t *)(void *)work;      // 6 rows of kcp bf16
        float *wide = work + (size_t)mr * kcp;         // 6 rows of kcp fp32 (emulated layout)
        for (int p = 0; p < full; p++) {
            for (int r = 0; r < mr; r++) {
                const float *src = a + (size_t)(i0 + p * mr + r) * lda + k0;
                uint16_t *row = r16 + (size_t)r * kcp;
                ak_f32_to_bf16(src, row, kc);
                if (kcp > kc) row[kc] = 0;
                if (!native) widen_swapped_row_avx2(row, kcp, wide + (size_t)r * kcp);
            }
            float *d = dst + (size_t)p * mr * kcp;
            if (native) ak_pack_a_rows6_avx2((const float *)(const void *)r16, kcp / 2, kcp / 2, d);
            else ak_pack_a_rows6_avx2(wide, kcp, kcp, d);
        }
        if (full == panels) return;
        // The last, part-filled panel the general way.
        float *tmp = ak_thread_scratch(6, (size_t)mr * kc);
        if (!tmp) return;
        ak_pack_a(a, lda, 0, i0 + full * mr, mc - full * mr, k0, kc, tmp);
        convert_panel(tmp, kc, mr, dst + (size_t)full * mr * kcp, native);
        return;
    }
#endif
    float *tmp = ak_thread_scratch(7, (size_t)panels * mr * (kc ? kc : 1));
    if (!tmp) return;
    ak_pack_a(a, lda, trans, i0, mc, k0, kc, tmp);
    for (int p = 0; p < panels; p++)
        convert_panel(tmp + (size_t)p * mr * kc, kc, mr, dst + (size_t)p * mr * kcp, native);
}

/// One row of A (or column of B) of stored bf16 into lane `lane` of a panel with R lanes, in either
/// layout; src NULL writes the zero padding. The scalar path of both stored packers.
static void pack_stored_lane(const uint16_t *src, int kc, int R, int lane, float *d, int native) {
    const int kcp = (kc + 1) & ~1;
    for (int q = 0; q < kcp; q += 2) {
        uint32_t e = src ? (uint32_t)src[q] << 16 : 0;
        uint32_t o = src && q + 1 < kc ? (uint32_t)src[q + 1] << 16 : 0;
        if ((e & 0x7f800000u) == 0) e &= 0x80000000u;  // denormals read as zero
        if ((o & 0x7f800000u) == 0) o &= 0x80000000u;
        if (native) {
            uint32_t pair = o | (e >> 16);
            memcpy(d + (size_t)(q / 2) * R + lane, &pair, 4);
        } else {
            d[(size_t)q * R + lane] = from_bits(o);
            d[(size_t)(q + 1) * R + lane] = from_bits(e);
        }
    }
}

void ak_pack_a_bf16_stored(const uint16_t *a, long lda, int i0, int mc, int k0, int kc, float *dst) {
    if (ak_bf16_amx(kc)) {
        pack_a_amx(NULL, a, lda, 0, i0, mc, k0, kc, dst);
        return;
    }
    const int mr = AK_MR, kcp = (kc + 1) & ~1, native = ak_bf16_native();
#if defined(__x86_64__)
    // Full panels on AVX2: the native layout is a 6-row transpose of 32-bit pairs (rows start on a
    // pair when lda and k0 are even); the emulated one widens the 6 rows (pairs swapped) into an
    // fp32 block first. The transposes only move bits.
    int fast = ak_isa_current() != AK_ISA_SCALAR;
    float *rows = fast && !native ? ak_thread_scratch(7, (size_t)mr * kcp) : NULL;
#endif
    for (int p = 0; p * mr < mc; p++) {
        int nrows = mc - p * mr < mr ? mc - p * mr : mr;
        float *d = dst + (size_t)p * mr * kcp;
        const uint16_t *base = a + (size_t)(i0 + p * mr) * lda + k0;
#if defined(__x86_64__)
        if (fast && nrows == mr && native && lda % 2 == 0 && k0 % 2 == 0 && kc % 2 == 0) {
            ak_pack_a_rows6_avx2((const float *)(const void *)base, lda / 2, kc / 2, d);
            continue;
        }
        if (fast && nrows == mr && rows) {
            for (int r = 0; r < mr; r++) widen_swapped_row_avx2(base + (size_t)r * lda, kc, rows + (size_t)r * kcp);
            ak_pack_a_rows6_avx2(rows, kcp, kcp, d);
            continue;
        }
#endif
        for (int r = 0; r < mr; r++)
            pack_stored_lane(r < nrows ? base + (size_t)r * lda : NULL, kc, mr, r, d, native);
    }
}

/// Packs B panels [p0, p1) one at a time through a private fp32 panel, then converts each.
static void pack_b_via_fp32(const float *b, long ldb, int trans, const ak_conv_geometry *g,
                            int k0, int kc, int j0, int nc, int p0, int p1, float *dst) {
    const int nr = ak_nr(), kcp = (kc + 1) & ~1, native = ak_bf16_native();
    float *tmp = ak_thread_scratch(6, (size_t)nr * (kc ? kc : 1));
    if (!tmp) return;
    for (int p = p0; p < p1; p++) {
        int jb = j0 + p * nr, cols = nc - p * nr < nr ? nc - p * nr : nr;
        if (g) ak_pack_b_conv(g, k0, kc, jb, cols, 0, 1, tmp);
        else ak_pack_b(b, ldb, trans, k0, kc, jb, cols, 0, 1, tmp);
        convert_panel(tmp, kc, nr, dst + (size_t)p * nr * kcp, native);
    }
}

void ak_pack_b_bf16(const float *b, long ldb, int trans, int k0, int kc, int j0, int nc,
                    int p0, int p1, float *dst) {
    pack_b_via_fp32(b, ldb, trans, NULL, k0, kc, j0, nc, p0, p1, dst);
}

void ak_pack_b_conv_bf16(const ak_conv_geometry *g, int k0, int kc, int j0, int nc,
                         int p0, int p1, float *dst) {
    pack_b_via_fp32(NULL, 0, 0, g, k0, kc, j0, nc, p0, p1, dst);
}

void ak_pack_b_bf16_stored_t(const uint16_t *b, long ldb, int k0, int kc, int j0, int nc,
                             int p0, int p1, float *dst) {
    const int nr = ak_nr(), kcp = (kc + 1) & ~1, native = ak_bf16_native();
#if defined(__x86_64__)
    // Full panels on AVX2, as for A: 8×8 transposes of 32-bit pairs (native) or of the widened,
    // pair-swapped rows (emulated).
    int fast = ak_isa_current() != AK_ISA_SCALAR;
    float *rows = fast && !native ? ak_thread_scratch(6, (size_t)nr * kcp) : NULL;
#endif
    for (int p = p0; p < p1; p++) {
        int cols = nc - p * nr < nr ? nc - p * nr : nr;
        float *d = dst + (size_t)p * nr * kcp;
        const uint16_t *base = b + (size_t)(j0 + p * nr) * ldb + k0;
#if defined(__x86_64__)
        if (fast && cols == nr && native && ldb % 2 == 0 && k0 % 2 == 0 && kc % 2 == 0) {
            ak_pack_b_transposed_avx2((const float *)(const void *)base, ldb / 2, kc / 2, nr, d);
            continue;
        }
        if (fast && cols == nr && rows) {
            for (int j = 0; j < nr; j++) widen_swapped_row_avx2(base + (size_t)j * ldb, kc, rows + (size_t)j * kcp);
            ak_pack_b_transposed_avx2(rows, kcp, kcp, nr, d);
            continue;
        }
#endif
        for (int j = 0; j < nr; j++)
            pack_stored_lane(j < cols ? base + (size_t)j * ldb : NULL, kc, nr, j, d, native);
    }
}
