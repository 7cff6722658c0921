import AtelierKernels

/// BiT's `WeightStandardizedConv2d` (bias-free): the weight of every output channel is
/// normalised to zero mean and unit (biased) variance over in·kh·kw before use,
/// w' = (w − mean) / √(var + eps), with the eps = 1e-8 every BiT caller passes (the class default
/// of 1e-6 is never used).
///
/// transformers re-standardises on every forward pass (`batch_norm` with `training=True` on the
/// weight); the result only depends on the weight, so it is done once here, at load, into an
/// owned copy. Statistics are accumulated in Double: a fp32 running sum over 4608 taps would
/// already be off by more than the parity tolerance allows after the 16 bottlenecks.
struct WeightStandardizedConv2d {
    let weight: Tensor
    let stride: Int
    let padding: BitPadding

    init(_ w: Weights, inChannels: Int, outChannels: Int, kernel: Int, stride: Int = 1,
         policy: BitPaddingPolicy, eps: Double = 1e-8) throws {
        let raw = try w.load("weight", shape: [outChannels, inChannels, kernel, kernel])
        weight = Self.standardized(raw, eps: eps)
        self.stride = stride
        padding = policy.rule(kernel: kernel, stride: stride)
    }

    static func standardized(_ raw: Tensor, eps: Double) -> Tensor {
        let out = Tensor(uninitialized: raw.shape)
        let rows = raw.shape[0], n = raw.count / max(rows, 1)
        for r in 0..<rows {
            let src = raw.pointer + r * n, dst = out.pointer + r * n
            var sum = 0.0
            for i in 0..<n { sum += Double(src[i]) }
            let mean = sum / Double(n)
            var sq = 0.0
            for i in 0..<n { let d = Double(src[i]) - mean; sq += d * d }
            let inv = 1 / (sq / Double(n) + eps).squareRoot()
            for i in 0..<n { dst[i] = Float((Double(src[i]) - mean) * inv) }
        }
        return out
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        Convolution.conv2d(x, weight: weight, bias: nil, stride: stride,
                           padding: padding.padding(height: x.shape[2], width: x.shape[3]))
    }
}

/// BiT's `BitGroupNormActivation`: GroupNorm (eps 1e-5, `num_groups` from the config) followed by
/// the backbone activation, or by nothing where a residual sum comes next.
struct BitGroupNormActivation {
    let norm: GroupNorm
    let activation: ActivationKind?

    init(_ w: Weights, config: BitConfig, channels: Int, applyActivation: Bool = true) throws {
        norm = try GroupNorm(w, groups: config.numGroups, channels: channels, eps: 1e-5)
        activation = applyActivation ? config.hiddenAct : nil
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        let y = norm(x)
        return activation?.apply(y) ?? y
    }
}
