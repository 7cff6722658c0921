// One attention head, query rows [r0, r1): Q·Kᵀ, softmax, ·V on packed panels (see
// ak_attention_rows in AtelierKernelsC.h). K-blocks, chains and epilogues are exactly those of
// ak_sgemm_serial, so this is only a re-ordering of the same work: K and V are packed once, and
// each block of AK_ATTENTION_ROWS query rows runs its three steps while its scores are in cache.
// With `bf16`, both products are the bf16 GEMM's (PackingBF16.c, MacroKernelBF16.c: operands
// rounded to bf16 as they are packed, fp32 sums, `vdpbf16ps` or AMX tiles where present); the
// softmax stays fp32.

#include <math.h>
#include "AtelierKernelsC.h"
#include "MicroKernels.h"

/// One K-block of B (all `panels` panels, nc columns) packed in the given precision.
static void pack_b(int bf16, const float *b, long ldb, int trans, int pc, int kc, int nc, int panels, float *dst) {
    if (bf16) ak_pack_b_bf16(b, ldb, trans, pc, kc, 0, nc, 0, panels, dst);
    else ak_pack_b(b, ldb, trans, pc, kc, 0, nc, 0, panels, dst);
}

/// One K-block of C[rows × nc] (+)= A·B in the given precision: A's rows [i0, i0+rows) packed,
/// then the macro-kernel, alpha applied once the chain is complete.
static void block(int bf16, const float *a, long lda, int i0, int rows, int pc, int kc, float *apack,
                  const float *bpack, int nc, float *c, long ldc, int accumulate, int final, float alpha) {
    if (bf16) {
        ak_pack_a_bf16(a, lda, 0, i0, rows, pc, kc, apack);
        ak_macro_kernel_bf16(rows, nc, kc, apack, bpack, c, ldc, accumulate, final, alpha, NULL, NULL);
    } else {
        ak_pack_a(a, lda, 0, i0, rows, pc, kc, apack);
        ak_macro_kernel(rows, nc, kc, apack, bpack, c, ldc, accumulate, final, alpha, NULL, NULL);
    }
}

int ak_attention_rows(int m, int d, int dv, float scale,
                      const float *q, long ldq, const float *k, long ldk,
                      const float *v, long ldv, float *out, long ldo,
                      int causal, int r0, int r1, int bf16) {
    if (r1 <= r0 || dv <= 0) return 0;
    const int nr = ak_nr(), rb = AK_ATTENTION_ROWS;
    if (m <= 0) {  // no keys: P·V is an empty sum
        for (int r = r0; r < r1; r++)
            for (int j = 0; j < dv; j++) out[(size_t)r * ldo + j] = 0.0f;
        return 0;
    }
    const int panelsK = (m + nr - 1) / nr, panelsV = (dv + nr - 1) / nr;
    const int kcMax = d > m ? (d < AK_KC ? d : AK_KC) : (m < AK_KC ? m : AK_KC);
    // bf16 panels hold whole k pairs: a K-block of odd depth (only the last; AK_KC is even) packs
    // one more k, so every block still starts at panels·NR·pc.
    const int extra = bf16 ? 1 : 0;
    float *packK = ak_thread_scratch(8, (size_t)panelsK * nr * (d > 0 ? d + extra : 1));
    float *packV = ak_thread_scratch(9, (size_t)panelsV * nr * (m + extra));
    float *scores = ak_thread_scratch(10, (size_t)rb * m);
    float *apack = ak_thread_scratch(11, (size_t)rb * (kcMax + extra));
    // bf16: the softmax writes the probabilities as bf16 rows, which P·V packs as stored bf16.
    uint16_t *probs = bf16 ? (uint16_t *)(void *)ak_thread_scratch(13, ((size_t)rb * m + 1) / 2) : NULL;
    if (!packK || !packV || !scores || !apack || (bf16 && !probs)) return -1;
    // Kᵀ as B [d × m] (K stored [m][ldk], read transposed), K-block after K-block over d.
    for (int pc = 0; pc < d; pc += AK_KC) {
        int kc = d - pc < AK_KC ? d - pc : AK_KC;
        pack_b(bf16, k, ldk, 1, pc, kc, m, panelsK, packK + (size_t)panelsK * nr * pc);
    }
    // V as B [m × dv], K-block after K-block over m.
    for (int pc = 0; pc < m; pc += AK_KC) {
        int kc = m - pc < AK_KC ? m - pc : AK_KC;
        pack_b(bf16, v, ldv, 0, pc, kc, dv, panelsV, packV + (size_t)panelsV * nr * pc);
    }
    // A finite positive scale goes into the softmax (the same bits, one sweep of the scores fewer);
    // any other is applied to the finished scores, as the three-call form does.
    const int fold = isfinite(scale) && scale > 0.0f;
    for (int i0 = r0; i0 < r1; i0 += rb) {
        int rows = r1 - i0 < rb ? r1 - i0 : rb;
        if (d == 0)  // no depth: every score is an empty sum (times the scale)
            for (size_t i = 0; i < (size_t)rows * m; i++) scores[i] = 0.0f * scale;  // +0 whenever the scale folds
        for (int pc = 0; pc < d; pc += AK_KC) {
            int kc = d - pc < AK_KC ? d - pc : AK_KC;
            block(bf16, q, ldq, i0, rows, pc, kc, apack, packK + (size_t)panelsK * nr * pc, m, scores, m,
                  pc > 0, pc + kc >= d, fold ? 1.0f : scale);
        }
        for (int r = 0; r < rows; r++) {
            int valid = causal ? (i0 + r + 1 < m ? i0 + r + 1 : m) : m;
            if (bf16) ak_softmax_row_bf16(scores + (size_t)r * m, m, valid, fold ? scale : 1.0f, probs + (size_t)r * m);
            else ak_softmax_row_scaled(scores + (size_t)r * m, m, valid, fold ? scale : 1.0f);
        }
        for (int pc = 0; pc < m; pc += AK_KC) {
            int kc = m - pc < AK_KC ? m - pc : AK_KC;
            float *cv = out + (size_t)i0 * ldo;
            if (bf16) {  // the same packed operand as block()'s from the fp32 probabilities
                ak_pack_a_bf16_stored(probs, m, 0, rows, pc, kc, apack);
                ak_macro_kernel_bf16(rows, dv, kc, apack, packV + (size_t)panelsV * nr * pc, cv, ldo, pc > 0,
                                     pc + kc >= m, 1.0f, NULL, NULL);
            } else {
                block(0, scores, m, 0, rows, pc, kc, apack, packV + (size_t)panelsV * nr * pc, dv, cv, ldo,
                      pc > 0, pc + kc >= m, 1.0f);
            }
        }
    }
    // Keep packed heads between calls only while they are small (a UNet head at 64² tokens packs
    // 2 MB); a VAE head at 16,384 tokens packs 64 MB per thread, which would stay resident.
    if ((size_t)panelsK * nr * (d + extra) + (size_t)panelsV * nr * (m + extra) > ((size_t)4 << 20)) {
        ak_thread_scratch_release(8);
        ak_thread_scratch_release(9);
    }
    return 0;
}
