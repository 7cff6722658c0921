import AtelierKernels

/// nn.Conv2d: `weight` [out, in, k, k] (fp32 or bf16, as its `Weights` view asks), `bias` [out].
public struct Conv2d {
    public let weight: LayerWeight
    public let bias: Tensor?
    public let stride: Int
    public let padding: Padding2D

    public init(_ w: Weights, inChannels: Int, outChannels: Int, kernel: Int, stride: Int = 1,
                padding: Padding2D = .none, bias: Bool = true) throws {
        weight = try w.loadLayerWeight("weight", shape: [outChannels, inChannels, kernel, kernel], packed: true)
        self.bias = bias ? try w.load("bias", shape: [outChannels]) : nil
        self.stride = stride
        self.padding = padding
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        Convolution.conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding)
    }
}
