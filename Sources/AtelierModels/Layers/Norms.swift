import AtelierKernels

/// nn.GroupNorm (affine). eps differs by module in SD2 (1e-5 UNet resnets, 1e-6 transformers
/// and the VAE), so it is always passed explicitly.
public struct GroupNorm {
    public let weight: Tensor, bias: Tensor
    public let groups: Int
    public let eps: Float

    public init(_ w: Weights, groups: Int, channels: Int, eps: Float) throws {
        guard groups > 0, channels % groups == 0 else {
            throw ModelError.invalidConfig(file: w.source.sourceDescription,
                                           reason: "\(w.prefix): \(channels) channels cannot be split into \(groups) groups")
        }
        weight = try w.load("weight", shape: [channels])
        bias = try w.load("bias", shape: [channels])
        self.groups = groups
        self.eps = eps
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        Normalization.groupNorm(x, groups: groups, weight: weight, bias: bias, eps: eps)
    }
}

/// nn.LayerNorm over the last axis.
public struct LayerNorm {
    public let weight: Tensor, bias: Tensor
    public let eps: Float

    public init(_ w: Weights, dim: Int, eps: Float) throws {
        weight = try w.load("weight", shape: [dim])
        bias = try w.load("bias", shape: [dim])
        self.eps = eps
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        Normalization.layerNorm(x, weight: weight, bias: bias, eps: eps)
    }
}

/// nn.Embedding: a lookup table [count, dim].
public struct Embedding {
    public let weight: Tensor

    public init(_ w: Weights, count: Int, dim: Int) throws {
        weight = try w.load("weight", shape: [count, dim])
    }

    public var count: Int { weight.shape[0] }
    public var dim: Int { weight.shape[1] }

    /// Rows for `ids`; ids outside the table are clamped (callers validate ids up front).
    public func callAsFunction(_ ids: [Int]) -> Tensor {
        let out = Tensor(uninitialized: [ids.count, dim])
        for (i, id) in ids.enumerated() {
            let row = max(0, min(count - 1, id))
            (out.pointer + i * dim).update(from: weight.pointer + row * dim, count: dim)
        }
        return out
    }
}
