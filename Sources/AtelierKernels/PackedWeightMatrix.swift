import AtelierKernelsC

/// A layer's fp32 weight matrix packed once, at load, into the panel order Atelier's GEMM reads
/// its A operand in (see `ak_packed_a_floats` in AtelierKernelsC.h).
///
/// Why: a convolution's weights are GEMM's A. Packed per call, every image of a batch and every
/// step re-packed ~2.4 GB of SD2 UNet weights, 6.4 % of a UNet pass (the profile of issue 8).
/// Packing only moves values, so results are bit-identical to the unpacked path. The packed copy
/// replaces the plain one (the loader releases the mapped pages it was read from), so resident
/// memory does not grow beyond the padding of the last panel (rows rounded up to MR = 6).
public final class PackedWeightMatrix: @unchecked Sendable {
    /// The layer's shape as the checkpoint has it (e.g. OIHW); rows = shape[0].
    public let shape: [Int]
    public let rows: Int
    public let depth: Int
    public let pointer: UnsafeMutablePointer<Float>
    private let floats: Int

    /// Packs `t` read as a [shape[0] × rest] row-major matrix.
    public init(packing t: Tensor) {
        precondition(t.rank >= 2 && t.shape[0] > 0, "packed weights need a matrix, got \(t.shape)")
        shape = t.shape
        rows = t.shape[0]
        depth = t.count / rows
        floats = max(Int(ak_packed_a_floats(Int32(rows), Int32(depth))), 1)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: floats * 4, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: floats)
        let kc = Int(AK_KC)
        let blocks = (depth + kc - 1) / kc
        let (src, m, k, dst) = (UnsafePointer(t.pointer), rows, depth, pointer)
        Parallel.forEachTask(blocks) { b in
            let k0 = b * kc
            ak_pack_a_whole(src, k, Int32(m), Int32(k0), Int32(min(kc, k - k0)), dst)
        }
    }

    /// This matrix as GEMM's A operand.
    public var operand: OwnGEMM.ASource { .packed(UnsafePointer(pointer), rows: rows, depth: depth) }

    /// Bytes resident for the packed copy.
    public var byteCount: Int { 4 * floats }

    /// The plain [rows × depth] values in the layer's shape (exact): for the OpenBLAS fallback and
    /// for comparisons. Costs a copy; the own kernels never need it.
    public func unpacked() -> Tensor {
        let t = Tensor(uninitialized: shape)
        ak_unpack_a_whole(pointer, Int32(rows), Int32(depth), t.pointer)
        return t
    }

    deinit { pointer.deallocate() }
}
