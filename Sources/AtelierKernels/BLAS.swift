import CBLAS

/// Thin row-major wrappers over OpenBLAS. Every matrix product in the engine goes through here,
/// so thread policy and call conventions live in one place.
public enum BLAS {
    /// C[m×n] = alpha · op(A) · op(B) + beta · C, row-major, with explicit leading dimensions so
    /// that strided views (one attention head inside a [tokens, channels] matrix) need no copies.
    ///
    /// Determinism: OpenBLAS's multithreaded GEMM splits work by the thread count, and an element
    /// computed in a "tail" tile rounds differently from one in a full tile — so the same seed gave
    /// different pixels on machines with different core counts. Here OpenBLAS always runs single-
    /// threaded, and large products are cut into blocks of a **fixed** size (never derived from the
    /// thread count) that run in parallel; each block is the same computation wherever it runs.
    @inline(__always)
    public static func gemm(
        transA: Bool = false, transB: Bool = false,
        m: Int, n: Int, k: Int,
        alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        _ = singleThreaded
        flops &+= 2 * m * n * k
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

    /// One single-threaded product, for callers that already run in parallel (attention heads).
    @inline(__always)
    public static func gemmSerial(
        transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
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

    /// Threads working on one product: our own (OpenBLAS itself stays single-threaded).
    public static var threads: Int { Parallel.threads }
}
