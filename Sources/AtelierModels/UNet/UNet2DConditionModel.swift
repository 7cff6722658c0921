import AtelierKernels

/// The SD2-family UNet (base, 768-v, inpainting 9-ch, depth 5-ch, x4 upscaler 7-ch with a
/// noise-level class embedding), built entirely from `config.json` — no SD2 sizes hard-coded.
public struct UNet2DConditionModel {
    public let config: UNet2DConditionConfig
    /// Parameters in the weight source this network was built from.
    public let parameterCount: Int
    /// The precision of the linear and convolution weights (and of their products, attention's included).
    public let precision: OwnGEMM.Precision
    let convIn: Conv2d
    let timeEmbedding: TimestepEmbedding
    let classEmbedding: Embedding?
    let downBlocks: [UNetDownBlock]
    let midBlock: UNetMidBlock?
    let upBlocks: [UNetUpBlock]
    let normOut: GroupNorm
    let convOut: Conv2d

    /// The text-context width each level's cross-attention expects.
    let contextWidths: [Int]

    /// - Parameter precision: what the linear and convolution weights are kept in (and so the
    ///   arithmetic of their products); norms, biases and embeddings stay fp32.
    public init(config: UNet2DConditionConfig, weights source: WeightSource, precision: OwnGEMM.Precision = .fp32) throws {
        self.config = config
        self.precision = precision
        parameterCount = source.parameterCount
        let r = try config.resolved()
        contextWidths = r.crossDim
        let w = Weights(source, precision: precision)
        let ch = config.blockOutChannels
        let n = ch.count
        let tembDim = ch[0] * 4
        convIn = try Conv2d(w["conv_in"], inChannels: config.inChannels, outChannels: ch[0], kernel: 3, padding: .symmetric(1))
        timeEmbedding = try TimestepEmbedding(w["time_embedding"], inChannels: ch[0], embedDim: tembDim)
        classEmbedding = try config.numClassEmbeds.map { try Embedding(w["class_embedding"], count: $0, dim: tembDim) }

        var down: [UNetDownBlock] = []
        var outCh = ch[0]
        for i in 0..<n {
            let inCh = outCh
            outCh = ch[i]
            down.append(try UNetDownBlock(w["down_blocks"][i], type: config.downBlockTypes[i], layers: r.layers[i],
                                          inChannels: inCh, outChannels: outCh, tembChannels: tembDim,
                                          addDownsample: i < n - 1, config: config, heads: r.heads[i],
                                          crossDim: r.crossDim[i], transformerLayers: r.transformerLayers[i],
                                          onlyCross: r.onlyCross[i]))
        }
        downBlocks = down
        midBlock = config.midBlockType == nil ? nil
            : try UNetMidBlock(w["mid_block"], channels: ch[n - 1], tembChannels: tembDim, config: config,
                               heads: r.heads[n - 1], crossDim: r.crossDim[n - 1], transformerLayers: r.transformerLayers[n - 1])

        var up: [UNetUpBlock] = []
        let rev = Array(ch.reversed())
        outCh = rev[0]
        for i in 0..<n {
            let prev = outCh
            outCh = rev[i]
            let inCh = rev[min(i + 1, n - 1)]
            let j = n - 1 - i  // the matching down level for reversed per-level lists
            up.append(try UNetUpBlock(w["up_blocks"][i], type: config.upBlockTypes[i], layers: r.layers[j] + 1,
                                      inChannels: inCh, prevOutputChannels: prev, outChannels: outCh,
                                      tembChannels: tembDim, addUpsample: i < n - 1, config: config,
                                      heads: r.heads[j], crossDim: r.crossDim[j],
                                      transformerLayers: r.transformerLayers[j], onlyCross: r.onlyCross[j]))
        }
        upBlocks = up
        normOut = try GroupNorm(w["conv_norm_out"], groups: config.normNumGroups, channels: ch[0], eps: config.normEps)
        convOut = try Conv2d(w["conv_out"], inChannels: ch[0], outChannels: config.outChannels, kernel: 3, padding: .symmetric(1))
    }

    /// Number of stride-2 levels; latent sides that are not multiples of 2^this need explicit
    /// upsample sizes.
    public var downsamplingLevels: Int { downBlocks.filter { $0.downsampler != nil }.count }

    /// - Parameters:
    ///   - sample: [B, in_channels, h, w]
    ///   - timesteps: one per batch item (fractional for Euler schedulers)
    ///   - context: text embeddings [B, tokens, cross_attention_dim]
    ///   - classLabels: the x4 upscaler's noise level per batch item
    public func callAsFunction(_ sample: Tensor, timesteps: [Float], context: Tensor, classLabels: [Int]? = nil) throws -> Tensor {
        guard sample.rank == 4, sample.shape[1] == config.inChannels else {
            throw ModelError.unsupported("UNet expects [B, \(config.inChannels), h, w] input, got \(sample.shape)")
        }
        let b = sample.shape[0]
        guard context.rank == 3, context.shape[0] == b else {
            throw ModelError.unsupported("text context batch \(context.shape) does not match sample batch \(b)")
        }
        guard contextWidths.allSatisfy({ $0 == context.shape[2] }) else {
            throw ModelError.unsupported("text context width \(context.shape[2]) does not match the UNet's cross-attention width \(contextWidths)")
        }
        let t = timesteps.count == 1 ? Array(repeating: timesteps[0], count: b) : timesteps
        guard t.count == b else { throw ModelError.unsupported("\(timesteps.count) timesteps for a batch of \(b)") }

        var emb = timeEmbedding(TimestepFeatures.sinusoid(t, channels: config.blockOutChannels[0],
                                                          flipSinToCos: config.flipSinToCos, freqShift: config.freqShift))
        if let table = classEmbedding {
            guard let labels = classLabels, labels.count == b || labels.count == 1 else {
                throw ModelError.unsupported("this UNet is conditioned on a class label (the x4 noise level); none was given")
            }
            if let bad = labels.first(where: { $0 < 0 || $0 >= table.count }) {
                throw ModelError.unsupported("class label \(bad) is outside 0..<\(table.count)")
            }
            let full = labels.count == 1 ? Array(repeating: labels[0], count: b) : labels
            emb = Elementwise.add(emb, table(full))
        }
        let temb = Activation.silu(emb)  // every resnet applies SiLU before its projection

        var h = convIn(sample)
        var skips = [h]
        for block in downBlocks { h = block(h, temb: temb, context: context, skips: &skips) }
        if let mid = midBlock { h = mid(h, temb: temb, context: context) }
        for block in upBlocks {
            // The upsampled size must match the skip it will meet (forward_upsample_size).
            let resCount = block.resnets.count
            let nextSkip = skips.count > resCount ? skips[skips.count - resCount - 1] : nil
            let size = nextSkip.map { ($0.shape[2], $0.shape[3]) }
            h = block(h, temb: temb, context: context, skips: &skips, upsampleSize: size)
        }
        return convOut(Activation.silu(normOut(h)))
    }
}
