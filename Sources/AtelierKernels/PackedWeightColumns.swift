import Foundation
import AtelierKernelsC

/// A linear layer's fp32 weights W [out, in] packed into the panel order Atelier's GEMM reads its
/// B operand in (Wᵀ as a K × N matrix: K-block after K-block of `AK_KC`, each all of its NR-column
/// panels, `ak_pack_b`'s layout), once, the first time the layer runs.
///
/// Why: a linear layer's weights are GEMM's B, and they were packed again on every call: about
/// 0.9 GB of SD2 UNet weights per pass, 2 % of an fp32 pass on the Xeon model 0xCF (perf), most of
/// it at the 16² and 8² levels, where only 512 or 128 rows of activations share each packing.
/// Packing only moves values, so results are bit-identical to the plain path. As with
/// `PackedWeightMatrix`, the packed copy replaces the plain one (the mapped pages it was read from
/// are released) and packing waits for the first use, so a layer that never runs is never resident.
///
/// The panels are NR wide, and NR belongs to the micro-kernel family (16 on AVX2, 32 on AVX-512),
/// so they are packed for the family in use at the first call. A call under a family with another
/// NR (tests switch families) runs on the plain values instead, unpacked for that call: slower,
/// never wrong.
public final class PackedWeightColumns: @unchecked Sendable {
    /// The layer's shape as the checkpoint has it: [out, in].
    public let shape: [Int]
    /// N: output features, the GEMM's columns.
    public let columns: Int
    /// K: input features.
    public let depth: Int
    private let lock = NSLock()
    private var packed: UnsafeMutablePointer<Float>?
    private var floats = 0
    private var panelWidth = 0
    private var source: Tensor?
    private let release: ((Tensor) -> Void)?

    /// Packs `t`, read as [shape[0] × rest], when the layer first runs; then calls `release` on it.
    public init(lazilyPacking t: Tensor, release: ((Tensor) -> Void)? = nil) {
        precondition(t.rank >= 2 && t.shape[0] > 0, "packed weights need a matrix, got \(t.shape)")
        shape = t.shape
        columns = t.shape[0]
        depth = t.count / columns
        source = t
        self.release = release
    }

    /// Packs `t` now, for the family in use.
    public convenience init(packing t: Tensor) {
        self.init(lazilyPacking: t)
        _ = operand
    }

    /// This matrix as GEMM's B operand, packed on first use; nil when it was packed for a family
    /// with another NR (the caller then multiplies by `unpacked()`).
    public var operand: OwnGEMM.BSource? {
        lock.lock()
        defer { lock.unlock() }
        let nr = Int(ak_nr())
        if let packed {
            return panelWidth == nr ? .packed(UnsafePointer(packed), columns: columns, depth: depth, panelWidth: nr) : nil
        }
        guard let t = source else { preconditionFailure("packed weights lost their source") }
        let padded = (columns + nr - 1) / nr * nr
        floats = max(padded * depth, 1)
        // A mapping of its own, as PackedWeightMatrix's and for the same reason: these pages live
        // as long as the model and would otherwise pin the malloc heap.
        guard let raw = mmap(nil, floats * 4, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              raw != MAP_FAILED else { fatalError("packed weights: out of memory (\(floats * 4) bytes)") }
        let dst = raw.bindMemory(to: Float.self, capacity: floats)
        let kc = Int(AK_KC)
        let blocks = (depth + kc - 1) / kc
        let (src, n, k, panels) = (UnsafePointer(t.pointer), columns, depth, padded / nr)
        Parallel.forEachTask(blocks) { b in
            let k0 = b * kc
            ak_pack_b(src, k, 1, Int32(k0), Int32(min(kc, k - k0)), 0, Int32(n), 0, Int32(panels), dst + padded * k0)
        }
        release?(t)
        source = nil
        packed = dst
        panelWidth = nr
        return .packed(UnsafePointer(dst), columns: columns, depth: depth, panelWidth: nr)
    }

    /// Bytes resident (the plain matrix before the first use, the packed panels after).
    public var byteCount: Int {
        lock.lock()
        defer { lock.unlock() }
        return packed == nil ? 4 * columns * depth : 4 * floats
    }

    /// The plain [out, in] values in the layer's shape (exact): for the OpenBLAS fallback, another
    /// family's NR, and comparisons. The source itself before the first packing, a copy after.
    public func unpacked() -> Tensor {
        lock.lock()
        defer { lock.unlock() }
        if let source { return source }
        let t = Tensor(uninitialized: shape)
        guard let packed else { return t }
        let nr = panelWidth, padded = (columns + nr - 1) / nr * nr, kc = Int(AK_KC)
        let w = t.pointer
        for k0 in stride(from: 0, to: depth, by: kc) {
            let kb = min(kc, depth - k0)
            let block = packed + padded * k0
            for j in 0..<columns {
                let panel = block + (j / nr) * nr * kb + j % nr
                for kk in 0..<kb { w[j * depth + k0 + kk] = panel[kk * nr] }
            }
        }
        return t
    }

    deinit { if let packed { munmap(packed, floats * 4) } }
}
