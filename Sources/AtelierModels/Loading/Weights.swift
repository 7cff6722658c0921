import AtelierKernels

/// A scoped view of a weight source: layers bind to their own checkpoint names by asking
/// `weights["down_blocks"][0]["resnets"]…` and loading `"weight"` / `"bias"` relative to it.
public struct Weights {
    public let source: WeightSource
    public let prefix: String
    /// The precision linear and convolution weights are kept in (`loadLayerWeight`); norms,
    /// biases and embeddings always load as fp32.
    public let precision: OwnGEMM.Precision

    public init(_ source: WeightSource, prefix: String = "", precision: OwnGEMM.Precision = .fp32) {
        self.source = source
        self.prefix = prefix
        self.precision = precision
    }

    public subscript(_ name: String) -> Weights {
        Weights(source, prefix: prefix.isEmpty ? name : prefix + "." + name, precision: precision)
    }

    public subscript(_ index: Int) -> Weights { self[String(index)] }

    public func key(_ name: String) -> String { prefix.isEmpty ? name : prefix + "." + name }

    public func has(_ name: String) -> Bool { source.contains(key(name)) }

    /// Loads `name`, checking its shape when one is given (a mismatch means config and weights
    /// disagree; catching it here beats a wrong image later).
    public func load(_ name: String, shape: [Int]? = nil) throws -> Tensor {
        let k = key(name)
        guard source.contains(k) else { throw ModelError.missingWeight(key: k, source: source.sourceDescription) }
        let t = try source.tensor(k)
        if let shape, t.shape != shape {
            // Accept the same element count in an equivalent layout (e.g. [C,C,1,1] vs [C,C]).
            // The expected count is computed with overflow checks: a config inferred from a
            // hostile file can name dimensions whose product does not fit an Int.
            if let expected = Self.elementCount(shape), t.count == expected && squeezed(t.shape) == squeezed(shape) {
                return t.reshaped(shape)
            }
            // Name the tensor as the file spells it when a rename table is in between.
            let shown = (source as? RenamedWeights)?.table[k].map { e in
                "\(e.key)\(e.rows.map { " rows \($0.lowerBound)..<\($0.upperBound)" } ?? "") (read as \(k))"
            } ?? k
            throw ModelError.shapeMismatch(key: shown, expected: shape, found: t.shape, source: source.sourceDescription)
        }
        return t
    }

    /// A linear or convolution weight, in this view's precision (bf16: rounded once, here; the
    /// fp32 tensor it came from is not kept). `packed`: fp32 weights that are always GEMM's A (a
    /// convolution's) are packed once, when the layer first runs, for the own kernels
    /// (`PackedWeightMatrix`), and the mapped pages they were read from are then released, so
    /// memory stays that of one copy.
    public func loadLayerWeight(_ name: String, shape: [Int], packed: Bool = false) throws -> LayerWeight {
        let t = try load(name, shape: shape)
        guard precision == .bf16 else {
            guard packed, BLAS.backend == .atelier else { return .fp32(t) }
            let source = self.source
            return .fp32Packed(PackedWeightMatrix(lazilyPacking: t, release: { source.releaseResidentPages(of: $0) }))
        }
        let rounded = BF16Tensor(rounding: t)
        source.releaseResidentPages(of: t)
        return .bf16(rounded)
    }

    public func shape(_ name: String) -> [Int]? { source.shape(of: key(name)) }

    private func squeezed(_ s: [Int]) -> [Int] { s.filter { $0 != 1 } }

    /// The product of `shape`, or nil when a dimension is negative or the product overflows.
    static func elementCount(_ shape: [Int]) -> Int? {
        var count = 1
        for d in shape {
            guard d >= 0 else { return nil }
            let (product, overflow) = count.multipliedReportingOverflow(by: d)
            if overflow { return nil }
            count = product
        }
        return count
    }
}
