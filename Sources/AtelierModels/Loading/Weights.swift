import AtelierKernels

/// A scoped view of a weight source: layers bind to their own checkpoint names by asking
/// `weights["down_blocks"][0]["resnets"]…` and loading `"weight"` / `"bias"` relative to it.
public struct Weights {
    public let source: WeightSource
    public let prefix: String

    public init(_ source: WeightSource, prefix: String = "") {
        self.source = source
        self.prefix = prefix
    }

    public subscript(_ name: String) -> Weights {
        Weights(source, prefix: prefix.isEmpty ? name : prefix + "." + name)
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
            if t.count == shape.reduce(1, *) && squeezed(t.shape) == squeezed(shape) {
                return t.reshaped(shape)
            }
            throw ModelError.shapeMismatch(key: k, expected: shape, found: t.shape, source: source.sourceDescription)
        }
        return t
    }

    public func shape(_ name: String) -> [Int]? { source.shape(of: key(name)) }

    private func squeezed(_ s: [Int]) -> [Int] { s.filter { $0 != 1 } }
}
