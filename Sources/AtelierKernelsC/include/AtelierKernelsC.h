// Atelier's own deterministic GEMM kernels, in C where intrinsics demand it.
//
// Why our own: OpenBLAS picks its kernel family per CPU, and families round differently, so the
// same seed gave different pixels on AVX2 and AVX-512 workers unless every machine ran the slow
// common denominator. Here every output element C[i][j] is ONE fused-multiply-add chain over k in
// increasing order, starting from 0 (or from C when accumulating), with later K-blocks continuing
// the chain from the stored partial value. The vector width only decides how many (i, j) run side
// by side, so the scalar, AVX2 and AVX-512 paths give bit-identical results, whatever the tile
// sizes and however many threads split the work (the k axis is never split).
//
// The epilogue (alpha, then a per-row or per-column bias) is applied once, after the whole chain,
// as a separate multiply and add (never fused), identically on every path. This file set must be
// compiled with -ffp-contract=off so that the scalar code is not fused behind our back.
//
// Layout: everything is row-major. The driver (blocking over K, N, M and the threads) lives in
// Swift (AtelierKernels/GEMM.swift); here are the packing routines, the macro-kernel that runs the
// micro-kernels over one packed A block and one packed B block, and a serial whole-GEMM for
// callers that already run in parallel.

#ifndef ATELIER_KERNELS_C_H
#define ATELIER_KERNELS_C_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Instruction-set families of the micro-kernels. All give bit-identical fp32 results, and all
/// but amxbf16 bit-identical bf16 results (AMX tiles sum in their own order: a numerics class of
/// their own, see MacroKernelAMX.c).
typedef enum {
    AK_ISA_SCALAR = 0,  ///< portable C with fmaf: the reference, and the fallback
    AK_ISA_AVX2 = 1,    ///< AVX2 + FMA, 6×16 micro-tile
    AK_ISA_AVX512 = 2,  ///< AVX-512F, 6×32 micro-tile
    AK_ISA_AVX512BF16 = 3,  ///< AVX-512F fp32 kernels plus the AVX512_BF16 (`vdpbf16ps`) bf16 kernel
    AK_ISA_AMXBF16 = 4,  ///< avx512bf16, with the bf16 GEMM on AMX-BF16 tiles (`tdpbf16ps`)
} ak_isa;

/// The best family this CPU supports (CPUID + OS register-state checks).
int ak_isa_detected(void);
/// The fastest family for this CPU: the detected one, except avx512 (not avx512bf16) where
/// `vdpbf16ps` is slower than the fp32 FMAs (ak_vdpbf16ps_rate_ratio below 1). Same bits.
int ak_isa_default(void);
/// The family in use (the default one unless changed by ak_set_isa or ATELIER_KERNEL_ISA).
int ak_isa_current(void);
/// Selects a family; returns 0, or -1 (and changes nothing) when the CPU cannot run it.
/// Not thread-safe against running kernels: call before work starts (tests, start-up).
int ak_set_isa(int isa);
/// `vdpbf16ps` multiply-adds per second over 512-bit fp32 FMA multiply-adds per second on this
/// core, measured once (register-only loops, best of 5, well under a millisecond); 0 where the CPU
/// has no AVX512_BF16. Below 1, the default family is avx512, not avx512bf16: the bf16 GEMM then
/// runs on the fp32 kernels, with the same bits.
double ak_vdpbf16ps_rate_ratio(void);
/// Human-readable name of a family ("scalar", "avx2", "avx512", "avx512bf16", "amxbf16").
const char *ak_isa_name(int isa);
/// Micro-tile rows (MR) and columns (NR) of the family in use: packed panels are this shape.
int ak_mr(void);
int ak_nr(void);

/// An implicit im2col matrix: B[k][n] with k = (c·kh + ki)·kw + kj and n = oy·out_w + ox is
/// input[c][oy·stride − pad_top + ki][ox·stride − pad_left + kj], or 0 outside the image.
/// Packing reads the input image directly, so a convolution needs no column buffer.
typedef struct {
    const float *input;  ///< one image, [channels, height, width]
    int channels, height, width;
    int kh, kw, stride, pad_top, pad_left;
    int out_h, out_w;
} ak_conv_geometry;

/// Packs rows [i0, i0+mc) × k [k0, k0+kc) of A (logical M×K; stored A[i·lda+k], or A[k·lda+i]
/// when trans) into MR-row panels, zero-padding the last panel. dst holds ceil(mc/MR)·MR·kc floats.
void ak_pack_a(const float *a, long lda, int trans, int i0, int mc, int k0, int kc, float *dst);

/// A whole weight matrix A [m × k] (row-major, lda) packed once, at load, in the order the
/// driver reads it: K-block after K-block (each AK_KC deep, the last one shorter), each block
/// ceil(m/MR) MR-row panels kc deep, so block k0 starts at ceil(m/MR)·MR·k0 and its rows from
/// i0 (a multiple of MR) at + i0·kc. MR is the same for every ISA family, so one packed copy
/// serves all of them. ak_packed_a_floats gives the size; ak_pack_a_whole fills the K-block at
/// k0 (call it for every K-block, possibly from several threads); ak_unpack_a_whole restores the
/// plain matrix (the OpenBLAS fallback, and tests).
size_t ak_packed_a_floats(int m, int k);
void ak_pack_a_whole(const float *a, long lda, int m, int k0, int kc, float *dst);
void ak_unpack_a_whole(const float *packed, int m, int k, float *dst);

/// Packs k [k0, k0+kc) × columns [j0, j0+nc) of B (logical K×N; stored B[k·ldb+j], or B[j·ldb+k]
/// when trans) into NR-column panels, zero-padded. dst holds ceil(nc/NR)·NR·kc floats.
/// Panels [p0, p1) only (for splitting one packing across threads); pass 0, ceil(nc/NR) for all.
void ak_pack_b(const float *b, long ldb, int trans, int k0, int kc, int j0, int nc,
               int p0, int p1, float *dst);

/// The same for the implicit im2col matrix of a convolution.
void ak_pack_b_conv(const ak_conv_geometry *g, int k0, int kc, int j0, int nc,
                    int p0, int p1, float *dst);

/// C[0..mc)×[0..nc) (ldc) = chain over the packed kc, continuing from C when `accumulate`.
/// When `final`, the epilogue runs after the chain: v = v·alpha (if alpha ≠ 1), then
/// v = v + bias_row[i] (if non-null), then v = v + bias_col[j] (if non-null).
/// bias pointers are already offset to this block's first row / column.
void ak_macro_kernel(int mc, int nc, int kc, const float *apack, const float *bpack,
                     float *c, long ldc, int accumulate, int final, float alpha,
                     const float *bias_row, const float *bias_col);
/// That epilogue on one rows × cols tile of finished chains (bias pointers offset to the tile):
/// the macro-kernels run it per micro-tile, while the tile is still in L1.
void ak_epilogue_tile(float *c, long ldc, int rows, int cols, float alpha,
                      const float *bias_row, const float *bias_col);

/// A whole single-threaded GEMM (packing into thread-local buffers), for callers that already
/// run in parallel (attention heads): C[m×n] = alpha·op(A)·op(B) (+ C when accumulate) + biases.
void ak_sgemm_serial(int m, int n, int k, float alpha,
                     const float *a, long lda, int trans_a,
                     const float *b, long ldb, int trans_b,
                     float *c, long ldc, int accumulate,
                     const float *bias_row, const float *bias_col);

/// The same with A already packed whole (ak_pack_a_whole's layout of an m × k matrix) and B
/// plain row-major (ldb), no alpha and no biases: one Winograd plane's product on one thread, so
/// that the planes run side by side instead of each splitting a narrow GEMM across the threads.
/// The chains (and bits) equal the parallel driver's with a `.packed` A.
void ak_sgemm_packed_a_serial(int m, int n, int k, const float *apacked,
                              const float *b, long ldb, float *c, long ldc, int accumulate);

/// Rows [r0, r1) of one attention head on the calling thread: out[r][0..dv) =
/// softmax(scale · q[r]·Kᵀ)·V, K and V [m rows] (row strides ldk, ldv), q and out row strides
/// ldq, ldo; `causal` masks key j > query r. The same chains as ak_sgemm_serial for Q·Kᵀ (alpha =
/// scale) and for P·V, with ak_softmax_row between, so the bits equal that three-call form; but
/// K and V are packed once per call and the scores live only for AK_ATTENTION_ROWS query rows at a
/// time (in cache), where the three-call form re-packed K and V for every block of rows and
/// round-tripped 16 MB score blocks through memory. With `bf16` both products are the bf16 GEMM's
/// (the same bits as the three-call form on OwnGEMM's bf16 precision); the softmax stays fp32.
/// Returns 0, or -1 when out of memory.
int ak_attention_rows(int m, int d, int dv, float scale,
                      const float *q, long ldq, const float *k, long ldk,
                      const float *v, long ldv, float *out, long ldo,
                      int causal, int r0, int r1, int bf16);
enum { AK_ATTENTION_ROWS = 48 };

/// How the Winograd weight transforms read their weights: plain fp32 [cout][cin][3][3], fp32 as
/// ak_pack_a_whole left them, or bf16 [cout][cin][3][3] (uint16_t; widened exactly, denormals read
/// as zero like every bf16 read: a bf16 model's 3×3 convolutions run this fp32 arithmetic).
enum { AK_WEIGHTS_PLAIN = 0, AK_WEIGHTS_PACKED = 1, AK_WEIGHTS_BF16 = 2 };

/// Winograd F(2×2, 3×3), stride 1 (Winograd.c). The transformed operands are 16 planes, one per
/// position ξ of the 4×4 tile, `plane` floats apart:
/// - weights w [cout][cin][3][3] in the given `layout` (AK_WEIGHTS_…) →
///   u [16][cout][cin], or with `packed_out` 16 planes each packed as ak_pack_a_whole packs a
///   [cout × cin] matrix (plane = ak_packed_a_floats(cout, cin)), output channels [o0, o1);
///   -1 when out of memory;
/// - input x [cin][h][w] with the given top/left zero padding → v [16][cin][ldv], channels
///   [c0, c1), tile rows [ty0, ty1) (tw tiles each) at columns tile0…; -1 when out of memory;
/// - m [16][cout][ldm] → y [cout][hout][wout] (+ bias[o] when bias is not NULL), channels
///   [o0, o1), tile rows [ty0, ty1) from column tile0.
int ak_winograd_weights(const void *w, int layout, int cout, int cin, int o0, int o1, float *u, int packed_out);
int ak_winograd_input(const float *x, int cin, int h, int w, int pad_top, int pad_left,
                      int ty0, int ty1, int tw, int c0, int c1, float *v, long ldv, long tile0, size_t plane);
void ak_winograd_output(const float *m, long ldm, long tile0, size_t plane, int ty0, int ty1, int tw,
                        int o0, int o1, const float *bias, float *y, int hout, int wout);

/// Winograd F(4×4, 3×3), stride 1 (Winograd4.c): the same roles with 36 planes (6×6 tiles, 4×4
/// outputs each). The weights are transformed for input channels [c0, c1) only, into 36 planes each
/// packed as ak_pack_a_whole packs a [cout × (c1 − c0)] matrix (plane = ak_packed_a_floats(cout,
/// c1 − c0)), so that a big layer's transformed weights can be made a K-block at a time.
int ak_winograd4_weights(const void *w, int layout, int cout, int cin, int c0, int c1,
                         int o0, int o1, float *u);
int ak_winograd4_input(const float *x, int cin, int h, int w, int pad_top, int pad_left,
                       int ty0, int ty1, int tw, int c0, int c1, float *v, long ldv, long tile0, size_t plane);
/// The 36 GEMMs with the weights transformed on the fly, for output channels [o0, o1) (o0 a
/// multiple of AK_MR): m[ξ][o][t] (+)= Σ_c U[ξ][o][c] · V[ξ][c][t] over all cin input channels,
/// t < tiles, where U holds ak_winograd4_weights' values, made a block of AK_W4_FUSED_KC input
/// channels at a time into thread scratch right before the GEMMs use it, and `vpacked` holds V
/// as ak_winograd4_pack_v left it. The values and the chains (one FMA chain per element over c in
/// order, continued from m when `accumulate`) are those of ak_winograd4_weights followed by
/// ak_sgemm_packed_a_serial, so the bits are too; but the transformed weights never leave the
/// cache, where the unfused form writes and re-reads 36/9 of the weights per call. 0, or -1 when
/// out of memory.
int ak_winograd4_fused(const void *w, int layout, int cout, int cin, int o0, int o1,
                       const float *vpacked, int tiles, float *m, long ldm, size_t mplane, int accumulate);
/// Packs planes [x0, x1) of V (v[ξ][c][t], ldv = row stride, vplane floats between planes; cin
/// rows, tiles columns) as ak_winograd4_fused reads them: per plane, K-blocks of AK_W4_FUSED_KC
/// channels, each as ak_pack_b packs it; ak_winograd4_packed_v_floats(cin, tiles) floats a plane.
void ak_winograd4_pack_v(const float *v, long ldv, size_t vplane, int cin, int tiles, int x0, int x1, float *vpacked);
size_t ak_winograd4_packed_v_floats(int cin, int tiles);
enum { AK_W4_FUSED_KC = 128 };
void ak_winograd4_output(const float *m, long ldm, long tile0, size_t plane, int ty0, int ty1, int tw,
                         int o0, int o1, const float *bias, float *y, int hout, int wout);

/// Softmax of one row in place over its first `valid` entries (later ones set to 0): the same
/// bits on every path (one exp polynomial, eight partial sums in a fixed tree).
void ak_softmax_row(float *row, int cols, int valid);
/// softmax(scale · row) for a finite scale > 0, the same bits as scaling the row first (x·scale is
/// monotonic in x, so the maximum of the scaled row is the scaled maximum) without its own sweep:
/// attention folds Q·Kᵀ's scale in here.
void ak_softmax_row_scaled(float *row, int cols, int valid, float scale);
/// The same softmax with its normalisation written as bf16 (`out`, cols values; row keeps the
/// exponentials): the bits ak_softmax_row_scaled then ak_f32_to_bf16 give, one fp32 sweep fewer.
/// The bf16 attention packs P·V's A from it.
void ak_softmax_row_bf16(float *row, int cols, int valid, float scale, uint16_t *out);

/// Mean of x[0..n) and the sum of squared deviations from it, in double (two passes, eight
/// partial sums in a fixed tree): GroupNorm/LayerNorm statistics, the same bits on every path.
void ak_moments(const float *x, long n, double *mean, double *sum_sq_dev);

/// y[i] = exp(x[i]) with the one polynomial the softmax, GELU and SiLU kernels use (within 2 ulp
/// of libm; 0 below −87.3; the same bits on every path). y may equal x.
void ak_exp(const float *x, float *y, long n);

/// y[i] = x[i] / (1 + exp(−x[i])) (SiLU), the same bits on every path. y may equal x.
void ak_silu(const float *x, float *y, long n);

/// y[i] = GELU(x[i]) (erf form), the same bits on every path.
void ak_gelu(const float *x, float *y, long n);
/// GEGLU over rows of 2·d: y[r][i] = x[r][i] · GELU(x[r][d + i]).
void ak_geglu_rows(const float *x, float *y, long rows, long d);

/// A 64-byte-aligned scratch buffer of at least `floats` floats, owned by the calling thread
/// (slot 0…14: 0 per-task A, 1 B, 4 shared A of the parallel driver; 2, 3 the serial GEMM; 6, 7
/// the bf16 packers' fp32 panels; 8…11 and 13 attention; 12 the AMX macro-kernel's edges; 14 the
/// fused Winograd GEMM's block of transformed weights), grown as
/// needed and kept for reuse. Never free it.
float *ak_thread_scratch(int slot, size_t floats);

/// Frees this thread's scratch buffer `slot` (the next ak_thread_scratch allocates it again): for
/// buffers too big to keep between calls, such as a VAE attention head's packed keys and values.
void ak_thread_scratch_release(int slot);

/// Atomically adds 1 to *counter and returns the previous value (the parallel driver's task queue).
long ak_next_task(long *counter);

/// Runs fn(ctx, i) for every i in [0, count) on the calling thread and threads − 1 pool workers
/// (ThreadPool.c: persistent threads that spin briefly between calls, then sleep), each taking
/// the next index from one counter; returns 0 once all have run. Returns −1, running nothing,
/// when threads < 2, when called from inside a task, while another thread's call is in flight,
/// or where there is no pool (not Linux): the caller then runs the tasks its own way.
int ak_pool_run(int threads, long count, void (*fn)(void *ctx, long task), void *ctx);

// ---- bf16 precision (BF16.c, PackingBF16.c, MacroKernelBF16.c) --------------------------------
// The bf16 GEMM rounds both operands to bf16 and accumulates each C element in fp32 as one chain
// over k pairs in order, each pair odd k first then even k, with DAZ/FTZ: exactly `vdpbf16ps`.
// AVX512_BF16 CPUs run that instruction; every other CPU runs the fp32 micro-kernels on panels
// whose k order is swapped within each pair, under DAZ/FTZ. Same bits everywhere (x86).
// The amxbf16 family is the exception: AMX tiles (`tdpbf16ps`) sum each 16-pair step as an even
// and an odd chain added at the end (the Intel SDM's definition), so it is a numerics class of
// its own, used for K-blocks of at least 16 pairs (shorter ones run `vdpbf16ps`).

/// fp32 → bf16, round to nearest even; NaN stays a (quiet) NaN; zero and denormals → signed zero.
uint16_t ak_bf16_from_float(float f);
/// bf16 → fp32 (exact); a denormal bf16 reads as signed zero.
float ak_float_from_bf16(uint16_t h);
void ak_f32_to_bf16(const float *src, uint16_t *dst, long n);
/// dst[i] = bf16(src[i]·scale): the fp32 product, then ak_bf16_from_float's rounding.
void ak_f32_to_bf16_scaled(const float *src, uint16_t *dst, long n, float scale);
void ak_bf16_to_f32(const uint16_t *src, float *dst, long n);
/// 1 when the bf16 GEMM packs the native pair layout (families avx512bf16 and amxbf16: B panels
/// [kcp/2][R] of uint32 pairs), 0 when it emulates `vdpbf16ps` on the fp32 kernels.
int ak_bf16_native(void);
/// 1 when fp32 → bf16 rounding may use `vcvtne2ps2bf16`: the CPU has AVX512_BF16 and the family
/// in use is avx512 or above (the default family is avx512 where `vdpbf16ps` is slow, see
/// ak_vdpbf16ps_rate_ratio; the conversion is fast there all the same).
int ak_bf16_round_native(void);
/// 1 when a K-block of depth kc runs on AMX tiles (family amxbf16, at least 16 k pairs): A is then
/// packed row-major, row i at i·kcp floats holding its k pairs as uint32, zero up to a whole
/// 16-pair step. The packers and the macro-kernel decide with this one function.
int ak_bf16_amx(int kc);
/// Rows per M-block step of the bf16 driver: AK_MR, or 48 (a multiple of both MR and two AMX
/// tiles) on family amxbf16, so that blocks rarely end in a part-filled tile.
int ak_bf16_row_step(void);
/// Sets DAZ and FTZ on this thread, returning the previous MXCSR for ak_bf16_mode_leave.
unsigned ak_bf16_mode_enter(void);
void ak_bf16_mode_leave(unsigned saved);

/// The packers of the bf16 GEMM: the same arguments as their fp32 counterparts, writing the bf16
/// layout (panel stride R·kcp floats, kcp = kc rounded up to even). `_stored` read bf16 operands:
/// A row-major (conv weights [M][lda]), B transposed (linear weights, B[j·ldb + k]).
void ak_pack_a_bf16(const float *a, long lda, int trans, int i0, int mc, int k0, int kc, float *dst);
void ak_pack_a_bf16_stored(const uint16_t *a, long lda, int i0, int mc, int k0, int kc, float *dst);
void ak_pack_b_bf16(const float *b, long ldb, int trans, int k0, int kc, int j0, int nc,
                    int p0, int p1, float *dst);
void ak_pack_b_conv_bf16(const ak_conv_geometry *g, int k0, int kc, int j0, int nc,
                         int p0, int p1, float *dst);
void ak_pack_b_bf16_stored_t(const uint16_t *b, long ldb, int k0, int kc, int j0, int nc,
                             int p0, int p1, float *dst);
/// ak_macro_kernel for bf16-packed panels (kc is the logical depth of this K-block).
void ak_macro_kernel_bf16(int mc, int nc, int kc, const float *apack, const float *bpack,
                          float *c, long ldc, int accumulate, int final, float alpha,
                          const float *bias_row, const float *bias_col);
/// `vdpbf16ps` itself on n lanes (a multiple of 16): out[i] = dpbf16(acc[i], a[i], b[i]) with a, b
/// bf16 pairs. Only on CPUs of family avx512bf16 (the instruction check of the tests).
long ak_dpbf16_hardware(const uint32_t *a, const uint32_t *b, const float *acc, long n, float *out);
/// `tdpbf16ps` itself on one 16×16 tile: c[16][16] += a[16 rows][16 pairs] · b[16 pairs][16 cols]
/// (uint32 bf16 pairs, even k low). Returns 1, or 0 (nothing done) where the family is not amxbf16
/// (the instruction check of the tests).
int ak_tdpbf16ps_hardware(const uint32_t *a, const uint32_t *b, float *c);
/// 1 when this thread's `tdpbf16ps` equals the Intel SDM's definition (an even and an odd chain
/// per output, their sum added to C) on random tiles with denormals: the start-up check without
/// which family amxbf16 is not detected. Only call where the CPU has AMX-BF16 and the OS granted
/// the tile state.
int ak_amx_matches_sdm(void);

/// Blocking constants of the driver (K and M blocks), shared with the Swift driver.
#ifndef AK_KC_VALUE
#define AK_KC_VALUE 384
#endif
#ifndef AK_MC_VALUE
#define AK_MC_VALUE 240
#endif
enum { AK_KC = AK_KC_VALUE, AK_MC = AK_MC_VALUE };

#ifdef __cplusplus
}
#endif

#endif
