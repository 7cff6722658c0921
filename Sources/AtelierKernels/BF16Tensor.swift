import AtelierKernelsC

/// A tensor held as bf16 (two bytes a value): a layer's weights in the bf16 precision, half the
/// memory of fp32. Values are rounded once, at load, to nearest even (denormals become zero, as
/// the bf16 GEMM would read them anyway), so the GEMM reads them as they are.
public final class BF16Tensor: @unchecked Sendable {
    public let shape: [Int]
    public let count: Int
    public let pointer: UnsafeMutablePointer<UInt16>

    /// Rounds an fp32 tensor to bf16 (the source may then be released: nothing borrows from it).
    public init(rounding t: Tensor) {
        shape = t.shape
        count = t.count
        pointer = UnsafeMutablePointer<UInt16>.allocate(capacity: max(count, 1))
        ak_f32_to_bf16(t.pointer, pointer, count)
    }

    /// The fp32 values (exact widening), e.g. to compare a layer with its fp32 form.
    public func widened() -> Tensor {
        let t = Tensor(uninitialized: shape)
        ak_bf16_to_f32(pointer, t.pointer, count)
        return t
    }

    deinit { pointer.deallocate() }
}

/// The weight matrix of a linear or convolution layer, resident in fp32 or in bf16. The kind
/// decides the arithmetic: bf16 weights run the bf16 GEMM (`OwnGEMM.Precision.bf16`), except 3×3
/// convolutions in Winograd form, which widen them to fp32 (`WinogradConvolution.takesBF16Weights`).
/// `fp32Packed` is fp32 arithmetic on weights packed once at load (convolutions: see
/// `PackedWeightMatrix`); its results are bit-identical to `fp32`.
public enum LayerWeight: @unchecked Sendable {
    case fp32(Tensor)
    case fp32Packed(PackedWeightMatrix)
    case bf16(BF16Tensor)

    public var shape: [Int] {
        switch self {
        case .fp32(let t): return t.shape
        case .fp32Packed(let p): return p.shape
        case .bf16(let t): return t.shape
        }
    }

    public var precision: OwnGEMM.Precision {
        if case .bf16 = self { return .bf16 }
        return .fp32
    }

    /// Bytes the weights occupy (2 per value in bf16, 4 in fp32).
    public var byteCount: Int {
        switch self {
        case .fp32(let t): return 4 * t.count
        case .fp32Packed(let p): return p.byteCount
        case .bf16(let t): return 2 * t.count
        }
    }

    /// The weights as fp32 values (a bf16 matrix widened exactly, a packed one unpacked: a copy).
    public var fp32Values: Tensor {
        switch self {
        case .fp32(let t): return t
        case .fp32Packed(let p): return p.unpacked()
        case .bf16(let t): return t.widened()
        }
    }
}
