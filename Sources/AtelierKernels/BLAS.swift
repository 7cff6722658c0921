import CBLAS

/// Thin row-major wrappers over OpenBLAS. Every matrix product in the engine goes through here,
/// so thread policy and call conventions live in one place.
public enum BLAS {
    /// C[m×n] = alpha · op(A) · op(B) + beta · C, row-major, with explicit leading dimensions so
    /// that strided views (one attention head inside a [tokens, channels] matrix) need no copies.
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
        flops &+= 2 * m * n * k
        cblas_sgemm(CblasRowMajor,
                    transA ? CblasTrans : CblasNoTrans,
                    transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha,
                    a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

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

    /// Threads OpenBLAS uses for one call. Our own parallel loops run between BLAS calls, never
    /// during one, so the two never oversubscribe the cores.
    public static var threads: Int {
        get { Int(openblas_get_num_threads()) }
        set { openblas_set_num_threads(Int32(max(1, newValue))) }
    }
}
