import AtelierKernelsC

/// The parallel driver of Atelier's own GEMM kernels (C micro-kernels in AtelierKernelsC).
///
/// Blocking is BLIS's: for each block of N columns and each K-block of `AK_KC`, B is packed once
/// (split across the threads by panels), then the C tile (row blocks of at most `AK_MC` × column
/// ranges) is computed in parallel, each task packing its own rows of A. When the packed B of the
/// whole depth fits `wholeDepthBudget`, every K-block is packed in one parallel step and each task
/// runs its tile through all of them (the deep, narrow products of convolutions at 8² and 16²
/// would otherwise synchronise the threads twice per K-block). Every C element is one fma chain
/// over k in order, the K-blocks continuing it through C, so the result does not depend on the
/// thread count, the tile sizes or the instruction set (see AtelierKernelsC.h).
public enum OwnGEMM {
    /// Where B comes from: a stored matrix, or the implicit im2col matrix of a convolution.
    public enum BSource {
        case matrix(UnsafePointer<Float>, ld: Int, transposed: Bool)
        case convolution(ak_conv_geometry)
        /// bf16 weights stored [n][ld] (a linear layer's [out, in]), read as Bᵀ (bf16 only).
        case bf16Transposed(UnsafePointer<UInt16>, ld: Int)
    }

    /// Where A comes from: a stored fp32 matrix, or bf16 weights stored row-major (bf16 only).
    public enum ASource {
        case matrix(UnsafePointer<Float>, ld: Int, transposed: Bool)
        case bf16(UnsafePointer<UInt16>, ld: Int)
        /// fp32 weights already packed as `ak_pack_a_whole` packs a rows × depth matrix (a
        /// `PackedWeightMatrix`, Winograd's transformed weights): no packing per call. fp32 only.
        case packed(UnsafePointer<Float>, rows: Int, depth: Int)
    }

    /// The arithmetic of a GEMM. `.bf16` rounds both operands to bf16 and accumulates in fp32 the
    /// way `vdpbf16ps` does (see AtelierKernelsC.h): one numerics class on every x86 CPU — except
    /// on AMX tiles (family "amxbf16"), whose sums are their own class.
    public enum Precision: String, Sendable, CaseIterable {
        case fp32, bf16
    }

    /// Columns of C per outer block (B is packed `AK_KC` × this: 4 MiB).
    static let columnBlock = 4096
    /// Below this many multiply-adds the threads cost more than they save.
    static let serialWork = 1 << 20

    /// C[m×n] = alpha·op(A)·B (+ C when `accumulate`) (+ biasRow[i]) (+ biasColumn[j]).
    /// The epilogue is applied after the whole chain, as a separate multiply and add.
    public static func multiply(m: Int, n: Int, k: Int, alpha: Float = 1,
                                a: UnsafePointer<Float>, lda: Int, transA: Bool = false,
                                b: BSource, accumulate: Bool = false,
                                c: UnsafeMutablePointer<Float>, ldc: Int,
                                biasRow: UnsafePointer<Float>? = nil, biasColumn: UnsafePointer<Float>? = nil) {
        multiply(m: m, n: n, k: k, alpha: alpha, a: .matrix(a, ld: lda, transposed: transA), b: b,
                 accumulate: accumulate, c: c, ldc: ldc, biasRow: biasRow, biasColumn: biasColumn, precision: .fp32)
    }

    /// The general form: any A and B source, fp32 or bf16 arithmetic. bf16-stored operands need
    /// `.bf16` (they are never widened into an fp32 chain).
    public static func multiply(m: Int, n: Int, k: Int, alpha: Float = 1,
                                a: ASource, b: BSource, accumulate: Bool = false,
                                c: UnsafeMutablePointer<Float>, ldc: Int,
                                biasRow: UnsafePointer<Float>? = nil, biasColumn: UnsafePointer<Float>? = nil,
                                precision: Precision) {
        guard m > 0, n > 0 else { return }
        let lda: Int
        switch a {
        case .matrix(_, let ld, _), .bf16(_, let ld): lda = ld
        case .packed(_, let rows, let depth):
            precondition(rows == m && depth == k && precision == .fp32,
                         "gemm: packed weights \(rows)×\(depth) used as a \(m)×\(k) \(precision) operand")
            lda = k
        }
        precondition(k >= 0 && lda >= 1 && ldc >= n, "gemm: bad dimensions m \(m) n \(n) k \(k) lda \(lda) ldc \(ldc)")
        precondition(!accumulate || alpha == 1, "gemm: alpha is applied to the finished chain; accumulate with alpha 1 only")
        let bf16 = precision == .bf16
        if case .bf16 = a { precondition(bf16, "gemm: bf16 weights need the bf16 precision") }
        if case .bf16Transposed = b { precondition(bf16, "gemm: bf16 weights need the bf16 precision") }
        if !bf16, case .matrix(let ap, _, let ta) = a, case .matrix(let bp, let ldb, let tb) = b,
           m * n * max(k, 1) < serialWork || Parallel.threads == 1 {
            ak_sgemm_serial(Int32(m), Int32(n), Int32(k), alpha, ap, lda, ta ? 1 : 0, bp, ldb, tb ? 1 : 0,
                            c, ldc, accumulate ? 1 : 0, biasRow, biasColumn)
            return
        }
        let nr = Int(ak_nr()), mr = Int(ak_mr())
        let kcMax = Int(AK_KC)
        // Row blocks are whole panels (bf16 on AMX tiles rounds to 48 rows: whole pairs of 16-row
        // tiles, still whole panels).
        let rowStep = bf16 ? Int(ak_bf16_row_step()) : mr
        var geometry: ak_conv_geometry? = nil
        if case .convolution(let g) = b { geometry = g }
        var prepacked: UnsafePointer<Float>? = nil
        if case .packed(let p, _, _) = a { prepacked = p }
        let paddedRows = (m + mr - 1) / mr * mr
        // Packed depth of all K-blocks together: bf16 panels hold whole k pairs, and only the last
        // block can be odd (AK_KC is even), so K-block `pc` starts at depth `pc` either way.
        let depthAll = bf16 ? (k + 1) & ~1 : k

        /// Packs rows [r0, r0+rows) of this K-block of A; a panel of it is MR × kcp floats.
        func packA(_ r0: Int, _ rows: Int, _ pc: Int, _ kc: Int, _ dst: UnsafeMutablePointer<Float>) {
            switch a {
            case .matrix(let ap, let ld, let ta):
                if bf16 { ak_pack_a_bf16(ap, ld, ta ? 1 : 0, Int32(r0), Int32(rows), Int32(pc), Int32(kc), dst) }
                else { ak_pack_a(ap, ld, ta ? 1 : 0, Int32(r0), Int32(rows), Int32(pc), Int32(kc), dst) }
            case .bf16(let ap, let ld):
                ak_pack_a_bf16_stored(ap, ld, Int32(r0), Int32(rows), Int32(pc), Int32(kc), dst)
            case .packed:
                preconditionFailure("gemm: packed weights are never packed again")
            }
        }

        /// Packs B panels [p0, p1) of the K-block at `pc` (columns jc..<jc+nc) into `dst`.
        func packB(_ pc: Int, _ kc: Int, _ jc: Int, _ nc: Int, _ p0: Int, _ p1: Int, _ dst: UnsafeMutablePointer<Float>) {
            let (p0, p1) = (Int32(p0), Int32(p1))
            switch b {
            case .matrix(let bp, let ldb, let tb):
                if bf16 { ak_pack_b_bf16(bp, ldb, tb ? 1 : 0, Int32(pc), Int32(kc), Int32(jc), Int32(nc), p0, p1, dst) }
                else { ak_pack_b(bp, ldb, tb ? 1 : 0, Int32(pc), Int32(kc), Int32(jc), Int32(nc), p0, p1, dst) }
            case .bf16Transposed(let bp, let ldb):
                ak_pack_b_bf16_stored_t(bp, ldb, Int32(pc), Int32(kc), Int32(jc), Int32(nc), p0, p1, dst)
            case .convolution:
                withUnsafePointer(to: geometry!) { g in
                    if bf16 { ak_pack_b_conv_bf16(g, Int32(pc), Int32(kc), Int32(jc), Int32(nc), p0, p1, dst) }
                    else { ak_pack_b_conv(g, Int32(pc), Int32(kc), Int32(jc), Int32(nc), p0, p1, dst) }
                }
            }
        }

        var jc = 0
        while jc < n {
            let nc = min(columnBlock, n - jc)
            let panels = (nc + nr - 1) / nr
            // Column chunks of about `chunkColumns`, whole panels: tasks = row blocks × chunks.
            let chunkPanels = max(1, min(panels, chunkColumns / nr))
            let chunks = (panels + chunkPanels - 1) / chunkPanels
            // Row blocks of equal size, at most AK_MC rows, and enough of them that the threads
            // get several tasks each (a region's last task is where a thread waits for the other).
            var rowBlocks = (m + Int(AK_MC) - 1) / Int(AK_MC)
            let wantTasks = Parallel.threads > 1 ? tasksPerThread * Parallel.threads : 1
            if rowBlocks * chunks < wantTasks {
                rowBlocks = min((m + rowStep - 1) / rowStep, (wantTasks + chunks - 1) / chunks)
            }
            let mcStep = min(Int(AK_MC), ((m + rowBlocks - 1) / rowBlocks + rowStep - 1) / rowStep * rowStep)
            let rowTasks = (m + mcStep - 1) / mcStep
            // When several column chunks share a row block, A is packed once for all of them (a
            // convolution's weights would otherwise be packed once per chunk); when each row block
            // has one chunk (tall activations × a layer's weights), each task packs its own.
            let sharedA = chunks > 1 && prepacked == nil
            let aPanels = sharedA ? (m + mr - 1) / mr : 0
            // Whole depth at once: when every K-block of B (and of a shared A) fits the budget, all
            // are packed in one parallel step and each task then runs its tile through all of them,
            // two synchronisations per column block instead of two per K-block. Each C element is
            // still the same chain over k in order, so the bits are those of the blocked path.
            let blocks = (k + kcMax - 1) / kcMax
            let wholeK = blocks > 1 && panels * nr * depthAll <= wholeDepthBudget && aPanels * mr * depthAll <= wholeDepthBudget
            let bDepth = wholeK ? depthAll : kcMax
            guard let bpack = ak_thread_scratch(1, panels * nr * bDepth) else { fatalError("gemm: out of memory packing B") }
            var apackShared: UnsafeMutablePointer<Float>? = nil
            if sharedA {
                guard let p = ak_thread_scratch(4, aPanels * mr * bDepth) else { fatalError("gemm: out of memory packing A") }
                apackShared = p
            }
            let bTasks = (panels + 7) / 8, aTasks = (aPanels + 7) / 8

            /// Packs one K-block: task `t` < bTasks packs 8 panels of B, the rest 8 panels of A.
            func packTask(_ t: Int, _ pc: Int, _ kc: Int, _ bBlock: UnsafeMutablePointer<Float>,
                          _ aBlock: UnsafeMutablePointer<Float>?) {
                let kcp = bf16 ? (kc + 1) & ~1 : kc
                if t >= bTasks {
                    let r0 = (t - bTasks) * 8 * mr, r1 = min(m, r0 + 8 * mr)
                    if let aBlock { packA(r0, r1 - r0, pc, kc, aBlock + r0 * kcp) }
                    return
                }
                packB(pc, kc, jc, nc, t * 8, min(panels, t * 8 + 8), bBlock)
            }

            /// One task's tile (row block `rb`, column chunk `s`) over the K-block at `pc`.
            func computeTask(_ rb: Int, _ s: Int, _ pc: Int, _ kc: Int, _ bBlock: UnsafeMutablePointer<Float>,
                             _ aBlock: UnsafeMutablePointer<Float>?) {
                let kcp = bf16 ? (kc + 1) & ~1 : kc
                let last = pc + kc >= k
                let ic = rb * mcStep, mc = min(mcStep, m - ic)
                let j0 = s * chunkPanels * nr
                guard mc > 0, j0 < nc else { return }
                let cols = min(nc - j0, chunkPanels * nr)
                let apack: UnsafeMutablePointer<Float>
                if let prepacked {
                    apack = UnsafeMutablePointer(mutating: prepacked + paddedRows * pc + ic * kc)
                } else if let aBlock {
                    apack = aBlock + ic * kcp
                } else {
                    guard let own = ak_thread_scratch(0, mcStep * kcMax) else { fatalError("gemm: out of memory packing A") }
                    packA(ic, mc, pc, kc, own)
                    apack = own
                }
                let cTile = c + ic * ldc + jc + j0
                let rowBias = biasRow.map { $0 + ic }, columnBias = biasColumn.map { $0 + jc + j0 }
                let acc: Int32 = (accumulate || pc > 0) ? 1 : 0
                if bf16 {
                    ak_macro_kernel_bf16(Int32(mc), Int32(cols), Int32(kc), apack, bBlock + j0 * kcp,
                                         cTile, ldc, acc, last ? 1 : 0, alpha, rowBias, columnBias)
                } else {
                    ak_macro_kernel(Int32(mc), Int32(cols), Int32(kc), apack, bBlock + j0 * kc,
                                    cTile, ldc, acc, last ? 1 : 0, alpha, rowBias, columnBias)
                }
            }

            if wholeK {
                Parallel.forEachTask(blocks * (bTasks + aTasks)) { t in
                    let pc = t / (bTasks + aTasks) * kcMax
                    packTask(t % (bTasks + aTasks), pc, min(kcMax, k - pc), bpack + panels * nr * pc,
                             apackShared.map { $0 + aPanels * mr * pc })
                }
                Parallel.forEachTask(rowTasks * chunks) { task in
                    for pc in stride(from: 0, to: k, by: kcMax) {
                        computeTask(task / chunks, task % chunks, pc, min(kcMax, k - pc), bpack + panels * nr * pc,
                                    apackShared.map { $0 + aPanels * mr * pc })
                    }
                }
            } else {
                var pc = 0
                repeat {
                    let kc = min(kcMax, k - pc)
                    Parallel.forEachTask(bTasks + aTasks) { t in packTask(t, pc, kc, bpack, apackShared) }
                    Parallel.forEachTask(rowTasks * chunks) { task in
                        computeTask(task / chunks, task % chunks, pc, kc, bpack, apackShared)
                    }
                    pc += kc
                } while pc < k
            }
            jc += nc
        }
    }

    /// Tasks per thread a product is cut into at least (when its rows allow): with one task per
    /// thread, any unevenness leaves a core idle until the slowest finishes.
    static let tasksPerThread = 4
    /// Floats of packed B (and of a shared packed A) up to which all K-blocks are packed at once
    /// (32 MB; a bf16 panel touches half of its floats). Tests set 0 to run the K-block-at-a-time
    /// path, which must give the same bits.
    nonisolated(unsafe) static var wholeDepthBudget = 8 << 20

    /// Columns of C per task (about): A is packed once per task, so this amortises it.
    static let chunkColumns = 512

    /// The micro-kernel family in use ("amxbf16", "avx512bf16", "avx512", "avx2", "scalar"). fp32
    /// results are the same for all; bf16 ones for all but "amxbf16" (see `BLAS.numericsClass(_:)`).
    public static var isaName: String { String(cString: ak_isa_name(ak_isa_current())) }

    /// Why a CPU with AVX512_BF16 runs the bf16 products on the fp32 kernels (family avx512, the
    /// same bits), for benchmark lines: nil unless that is the case.
    public static var bf16ProductsNote: String? {
        let ratio = ak_vdpbf16ps_rate_ratio()
        guard ratio > 0, ak_isa_current() == Int32(AK_ISA_AVX512.rawValue) else { return nil }
        return String(format: "vdpbf16ps multiplies at %.2f × the fp32 FMA rate on this CPU, so bf16 products run on the fp32 kernels", ratio)
    }

    /// Forces a family (tests, `ATELIER_KERNEL_ISA`); false when this CPU cannot run it.
    @discardableResult
    public static func select(isa name: String) -> Bool {
        let isa: Int32
        switch name.lowercased() {
        case "scalar": isa = Int32(AK_ISA_SCALAR.rawValue)
        case "avx2": isa = Int32(AK_ISA_AVX2.rawValue)
        case "avx512": isa = Int32(AK_ISA_AVX512.rawValue)
        case "avx512bf16": isa = Int32(AK_ISA_AVX512BF16.rawValue)
        case "amxbf16": isa = Int32(AK_ISA_AMXBF16.rawValue)
        default: return false
        }
        return ak_set_isa(isa) == 0
    }

    /// Families this CPU can run, best last.
    public static var supportedISAs: [String] {
        (0...ak_isa_detected()).map { String(cString: ak_isa_name($0)) }
    }
}
