// AMX tiles emulated by their Intel SDM definitions, for scripts/avx512-emulation-check.sh: the
// AMX macro-kernel (MacroKernelAMX.c) is compiled against these instead of <immintrin.h> on a CPU
// without AMX, so its data movement — layouts, strides, edges, the zero padding — is checked bit
// for bit against a scalar chain. Whether a real CPU sums as the SDM says is checked by
// BF16GEMMTests on machines with AMX (`tdpbf16ps` against this same definition).
//
// TDPBF16PS, per output (m, n) and call: two chains from +0 over the pairs k of the call, the
// even products and the odd products, each an FMA rounded to nearest even with denormal inputs
// read as zero and denormal results flushed; then C = C + (even + odd), flushed likewise.
#ifndef AK_AMX_SDM_H
#define AK_AMX_SDM_H
#include <math.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    uint8_t palette_id, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} ak_sdm_tile_config;

static _Thread_local ak_sdm_tile_config ak_sdm_cfg;
static _Thread_local uint8_t ak_sdm_tiles[8][16][64];

static inline float ak_sdm_daz(float x) { return fpclassify(x) == FP_SUBNORMAL ? copysignf(0.0f, x) : x; }
static inline float ak_sdm_bf16(uint32_t h) {
    uint32_t u = (h & 0xffffu) << 16;
    float f;
    memcpy(&f, &u, 4);
    return ak_sdm_daz(f);
}

static inline void ak_sdm_loadconfig(const void *p) {
    memcpy(&ak_sdm_cfg, p, 64);
    memset(ak_sdm_tiles, 0, sizeof ak_sdm_tiles);  // LDTILECFG zeroes the tiles
}
static inline void ak_sdm_loadd(int t, const void *base, long stride) {
    memset(ak_sdm_tiles[t], 0, sizeof ak_sdm_tiles[t]);
    for (int r = 0; r < ak_sdm_cfg.rows[t]; r++)
        memcpy(ak_sdm_tiles[t][r], (const uint8_t *)base + r * stride, ak_sdm_cfg.colsb[t]);
}
static inline void ak_sdm_stored(int t, void *base, long stride) {
    for (int r = 0; r < ak_sdm_cfg.rows[t]; r++)
        memcpy((uint8_t *)base + r * stride, ak_sdm_tiles[t][r], ak_sdm_cfg.colsb[t]);
}
static inline void ak_sdm_dpbf16ps(int d, int a, int b) {
    int rows = ak_sdm_cfg.rows[d], n_out = ak_sdm_cfg.colsb[d] / 4, pairs = ak_sdm_cfg.colsb[a] / 4;
    for (int m = 0; m < rows; m++) {
        float *cr = (float *)(void *)ak_sdm_tiles[d][m];
        const uint32_t *ar = (const uint32_t *)(const void *)ak_sdm_tiles[a][m];
        for (int n = 0; n < n_out; n++) {
            float even = 0.0f, odd = 0.0f;
            for (int k = 0; k < pairs; k++) {
                uint32_t bv = ((const uint32_t *)(const void *)ak_sdm_tiles[b][k])[n];
                even = ak_sdm_daz(fmaf(ak_sdm_bf16(ar[k]), ak_sdm_bf16(bv), even));
                odd = ak_sdm_daz(fmaf(ak_sdm_bf16(ar[k] >> 16), ak_sdm_bf16(bv >> 16), odd));
            }
            cr[n] = ak_sdm_daz(ak_sdm_daz(cr[n]) + ak_sdm_daz(even + odd));
        }
    }
}

#define _tile_loadconfig(p) ak_sdm_loadconfig(p)
#define _tile_loadd(t, base, stride) ak_sdm_loadd((t), (base), (stride))
#define _tile_stored(t, base, stride) ak_sdm_stored((t), (base), (stride))
#define _tile_zero(t) memset(ak_sdm_tiles[(t)], 0, sizeof ak_sdm_tiles[(t)])
#define _tile_dpbf16ps(d, a, b) ak_sdm_dpbf16ps((d), (a), (b))
#define _tile_release() memset(&ak_sdm_cfg, 0, sizeof ak_sdm_cfg)
#endif
