import Foundation

/// Backing memory of a tensor: either owned (allocated here, freed on deinit) or borrowed from
/// an owner that keeps it alive — typically a memory-mapped weight file, so a 3.5 GB UNet is
/// used in place and never copied.
public final class TensorStorage: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int
    /// Keeps borrowed memory alive; nil when the storage owns its allocation.
    private let owner: AnyObject?

    /// Allocates `count` floats, zero-filled.
    public init(count: Int) {
        self.count = count
        pointer = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
        owner = nil
    }

    /// Allocates `count` floats without initialising them; callers must write every element.
    public init(uninitializedCount count: Int) {
        self.count = count
        pointer = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
        owner = nil
    }

    /// Borrows memory owned by `owner` (which must outlive every reader of the pointer).
    public init(borrowing pointer: UnsafeMutablePointer<Float>, count: Int, owner: AnyObject) {
        self.pointer = pointer
        self.count = count
        self.owner = owner
    }

    deinit {
        if owner == nil { pointer.deallocate() }
    }
}

/// A dense, contiguous, row-major fp32 tensor. Images and feature maps are NCHW, token
/// sequences are [batch, tokens, channels], matching PyTorch so that fixtures compare directly.
///
/// Tensors are values in the API sense: operations return new tensors. Storage is shared
/// between copies; the few in-place kernels only run on storage they just allocated.
public struct Tensor: @unchecked Sendable {
    public let shape: [Int]
    public let storage: TensorStorage
    /// Element offset of this view into `storage` (views are always contiguous).
    public let offset: Int

    public var count: Int { shape.reduce(1, *) }
    public var rank: Int { shape.count }

    public init(shape: [Int], storage: TensorStorage, offset: Int = 0) {
        precondition(offset + shape.reduce(1, *) <= storage.count, "tensor view out of storage bounds")
        self.shape = shape
        self.storage = storage
        self.offset = offset
    }

    /// A zero-filled tensor.
    public init(zeros shape: [Int]) {
        self.init(shape: shape, storage: TensorStorage(count: shape.reduce(1, *)))
    }

    /// A tensor whose contents the caller will fully overwrite.
    public init(uninitialized shape: [Int]) {
        self.init(shape: shape, storage: TensorStorage(uninitializedCount: shape.reduce(1, *)))
    }

    public init(shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count, "shape \(shape) does not hold \(values.count) values")
        self.init(uninitialized: shape)
        values.withUnsafeBufferPointer { src in
            pointer.update(from: src.baseAddress!, count: values.count)
        }
    }

    public init(shape: [Int], repeating value: Float) {
        self.init(uninitialized: shape)
        pointer.update(repeating: value, count: count)
    }

    /// Start of this tensor's elements.
    @inlinable public var pointer: UnsafeMutablePointer<Float> { storage.pointer + offset }

    public var scalars: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }

    public subscript(flat index: Int) -> Float {
        get { pointer[index] }
        nonmutating set { pointer[index] = newValue }
    }

    /// Same elements, another shape (no copy).
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var shape = newShape
        if let inferred = shape.firstIndex(of: -1) {
            let known = shape.filter { $0 != -1 }.reduce(1, *)
            shape[inferred] = count / max(known, 1)
        }
        precondition(shape.reduce(1, *) == count, "cannot reshape \(self.shape) to \(newShape)")
        return Tensor(shape: shape, storage: storage, offset: offset)
    }

    /// The i-th slice along the first axis (no copy).
    public func slice(_ i: Int) -> Tensor {
        let inner = Array(shape.dropFirst())
        let n = inner.reduce(1, *)
        precondition(i >= 0 && i < shape[0], "slice \(i) out of range for \(shape)")
        return Tensor(shape: inner, storage: storage, offset: offset + i * n)
    }

    /// Rows [start, start+length) along the first axis (no copy).
    public func rows(_ start: Int, _ length: Int) -> Tensor {
        var s = shape
        let n = shape.dropFirst().reduce(1, *)
        precondition(start >= 0 && start + length <= shape[0], "rows out of range")
        s[0] = length
        return Tensor(shape: s, storage: storage, offset: offset + start * n)
    }

    /// An owned copy (used before in-place work on a tensor that may be shared or borrowed).
    public func copy() -> Tensor {
        let out = Tensor(uninitialized: shape)
        out.pointer.update(from: pointer, count: count)
        return out
    }

    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: pointer, count: count))
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let head = (0..<min(count, 6)).map { String(format: "%.5g", pointer[$0]) }.joined(separator: ", ")
        return "Tensor\(shape)[\(head)\(count > 6 ? ", …" : "")]"
    }
}

extension Tensor {
    /// Largest absolute element-wise difference; used by parity tests and tools.
    public func maxAbsDifference(_ other: Tensor) -> Float {
        precondition(count == other.count, "size mismatch \(shape) vs \(other.shape)")
        var m: Float = 0
        for i in 0..<count { m = max(m, abs(pointer[i] - other.pointer[i])) }
        return m
    }

    /// Mean of all elements (accumulated in Double).
    public var mean: Float {
        var sum = 0.0
        for i in 0..<count { sum += Double(pointer[i]) }
        return Float(sum / Double(max(count, 1)))
    }

    /// Unbiased (N − 1) standard deviation of all elements, as torch.std computes it.
    public var standardDeviation: Float {
        let m = Double(mean)
        var sq = 0.0
        for i in 0..<count { let d = Double(pointer[i]) - m; sq += d * d }
        return Float((sq / Double(max(count - 1, 1))).squareRoot())
    }

    public var maxAbs: Float {
        var m: Float = 0
        for i in 0..<count { m = max(m, abs(pointer[i])) }
        return m
    }
}
