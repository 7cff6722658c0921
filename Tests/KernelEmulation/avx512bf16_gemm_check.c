// Checks the bf16 GEMM bit for bit on a machine WITHOUT AVX512_BF16: scripts/avx512-emulation-check.sh
// compiles the kernels with the AVX-512 and AVX512_BF16 intrinsics emulated (SIMDe for AVX-512F;
// `vdpbf16ps` by its Intel SDM definition, because SIMDe's own version sums the pair in another
// order) and the dispatch forced up to the avx512bf16 family. Every family the harness can select
// (avx2, avx512 = the emulated layout on the fp32 kernels; avx512bf16 = the native pair layout and
// its micro-kernel) must equal a scalar chain: operands rounded to bf16, pairs odd k then even k,
// denormal partial sums flushed. The amxbf16 family (AMX tiles emulated by amx_sdm.h) must equal
// its own chain, the tiles' sums. Linear (fp32 × stored bf16ᵀ), conv (stored bf16 × implicit
// im2col) and plain fp32 × fp32, odd k and k across K-blocks, row counts that end in part-filled tiles.
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>
#include "AtelierKernelsC.h"

static float ftz(float x) { return fpclassify(x) == FP_SUBNORMAL ? copysignf(0.0f, x) : x; }
static float rb(float x) { return ak_float_from_bf16(ak_bf16_from_float(x)); }

/// C[m×n] = chain over A (m×k, row-major) and B (k×n, row-major), both rounded, + bias_row.
/// `amx`: K-blocks (AK_KC deep) of at least 16 pairs are summed as AMX tiles do (see amx_sdm.h):
/// per 16-pair step an even and an odd chain from zero (pairs past the block count as zero), their
/// sum added to C; shorter K-blocks, and every block otherwise, are the vdpbf16ps chain.
static void reference(int m, int n, int k, const float *a, const float *b, const float *bias_row, float *c, int amx) {
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            float acc = 0;
            for (int k0 = 0; k0 < k; k0 += AK_KC) {
                int kc = k - k0 < AK_KC ? k - k0 : AK_KC, kp = (kc + 1) / 2;
                if (amx && kp >= 16) {
                    for (int s = 0; s < (kp + 15) / 16; s++) {
                        float even = 0, odd = 0;
                        for (int q = 16 * s; q < 16 * s + 16; q++) {
                            int pe = k0 + 2 * q, po = pe + 1;
                            float ae = q < kp ? rb(a[(long)i * k + pe]) : 0, be = q < kp ? rb(b[(long)pe * n + j]) : 0;
                            float ao = 2 * q + 1 < kc ? rb(a[(long)i * k + po]) : 0, bo = 2 * q + 1 < kc ? rb(b[(long)po * n + j]) : 0;
                            even = ftz(fmaf(ae, be, even));
                            odd = ftz(fmaf(ao, bo, odd));
                        }
                        acc = ftz(acc + ftz(even + odd));
                    }
                    continue;
                }
                for (int p = k0; p < k0 + kc; p += 2) {
                    if (p + 1 < k0 + kc) acc = ftz(fmaf(rb(a[(long)i * k + p + 1]), rb(b[(long)(p + 1) * n + j]), acc));
                    acc = ftz(fmaf(rb(a[(long)i * k + p]), rb(b[(long)p * n + j]), acc));
                }
            }
            if (bias_row) acc = ftz(acc + bias_row[i]);
            c[(long)i * n + j] = acc;
        }
}

static float rnd(void) { return rand() / (float)RAND_MAX - 0.5f; }

int main(void) {
    srand(5);
    long bad = 0, total = 0, classes_differ = 0;
    int families[] = {AK_ISA_AVX2, AK_ISA_AVX512, AK_ISA_AVX512BF16, AK_ISA_AMXBF16};
    for (int trial = 0; trial < 30; trial++) {
        int kind = trial % 3;  // 0 fp32×fp32, 1 linear (fp32 × stored bf16ᵀ), 2 conv (stored bf16 × im2col)
        int m = 1 + rand() % 80, n = 1 + rand() % 90, k = 1 + rand() % 900;
        int cin = 1, h = 1, w = 1, kk = 3, s = 1, pt = 1, pl = 1, ho = 1, wo = 1;
        float *x = NULL;
        if (kind == 2) {
            cin = 1 + rand() % 50; h = 2 + rand() % 12; w = 2 + rand() % 30; s = 1 + rand() % 2;
            ho = (h + 2 - kk) / s + 1; wo = (w + 2 - kk) / s + 1; k = cin * kk * kk; n = ho * wo;
            x = malloc(4L * cin * h * w);
            for (long i = 0; i < (long)cin * h * w; i++) x[i] = rnd();
        }
        float *a = malloc(4L * m * k), *b = malloc(4L * k * n), *bias = malloc(4L * m);
        float *ref = malloc(4L * m * n), *ref_amx = malloc(4L * m * n), *c = malloc(4L * m * n);
        uint16_t *a16 = malloc(2L * m * k), *bt16 = malloc(2L * n * k);
        for (long i = 0; i < (long)m * k; i++) a[i] = rnd();
        for (long i = 0; i < (long)k * n; i++) b[i] = rnd();
        for (int i = 0; i < m; i++) bias[i] = rnd();
        if (kind == 2) {  // the explicit im2col matrix, for the reference
            for (int p = 0; p < k; p++)
                for (int q = 0; q < n; q++) {
                    int ci = p / 9, ki = (p / 3) % 3, kj = p % 3, oy = q / wo, ox = q % wo;
                    int iy = oy * s - pt + ki, ix = ox * s - pl + kj;
                    b[(long)p * n + q] = (iy >= 0 && iy < h && ix >= 0 && ix < w) ? x[(long)ci * h * w + iy * w + ix] : 0.0f;
                }
        }
        ak_f32_to_bf16(a, a16, (long)m * k);
        for (int j = 0; j < n; j++)
            for (int p = 0; p < k; p++) bt16[(long)j * k + p] = ak_bf16_from_float(b[(long)p * n + j]);
        reference(m, n, k, a, b, bias, ref, 0);
        reference(m, n, k, a, b, bias, ref_amx, 1);
        for (long i = 0; i < (long)m * n; i++) classes_differ += memcmp(&ref[i], &ref_amx[i], 4) != 0;
        ak_conv_geometry g = {x, cin, h, w, kk, kk, s, pt, pl, ho, wo};
        for (int f = 0; f < 4; f++) {
            const float *want = families[f] == AK_ISA_AMXBF16 ? ref_amx : ref;
            if (ak_set_isa(families[f]) != 0) { printf("cannot select %s\n", ak_isa_name(families[f])); return 1; }
            int nr = ak_nr(), panels = (n + nr - 1) / nr;
            float *bp = aligned_alloc(64, 4L * panels * nr * AK_KC + 64), *ap = aligned_alloc(64, 4L * (m + 6) * AK_KC + 64);
            for (int pc = 0; pc < k; pc += AK_KC) {
                int kc = k - pc < AK_KC ? k - pc : AK_KC;
                if (kind == 0) {
                    ak_pack_a_bf16(a, k, 0, 0, m, pc, kc, ap);
                    ak_pack_b_bf16(b, n, 0, pc, kc, 0, n, 0, panels, bp);
                } else if (kind == 1) {
                    ak_pack_a_bf16(a, k, 0, 0, m, pc, kc, ap);
                    ak_pack_b_bf16_stored_t(bt16, k, pc, kc, 0, n, 0, panels, bp);
                } else {
                    ak_pack_a_bf16_stored(a16, k, 0, m, pc, kc, ap);
                    ak_pack_b_conv_bf16(&g, pc, kc, 0, n, 0, panels, bp);
                }
                ak_macro_kernel_bf16(m, n, kc, ap, bp, c, n, pc > 0, pc + kc >= k, 1.0f, bias, NULL);
            }
            long fb = 0;
            for (long i = 0; i < (long)m * n; i++) if (memcmp(&c[i], &want[i], 4)) fb++;
            if (fb) printf("trial %d kind %d %s: %ld of %ld differ (m %d n %d k %d)\n", trial, kind, ak_isa_name(families[f]), fb, (long)m * n, m, n, k);
            bad += fb; total += (long)m * n;
            free(bp); free(ap);
        }
        free(a); free(b); free(bias); free(ref); free(ref_amx); free(c); free(a16); free(bt16); free(x);
    }
    // The start-up check's own SDM reference against the emulated tiles: the two definitions agree.
    if (!ak_amx_matches_sdm()) { printf("ak_amx_matches_sdm disagrees with the emulated tdpbf16ps\n"); bad++; }
    printf("bf16 gemm mismatches %ld of %ld (avx2, avx512, avx512bf16, amxbf16); the AMX chain differs from the vdpbf16ps one in %ld\n",
           bad, total, classes_differ);
    // The two references must really differ, else the amxbf16 check proves nothing about its order.
    return bad != 0 || classes_differ == 0;
}
