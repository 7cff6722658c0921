// The bf16 GEMM on AMX-BF16 tiles (family amxbf16): one K-block of a macro-kernel, 32×32 blocks
// of C in four 16×16 fp32 tiles, each 16-pair step one `tdpbf16ps` per tile.
//
// Why its own numerics class: per the Intel SDM, `tdpbf16ps` sums the even and the odd products
// of a step as two separate chains from zero (FMAs, round to nearest even, denormals read as zero
// and flushed), adds the two, then adds that to C. `vdpbf16ps` instead runs one chain through C,
// odd then even. So a K-block on tiles is C + Σ_steps (even chain + odd chain): deterministic
// (fixed steps from the start of each K-block, whatever the thread count) but not the other
// families' bits. Workers report it as a class of their own; ATELIER_KERNEL_ISA=avx512bf16 keeps
// an AMX machine in the vdpbf16ps class. The class stands for the SDM's arithmetic, so the family
// is only detected where the CPU's `tdpbf16ps` proves to compute it (ak_amx_matches_sdm, once at
// start-up): a CPU that summed otherwise would stay on `vdpbf16ps` rather than break the promise
// that one class means one image.
//
// Layouts (PackingBF16.c): A row-major, row i at i·kcp floats, pairs as uint32, zero up to a whole
// step; B the native panels [kcp/2][32] of pairs, so a B tile is 16 pair-rows of one panel with a
// 128-byte stride. Whatever a tile would read past the data — rows of A beyond mc, pairs of B
// beyond the K-block — comes from zero-padded copies instead, so nothing undefined (a NaN pattern
// times zero) enters a sum.

#include <math.h>
#include <string.h>
#include "AtelierKernelsC.h"
#include "MicroKernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define AK_AMX __attribute__((target("amx-tile,amx-bf16")))

/// The tile configuration (palette 1): for each tile register, its rows and bytes per row.
typedef struct {
    uint8_t palette_id;
    uint8_t start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} __attribute__((aligned(64))) ak_tile_config;

/// Tiles 0…3 hold C (rows 0-15 / 16-31 × columns 0-15 / 16-31), 4 and 5 the two 16-row groups of
/// A, 6 and 7 the two 16-column halves of the B panel: all 16 rows of 64 bytes.
AK_AMX static void configure_tiles(void) {
    ak_tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette_id = 1;
    for (int t = 0; t < 8; t++) {
        cfg.rows[t] = 16;
        cfg.colsb[t] = 64;
    }
    _tile_loadconfig(&cfg);
}

AK_AMX
void ak_macro_kernel_amx(int mc, int nc, int kc, const float *apack, const float *bpack, float *c,
                         long ldc, int accumulate) {
    const int kcp = (kc + 1) & ~1, kp = kcp / 2, steps = (kp + 15) / 16, tail = kp % 16;
    const int groups = (mc + 15) / 16, full_groups = mc / 16;
    const long astride = (long)kcp * 4;  // bytes between rows of A
    // Scratch: the last, part-filled 16-row group of A; the last, part-filled step of a B panel;
    // a 32×32 C block for edges.
    float *scratch = ak_thread_scratch(12, (size_t)16 * kcp + 16 * 32 + 32 * 32);
    if (!scratch) return;
    uint32_t *aedge = (uint32_t *)(void *)scratch;
    uint32_t *btail = (uint32_t *)(void *)(scratch + (size_t)16 * kcp);
    float *cedge = scratch + (size_t)16 * kcp + 16 * 32;
    const uint32_t *a = (const uint32_t *)(const void *)apack;
    if (full_groups < groups) {
        memset(aedge, 0, sizeof(uint32_t) * 16 * (size_t)kcp);
        for (int r = 0; r < mc - 16 * full_groups; r++)
            memcpy(aedge + (size_t)r * kcp, a + (size_t)(16 * full_groups + r) * kcp, sizeof(uint32_t) * 16 * steps);
    }
    configure_tiles();
    for (int jr = 0; jr < nc; jr += 32) {
        const int cols = nc - jr < 32 ? nc - jr : 32;
        const uint32_t *bp = (const uint32_t *)(const void *)(bpack + (size_t)(jr / 32) * 32 * kcp);
        if (tail) {
            memset(btail, 0, sizeof(uint32_t) * 16 * 32);
            memcpy(btail, bp + (size_t)(steps - 1) * 16 * 32, sizeof(uint32_t) * 32 * tail);
        }
        for (int g = 0; g < groups; g += 2) {
            const int two = g + 1 < groups;
            const int rows = mc - 16 * g < 32 ? mc - 16 * g : 32;
            const uint32_t *a0 = g < full_groups ? a + (size_t)16 * g * kcp : aedge;
            const uint32_t *a1 = !two ? NULL : g + 1 < full_groups ? a + (size_t)16 * (g + 1) * kcp : aedge;
            const int full = cols == 32 && rows == (two ? 32 : 16);
            float *ct = full ? c + (size_t)16 * g * ldc + jr : cedge;
            const long ld = full ? ldc : 32;
            if (!full) {
                memset(cedge, 0, sizeof(float) * 32 * 32);
                if (accumulate)
                    for (int i = 0; i < rows; i++)
                        memcpy(cedge + i * 32, c + (size_t)(16 * g + i) * ldc + jr, sizeof(float) * cols);
            }
            if (accumulate || !full) {
                _tile_loadd(0, ct, ld * 4);
                _tile_loadd(1, ct + 16, ld * 4);
                if (two) {
                    _tile_loadd(2, ct + 16 * ld, ld * 4);
                    _tile_loadd(3, ct + 16 * ld + 16, ld * 4);
                }
            } else {
                _tile_zero(0);
                _tile_zero(1);
                _tile_zero(2);
                _tile_zero(3);
            }
            for (int s = 0; s < steps; s++) {
                const uint32_t *bs = tail && s == steps - 1 ? btail : bp + (size_t)s * 16 * 32;
                _tile_loadd(4, a0 + 16 * s, astride);
                _tile_loadd(6, bs, 128);
                _tile_loadd(7, bs + 16, 128);
                _tile_dpbf16ps(0, 4, 6);
                _tile_dpbf16ps(1, 4, 7);
                if (two) {
                    _tile_loadd(5, a1 + 16 * s, astride);
                    _tile_dpbf16ps(2, 5, 6);
                    _tile_dpbf16ps(3, 5, 7);
                }
            }
            _tile_stored(0, ct, ld * 4);
            _tile_stored(1, ct + 16, ld * 4);
            if (two) {
                _tile_stored(2, ct + 16 * ld, ld * 4);
                _tile_stored(3, ct + 16 * ld + 16, ld * 4);
            }
            if (!full)
                for (int i = 0; i < rows; i++)
                    memcpy(c + (size_t)(16 * g + i) * ldc + jr, cedge + i * 32, sizeof(float) * cols);
        }
    }
    _tile_release();
}

/// One `tdpbf16ps` on a 16×16 tile: c += a·b (a [16 rows][16 pairs], b [16 pairs][16 cols]).
AK_AMX static void tdpbf16ps_tile(const uint32_t *a, const uint32_t *b, float *c) {
    configure_tiles();
    _tile_loadd(0, c, 64);
    _tile_loadd(4, a, 64);
    _tile_loadd(6, b, 64);
    _tile_dpbf16ps(0, 4, 6);
    _tile_stored(0, c, 64);
    _tile_release();
}

int ak_tdpbf16ps_hardware(const uint32_t *a, const uint32_t *b, float *c) {
    if (ak_isa_detected() != AK_ISA_AMXBF16) return 0;
    tdpbf16ps_tile(a, b, c);
    return 1;
}

static float flush(float x) { return fpclassify(x) == FP_SUBNORMAL ? copysignf(0.0f, x) : x; }

int ak_amx_matches_sdm(void) {
    uint32_t a[256], b[256];
    float c[256], want[256];
    uint64_t x = 0x9e3779b97f4a7c15u;
    for (int trial = 0; trial < 8; trial++) {
        // Random bf16 over 40 binades (so the order of the sums shows), 1 in 8 denormal, either sign.
        for (int i = 0; i < 512; i++) {
            uint32_t pair = 0;
            for (int h = 0; h < 2; h++) {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                uint32_t exponent = x % 8 == 0 ? 0 : 107 + (uint32_t)((x >> 8) % 40);
                pair |= (uint32_t)(((x >> 60) & 1) << 15 | exponent << 7 | ((x >> 20) & 0x7f)) << (16 * h);
            }
            if (i < 256) a[i] = pair; else b[i - 256] = pair;
        }
        for (int i = 0; i < 256; i++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            c[i] = ((float)(x >> 40) / (float)(1u << 24) - 0.5f) * (i % 7 == 0 ? 0x1p-120f : 1.0f);
        }
        // The SDM: per output, an even and an odd FMA chain from +0 (DAZ, FTZ, nearest even), their
        // sum added to C.
        for (int m = 0; m < 16; m++)
            for (int n = 0; n < 16; n++) {
                float even = 0.0f, odd = 0.0f;
                for (int k = 0; k < 16; k++) {
                    uint32_t x = a[m * 16 + k], y = b[k * 16 + n];
                    even = flush(fmaf(ak_float_from_bf16((uint16_t)x), ak_float_from_bf16((uint16_t)y), even));
                    odd = flush(fmaf(ak_float_from_bf16((uint16_t)(x >> 16)), ak_float_from_bf16((uint16_t)(y >> 16)), odd));
                }
                want[m * 16 + n] = flush(flush(c[m * 16 + n]) + flush(even + odd));
            }
        tdpbf16ps_tile(a, b, c);
        if (memcmp(c, want, sizeof c) != 0) return 0;
    }
    return 1;
}
#endif
