import AtelierKernels

/// BiT's stem (`BitEmbeddings`, non-preactivation): 7×7/2 weight-standardised conv → GroupNorm +
/// activation → 3×3/2 max-pool; 384 px in, 96 px out.
///
/// Two config-dependent quirks kept from transformers: without "SAME" padding the stem zero-pads
/// the conv output by 1 on every side *before* the GroupNorm (so the border zeros enter its
/// statistics), and the pool pads dynamically (TF style, zeros) only when
/// `embedding_dynamic_padding` is set.
struct BitEmbeddings {
    let convolution: WeightStandardizedConv2d
    let norm: BitGroupNormActivation
    let padAfterConv: Bool
    let poolPadding: BitPadding

    init(_ w: Weights, config: BitConfig, policy: BitPaddingPolicy) throws {
        convolution = try WeightStandardizedConv2d(w["convolution"], inChannels: config.numChannels,
                                                   outChannels: config.embeddingSize, kernel: 7, stride: 2, policy: policy)
        norm = try BitGroupNormActivation(w["norm"], config: config, channels: config.embeddingSize)
        padAfterConv = policy != .same
        poolPadding = config.embeddingDynamicPadding ? .dynamic(kernel: 3, stride: 2) : .fixed(.none)
    }

    func callAsFunction(_ pixels: Tensor) -> Tensor {
        var h = convolution(pixels)
        if padAfterConv { h = Self.zeroPad(h, 1) }
        h = norm(h)
        return MaxPool2d.maxPool(h, kernel: 3, stride: 2, padding: poolPadding.padding(height: h.shape[2], width: h.shape[3]))
    }

    /// `nn.ConstantPad2d(p, 0)`.
    static func zeroPad(_ x: Tensor, _ p: Int) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let oh = h + 2 * p, ow = w + 2 * p
        let out = Tensor(zeros: [n, c, oh, ow])
        for plane in 0..<(n * c) {
            for y in 0..<h {
                (out.pointer + plane * oh * ow + (y + p) * ow + p).update(from: x.pointer + plane * h * w + y * w, count: w)
            }
        }
        return out
    }
}
