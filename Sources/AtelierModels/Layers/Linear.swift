import AtelierKernels

/// nn.Linear: `weight` [out, in], optional `bias` [out].
public struct Linear {
    public let weight: Tensor
    public let bias: Tensor?

    public init(_ w: Weights, inFeatures: Int, outFeatures: Int, bias: Bool = true) throws {
        weight = try w.load("weight", shape: [outFeatures, inFeatures])
        self.bias = bias ? try w.load("bias", shape: [outFeatures]) : nil
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { LinearOp.linear(x, weight: weight, bias: bias) }
}
