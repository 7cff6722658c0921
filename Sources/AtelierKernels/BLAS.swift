import CBLAS
import AtelierKernelsC
import Foundation

/// Every matrix product in the engine goes through here, so the backend choice, thread policy
/// and call conventions live in one place.
public enum BLAS {
    /// Which GEMM implementation runs: Atelier's own deterministic kernels (the default: the same
    /// bits on every x86 CPU with AVX2 or AVX-512, and on the scalar fallback) or OpenBLAS, kept
    /// as the reference and fallback (`ATELIER_KERNELS=openblas`; its results then match only
    /// machines running the same OpenBLAS kernel family).
    public enum Backend: String, CaseIterable, Sendable {
        case atelier, openblas
    }

    /// The backend in use: `$ATELIER_KERNELS`, else `.atelier`.
    nonisolated(unsafe) public static var backend: Backend = {
        if let s = ProcessInfo.processInfo.environment["ATELIER_KERNELS"], let b = Backend(rawValue: s.lowercased()) { return b }
        return .atelier
    }()

    /// C[m×n] = alpha · op(A) · op(B) + beta · C (+ biasRow[i]) (+ biasColumn[j]), row-major, with
    /// explicit leading dimensions so that strided views (one attention head inside a
    /// [tokens, channels] matrix) need no copies. beta is 0 or 1.
    ///
    /// Determinism: with the own kernels every element is one fma chain over k in order, whatever
    /// the thread count or instruction set. On the OpenBLAS path, OpenBLAS always runs single-
    /// threaded and large products are cut into blocks of a **fixed** size that run in parallel
    /// (its multithreaded GEMM rounds tail tiles differently depending on the thread count).
    @inline(__always)
    public static func gemm(
        transA: Bool = false, transB: Bool = false,
        m: Int, n: Int, k: Int,
        alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int,
        biasRow: UnsafePointer<Float>? = nil, biasColumn: UnsafePointer<Float>? = nil
    ) {
        precondition(beta == 0 || beta == 1, "gemm: beta must be 0 or 1")
        flops &+= 2 * m * n * k
        if backend == .atelier {
            OwnGEMM.multiply(m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, transA: transA,
                             b: .matrix(b, ld: ldb, transposed: transB), accumulate: beta == 1,
                             c: c, ldc: ldc, biasRow: biasRow, biasColumn: biasColumn)
            return
        }
        openblasGemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                     b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        addBiases(m: m, n: n, c: c, ldc: ldc, biasRow: biasRow, biasColumn: biasColumn)
    }

    /// The OpenBLAS path of `gemm`, in fixed-size blocks (see there).
    static func openblasGemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        _ = singleThreaded
        let work = m * n * k
        if work < 1 << 21 || (m <= blockRows && n <= blockColumns) {
            sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
            return
        }
        if m >= n {
            // Blocks of rows: A's rows (or columns, when transposed) and C's rows.
            let blocks = (m + blockRows - 1) / blockRows
            Parallel.forEachChunk(blocks) { range in
                for blk in range {
                    let r0 = blk * blockRows, rows = min(blockRows, m - r0)
                    let aBlock = transA ? a + r0 : a + r0 * lda
                    sgemm(transA, transB, rows, n, k, alpha, aBlock, lda, b, ldb, beta, c + r0 * ldc, ldc)
                }
            }
        } else {
            let blocks = (n + blockColumns - 1) / blockColumns
            Parallel.forEachChunk(blocks) { range in
                for blk in range {
                    let c0 = blk * blockColumns, cols = min(blockColumns, n - c0)
                    let bBlock = transB ? b + c0 * ldb : b + c0
                    sgemm(transA, transB, m, cols, k, alpha, a, lda, bBlock, ldb, beta, c + c0, ldc)
                }
            }
        }
    }

    /// OpenBLAS's sgemm (C = A·B, square-ish, row-major) in fixed blocks over our threads, whatever
    /// the backend: the outside reference that benchmarks report ratios against.
    public static func openblasReferenceGemm(m: Int, n: Int, k: Int, a: UnsafePointer<Float>,
                                             b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>) {
        openblasGemm(transA: false, transB: false, m: m, n: n, k: k, alpha: 1, a: a, lda: k,
                     b: b, ldb: n, beta: 0, c: c, ldc: n)
    }

    /// The epilogue of the OpenBLAS path: the same separate adds as the own kernels' epilogue.
    static func addBiases(m: Int, n: Int, c: UnsafeMutablePointer<Float>, ldc: Int,
                          biasRow: UnsafePointer<Float>?, biasColumn: UnsafePointer<Float>?) {
        guard biasRow != nil || biasColumn != nil else { return }
        Parallel.forEachChunk(m, grain: 16) { range in
            for i in range {
                let row = c + i * ldc
                if let biasRow { let v = biasRow[i]; for j in 0..<n { row[j] += v } }
                if let biasColumn { for j in 0..<n { row[j] += biasColumn[j] } }
            }
        }
    }

    /// One single-threaded product, for callers that already run in parallel (attention heads).
    @inline(__always)
    public static func gemmSerial(
        transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        precondition(beta == 0 || beta == 1, "gemm: beta must be 0 or 1")
        if backend == .atelier {
            ak_sgemm_serial(Int32(m), Int32(n), Int32(k), alpha, a, lda, transA ? 1 : 0, b, ldb, transB ? 1 : 0,
                            c, ldc, beta == 1 ? 1 : 0, nil, nil)
            return
        }
        _ = singleThreaded
        sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    }

    /// Fixed block sizes of the parallel split (multiples of every OpenBLAS unroll factor).
    public static let blockRows = 256
    public static let blockColumns = 512

    @inline(__always)
    static func sgemm(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
                      _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                      _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
        cblas_sgemm(CblasRowMajor,
                    transA ? CblasTrans : CblasNoTrans,
                    transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha,
                    a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// OpenBLAS runs in the calling thread only; parallelism is ours (see `gemm`).
    static let singleThreaded: Void = { openblas_set_num_threads(1) }()

    /// Floating-point operations issued through `gemm` since start (for benchmarks: achieved
    /// GFLOP/s of a network vs. a bare GEMM measured in the same run).
    nonisolated(unsafe) public static var flops = 0

    /// The kernel family OpenBLAS picked for this CPU ("SkylakeX", "Haswell", "Prescott", …).
    public static var coreName: String {
        guard let p = openblas_get_corename() else { return "unknown" }
        return String(cString: p)
    }

    /// The kernel family this CPU can run, from its feature flags, when OpenBLAS fell back to a
    /// generic SSE kernel because it did not recognise the CPU model (OpenBLAS 0.3.21, as Debian 12
    /// ships it, predates e.g. Sapphire Rapids and picks "Prescott" there: 5× slower). nil when
    /// OpenBLAS's own choice stands.
    public static func betterCoreType(cpuFlags: Set<String>, current: String) -> String? {
        let generic: Set<String> = ["prescott", "core2", "penryn", "dunnington", "nehalem", "atom", "unknown"]
        guard generic.contains(current.lowercased()) else { return nil }
        if ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"].allSatisfy(cpuFlags.contains) { return "SkylakeX" }
        if ["avx2", "fma"].allSatisfy(cpuFlags.contains) { return "Haswell" }
        if cpuFlags.contains("avx") { return "Sandybridge" }
        return nil
    }

    /// The numerics class of the products: images are bit-identical between machines of the same
    /// class. The own kernels are one class on every CPU (the ISA only changes speed): "gemm4" with
    /// Winograd F(4×4) 3×3 convolutions from 512 output pixels (the default; "gemm3", the releases
    /// before it, took F(4×4) from 1024, so the UNet's 16×16 level ran direct), "gemm2" with
    /// `ATELIER_CONV=winograd2` (F(2×2) only, the arithmetic of the first Winograd release), "gemm1"
    /// with `ATELIER_CONV=direct` (the arithmetic of the releases before Winograd); OpenBLAS is one
    /// class per kernel family.
    public static var numericsClass: String {
        backend == .atelier ? "atelier-gemm\(ownGeneration)" : "openblas-\(coreName.lowercased())"
    }

    /// 4 when 3×3 convolutions run as Winograd F(4×4) where they can, 2 as F(2×2) only, 1 direct.
    static var ownGeneration: Int { !WinogradConvolution.enabled ? 1 : WinogradConvolution.largeTiles ? 4 : 2 }

    /// The numerics class for a precision. bf16 products — the UNet's linear layers, convolutions
    /// and attention — always run the own bf16 kernel ("atelier-bf16dpw4": `vdpbf16ps` arithmetic
    /// on every x86 CPU, with the 3×3 convolutions that Winograd takes in fp32 from the bf16
    /// weights; "atelier-bf16amxa4" on AMX tiles, which sum in their own order and keep every
    /// convolution in bf16). Earlier releases' "bf16dp" had fp32 attention, "bf16dpa" direct bf16
    /// convolutions. The fp32 products that stay (text encoder, VAE) follow the backend, so
    /// OpenBLAS is named when it is in use.
    public static func numericsClass(_ precision: OwnGEMM.Precision) -> String {
        switch precision {
        case .fp32: return numericsClass
        // The convolutions' form (Winograd F(4×4), F(2×2) or direct) is part of the class: the
        // VAE's, and on the own kernels the bf16 UNet's.
        case .bf16:
            let products = OwnGEMM.isaName == "amxbf16" ? "bf16amxa" : WinogradConvolution.takesBF16Weights ? "bf16dpw" : "bf16dpa"
            return backend == .atelier ? "atelier-\(products)\(ownGeneration)" : "atelier-\(products)1+\(numericsClass)"
        }
    }

    /// For logs and benchmark lines: "atelier avx2", "openblas Haswell".
    public static var kernelDescription: String {
        backend == .atelier ? "atelier \(OwnGEMM.isaName)" : "openblas \(coreName)"
    }

    /// Threads working on one product: our own (OpenBLAS itself stays single-threaded).
    public static var threads: Int { Parallel.threads }
}
