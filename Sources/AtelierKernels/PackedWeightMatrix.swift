import Foundation
import AtelierKernelsC

/// A layer's fp32 weight matrix packed into the panel order Atelier's GEMM reads its A operand in
/// (see `ak_packed_a_floats` in AtelierKernelsC.h), once, the first time the layer runs.
///
/// Why: a convolution's weights are GEMM's A. Packed per call, every image of a batch and every
/// step re-packed ~2.4 GB of SD2 UNet weights, 6.4 % of a UNet pass (the profile of issue 8).
/// Packing only moves values, so results are bit-identical to the unpacked path. The packed copy
/// replaces the plain one (`release` drops the mapped pages it was read from), so resident memory
/// does not grow beyond the padding of the last panel (rows rounded up to MR = 6). Packing at first
/// use rather than at load keeps what memory-mapping gave: a layer that never runs (the VAE
/// encoder of a txt2img render or an upscale) is never resident, and one that runs late (the VAE
/// decoder) joins the resident set only then — packing everything at load raised an upscale's
/// peak by 0.27 GB.
public final class PackedWeightMatrix: @unchecked Sendable {
    /// The layer's shape as the checkpoint has it (e.g. OIHW); rows = shape[0].
    public let shape: [Int]
    public let rows: Int
    public let depth: Int
    private let floats: Int
    private let lock = NSLock()
    private var packed: UnsafeMutablePointer<Float>?
    private var source: Tensor?
    private let release: ((Tensor) -> Void)?

    /// Packs `t`, read as a [shape[0] × rest] row-major matrix, when the layer first runs; then
    /// calls `release` on it and lets it go.
    public init(lazilyPacking t: Tensor, release: ((Tensor) -> Void)? = nil) {
        precondition(t.rank >= 2 && t.shape[0] > 0, "packed weights need a matrix, got \(t.shape)")
        shape = t.shape
        rows = t.shape[0]
        depth = t.count / rows
        floats = max(Int(ak_packed_a_floats(Int32(rows), Int32(depth))), 1)
        source = t
        self.release = release
    }

    /// Packs `t` now.
    public convenience init(packing t: Tensor) {
        self.init(lazilyPacking: t)
        _ = pointer
    }

    /// The packed values (packing them on first use).
    public var pointer: UnsafeMutablePointer<Float> {
        lock.lock()
        defer { lock.unlock() }
        if let packed { return packed }
        // A mapping of its own, not the malloc heap: these pages live as long as the model, and
        // in the heap they would sit between activations' freed blocks and keep the heap from
        // ever shrinking (measured: 475 MB of heap between two UNet passes, ~300 MB of it packed
        // weights).
        guard let raw = mmap(nil, floats * 4, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              raw != MAP_FAILED else { fatalError("packed weights: out of memory (\(floats * 4) bytes)") }
        let dst = raw.bindMemory(to: Float.self, capacity: floats)
        guard let t = source else { preconditionFailure("packed weights lost their source") }
        let kc = Int(AK_KC)
        let blocks = (depth + kc - 1) / kc
        let (src, m, k) = (UnsafePointer(t.pointer), rows, depth)
        Parallel.forEachTask(blocks) { b in
            let k0 = b * kc
            ak_pack_a_whole(src, k, Int32(m), Int32(k0), Int32(min(kc, k - k0)), dst)
        }
        release?(t)
        source = nil
        packed = dst
        return dst
    }

    /// This matrix as GEMM's A operand.
    public var operand: OwnGEMM.ASource { .packed(UnsafePointer(pointer), rows: rows, depth: depth) }

    /// Bytes resident once packed.
    public var byteCount: Int { 4 * floats }

    /// The plain [rows × depth] values in the layer's shape (exact): for the OpenBLAS fallback and
    /// for comparisons. The source itself before the first packing, a copy after.
    public func unpacked() -> Tensor {
        lock.lock()
        defer { lock.unlock() }
        if let source { return source }
        let t = Tensor(uninitialized: shape)
        if let packed { ak_unpack_a_whole(packed, Int32(rows), Int32(depth), t.pointer) }
        return t
    }

    deinit { if let packed { munmap(packed, floats * 4) } }
}
