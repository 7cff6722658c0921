import AtelierKernels

/// nn.Linear: `weight` [out, in], optional `bias` [out]. The weight is resident in the precision
/// its `Weights` view asks for; the bias stays fp32 (it is added after the chain).
public struct Linear {
    public let weight: LayerWeight
    public let bias: Tensor?

    public init(_ w: Weights, inFeatures: Int, outFeatures: Int, bias: Bool = true) throws {
        weight = try w.loadLayerWeight("weight", shape: [outFeatures, inFeatures])
        self.bias = bias ? try w.load("bias", shape: [outFeatures]) : nil
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { LinearOp.linear(x, weight: weight, bias: bias) }
}
