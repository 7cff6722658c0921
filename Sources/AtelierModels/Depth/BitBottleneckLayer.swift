import AtelierKernels

/// BiT's non-preactivation bottleneck (`BitBottleneckLayer`, ResNet v1.5: the stride sits on the
/// 3×3 conv): conv1 1×1 → GN+act → conv2 3×3/s → GN+act → conv3 1×1 → GN, plus the shortcut
/// (a 1×1/s conv + GN on the first layer of each stage, whatever its channel counts), then the
/// activation of the sum.
struct BitBottleneckLayer {
    let downsample: (conv: WeightStandardizedConv2d, norm: BitGroupNormActivation)?
    let conv1: WeightStandardizedConv2d, norm1: BitGroupNormActivation
    let conv2: WeightStandardizedConv2d, norm2: BitGroupNormActivation
    let conv3: WeightStandardizedConv2d, norm3: BitGroupNormActivation
    let activation: ActivationKind

    init(_ w: Weights, config: BitConfig, policy: BitPaddingPolicy, inChannels: Int, outChannels: Int,
         stride: Int, isFirstLayer: Bool) throws {
        let mid = BitConfig.makeDivisible(Double(outChannels) * 0.25)
        if isFirstLayer {
            downsample = (try WeightStandardizedConv2d(w["downsample.conv"], inChannels: inChannels, outChannels: outChannels,
                                                       kernel: 1, stride: stride, policy: policy),
                          try BitGroupNormActivation(w["downsample.norm"], config: config, channels: outChannels, applyActivation: false))
        } else {
            downsample = nil
        }
        conv1 = try WeightStandardizedConv2d(w["conv1"], inChannels: inChannels, outChannels: mid, kernel: 1, policy: policy)
        norm1 = try BitGroupNormActivation(w["norm1"], config: config, channels: mid)
        conv2 = try WeightStandardizedConv2d(w["conv2"], inChannels: mid, outChannels: mid, kernel: 3, stride: stride, policy: policy)
        norm2 = try BitGroupNormActivation(w["norm2"], config: config, channels: mid)
        conv3 = try WeightStandardizedConv2d(w["conv3"], inChannels: mid, outChannels: outChannels, kernel: 1, policy: policy)
        norm3 = try BitGroupNormActivation(w["norm3"], config: config, channels: outChannels, applyActivation: false)
        activation = config.hiddenAct
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        let shortcut = downsample.map { $0.norm($0.conv(x)) } ?? x
        var h = norm1(conv1(x))
        h = norm2(conv2(h))
        h = norm3(conv3(h))
        precondition(h.shape == shortcut.shape,
                     "BiT bottleneck: residual \(h.shape) and shortcut \(shortcut.shape) differ (padding policy and input size disagree)")
        Elementwise.addInPlace(h, shortcut)
        return activation.apply(h)
    }
}
