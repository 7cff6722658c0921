import AtelierKernels

/// The KL autoencoder: encoder → quant_conv gives posterior moments (mean | logvar); decoder
/// maps latents back to RGB in [-1, 1].
public struct AutoencoderKL {
    public let config: AutoencoderKLConfig
    /// Parameters in the weight source this network was built from.
    public let parameterCount: Int
    let encoder: VAEEncoder
    let decoder: VAEDecoder
    let quantConv: Conv2d?
    let postQuantConv: Conv2d?

    public init(config: AutoencoderKLConfig, weights source: WeightSource) throws {
        self.config = config
        parameterCount = source.parameterCount
        if config.actFn != .silu { throw ModelError.unsupported("vae act_fn '\(config.actFn.rawValue)'") }
        if let bad = config.downBlockTypes.first(where: { $0 != "DownEncoderBlock2D" }) { throw ModelError.unsupported("vae down block '\(bad)'") }
        if let bad = config.upBlockTypes.first(where: { $0 != "UpDecoderBlock2D" }) { throw ModelError.unsupported("vae up block '\(bad)'") }
        let w = Weights(source)
        let z = config.latentChannels
        encoder = try VAEEncoder(w["encoder"], config: config)
        decoder = try VAEDecoder(w["decoder"], config: config)
        quantConv = config.useQuantConv ? try Conv2d(w["quant_conv"], inChannels: 2 * z, outChannels: 2 * z, kernel: 1) : nil
        postQuantConv = config.usePostQuantConv ? try Conv2d(w["post_quant_conv"], inChannels: z, outChannels: z, kernel: 1) : nil
    }

    /// image [B, 3, H, W] in [-1, 1] → moments [B, 2·latent, H/f, W/f]. `tiling` picks the
    /// whole-map or the row-band pass (`VAETiling`); both give the same moments, the band pass
    /// with band-sized temporaries. `bandFloats` bounds one band (tests shrink it to force many
    /// bands on small maps).
    public func encode(_ image: Tensor, tiling: VAETiling = .automatic,
                       bandFloats: Int = VAERowBandExecutor.defaultBandFloats) -> Tensor {
        let pixels = image.shape[0] * image.shape[2] * image.shape[3]
        let h = tiling.usesBands(pixels: pixels)
            ? VAERowBandExecutor(bandFloats: bandFloats).encode(encoder, image) : encoder(image)
        return quantConv.map { $0(h) } ?? h
    }

    /// z [B, latent, h, w] (already divided by the scaling factor) → image [B, 3, h·f, w·f].
    /// `tiling` and `bandFloats` as for `encode`; the choice is made on the decoded image's size.
    public func decode(_ z: Tensor, tiling: VAETiling = .automatic,
                       bandFloats: Int = VAERowBandExecutor.defaultBandFloats) -> Tensor {
        let f = config.scaleFactor
        let pixels = z.shape[0] * z.shape[2] * f * z.shape[3] * f
        let latents = postQuantConv.map { $0(z) } ?? z
        return tiling.usesBands(pixels: pixels)
            ? VAERowBandExecutor(bandFloats: bandFloats).decode(decoder, latents) : decoder(latents)
    }
}

struct VAEEncoder {
    let convIn: Conv2d
    let down: [(resnets: [ResnetBlock2D], downsampler: Downsample2D?)]
    let mid: VAEMidBlock
    let normOut: GroupNorm
    let convOut: Conv2d

    init(_ w: Weights, config c: AutoencoderKLConfig) throws {
        let ch = c.blockOutChannels, g = c.normNumGroups
        convIn = try Conv2d(w["conv_in"], inChannels: c.inChannels, outChannels: ch[0], kernel: 3, padding: .symmetric(1))
        var levels: [(resnets: [ResnetBlock2D], downsampler: Downsample2D?)] = []
        var outCh = ch[0]
        for i in 0..<ch.count {
            let inCh = outCh
            outCh = ch[i]
            let b = w["down_blocks"][i]
            let resnets = try (0..<c.layersPerBlock).map {
                try ResnetBlock2D(b["resnets"][$0], inChannels: $0 == 0 ? inCh : outCh, outChannels: outCh,
                                  tembChannels: nil, groups: g, eps: 1e-6)
            }
            let ds = i < ch.count - 1 ? try Downsample2D(b["downsamplers.0"], channels: outCh, padding: 0) : nil
            levels.append((resnets, ds))
        }
        down = levels
        mid = try VAEMidBlock(w["mid_block"], channels: ch[ch.count - 1], groups: g, attention: c.midBlockAddAttention)
        normOut = try GroupNorm(w["conv_norm_out"], groups: g, channels: ch[ch.count - 1], eps: 1e-6)
        convOut = try Conv2d(w["conv_out"], inChannels: ch[ch.count - 1], outChannels: 2 * c.latentChannels, kernel: 3, padding: .symmetric(1))
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        var h = convIn(x)
        for level in down {
            for r in level.resnets { h = r(h, temb: nil) }
            if let ds = level.downsampler { h = ds(h) }
        }
        h = mid(h)
        return convOut(Activation.silu(normOut(h)))
    }
}

struct VAEDecoder {
    let convIn: Conv2d
    let mid: VAEMidBlock
    let up: [(resnets: [ResnetBlock2D], upsampler: Upsample2D?)]
    let normOut: GroupNorm
    let convOut: Conv2d

    init(_ w: Weights, config c: AutoencoderKLConfig) throws {
        let ch = c.blockOutChannels, g = c.normNumGroups
        let rev = Array(ch.reversed())
        convIn = try Conv2d(w["conv_in"], inChannels: c.latentChannels, outChannels: rev[0], kernel: 3, padding: .symmetric(1))
        mid = try VAEMidBlock(w["mid_block"], channels: rev[0], groups: g, attention: c.midBlockAddAttention)
        var levels: [(resnets: [ResnetBlock2D], upsampler: Upsample2D?)] = []
        var outCh = rev[0]
        for i in 0..<rev.count {
            let prev = outCh
            outCh = rev[i]
            let b = w["up_blocks"][i]
            let resnets = try (0..<(c.layersPerBlock + 1)).map {
                try ResnetBlock2D(b["resnets"][$0], inChannels: $0 == 0 ? prev : outCh, outChannels: outCh,
                                  tembChannels: nil, groups: g, eps: 1e-6)
            }
            let us = i < rev.count - 1 ? try Upsample2D(b["upsamplers.0"], channels: outCh) : nil
            levels.append((resnets, us))
        }
        up = levels
        normOut = try GroupNorm(w["conv_norm_out"], groups: g, channels: ch[0], eps: 1e-6)
        convOut = try Conv2d(w["conv_out"], inChannels: ch[0], outChannels: c.outChannels, kernel: 3, padding: .symmetric(1))
    }

    func callAsFunction(_ z: Tensor) -> Tensor {
        var h = mid(convIn(z))
        for level in up {
            for r in level.resnets { h = r(h, temb: nil) }
            if let us = level.upsampler { h = us(h) }
        }
        return convOut(Activation.silu(normOut(h)))
    }
}

/// UNetMidBlock2D as the VAE uses it: resnet → single-head attention over all pixels → resnet.
struct VAEMidBlock {
    let resnet1: ResnetBlock2D, resnet2: ResnetBlock2D
    let attention: VAEAttention?

    init(_ w: Weights, channels: Int, groups: Int, attention hasAttention: Bool) throws {
        resnet1 = try ResnetBlock2D(w["resnets.0"], inChannels: channels, outChannels: channels, tembChannels: nil, groups: groups, eps: 1e-6)
        resnet2 = try ResnetBlock2D(w["resnets.1"], inChannels: channels, outChannels: channels, tembChannels: nil, groups: groups, eps: 1e-6)
        attention = hasAttention ? try VAEAttention(w["attentions.0"], channels: channels, groups: groups) : nil
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        var h = resnet1(x, temb: nil)
        if let a = attention { h = a(h) }
        return resnet2(h, temb: nil)
    }
}

/// Spatial self-attention with its own GroupNorm and a residual (one head of all channels).
struct VAEAttention {
    let groupNorm: GroupNorm
    let attention: Attention

    init(_ w: Weights, channels: Int, groups: Int) throws {
        groupNorm = try GroupNorm(w["group_norm"], groups: groups, channels: channels, eps: 1e-6)
        attention = try Attention(w, queryDim: channels, contextDim: nil, heads: 1, headDim: channels, qkvBias: true)
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        let (h, w) = (x.shape[2], x.shape[3])
        let tokens = Elementwise.channelsToTokens(groupNorm(x))
        let out = Elementwise.tokensToChannels(attention(tokens), height: h, width: w)
        Elementwise.addInPlace(out, x)
        return out
    }
}
