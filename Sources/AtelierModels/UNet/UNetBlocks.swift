import AtelierKernels

/// CrossAttnDownBlock2D / DownBlock2D: resnets (each followed by a transformer when the level has
/// attention), then an optional stride-2 downsampler. Every output is pushed on the skip stack.
struct UNetDownBlock {
    let resnets: [ResnetBlock2D]
    let attentions: [Transformer2DModel]
    let downsampler: Downsample2D?

    init(_ w: Weights, type: String, layers: Int, inChannels: Int, outChannels: Int, tembChannels: Int,
         addDownsample: Bool, config: UNet2DConditionConfig, heads: Int, crossDim: Int,
         transformerLayers: Int, onlyCross: Bool) throws {
        resnets = try (0..<layers).map {
            try ResnetBlock2D(w["resnets"][$0], inChannels: $0 == 0 ? inChannels : outChannels, outChannels: outChannels,
                              tembChannels: tembChannels, groups: config.normNumGroups, eps: config.normEps)
        }
        attentions = type == "CrossAttnDownBlock2D" ? try (0..<layers).map {
            try Transformer2DModel(w["attentions"][$0], channels: outChannels, heads: heads, layers: transformerLayers,
                                   crossDim: crossDim, groups: config.normNumGroups,
                                   linearProjection: config.useLinearProjection, onlyCrossAttention: onlyCross)
        } : []
        downsampler = addDownsample
            ? try Downsample2D(w["downsamplers.0"], channels: outChannels, padding: config.downsamplePadding) : nil
    }

    func callAsFunction(_ x: Tensor, temb: Tensor, context: Tensor, skips: inout [Tensor]) -> Tensor {
        var h = x
        for (i, resnet) in resnets.enumerated() {
            h = resnet(h, temb: temb)
            if i < attentions.count { h = attentions[i](h, context: context) }
            skips.append(h)
        }
        if let down = downsampler {
            h = down(h)
            skips.append(h)
        }
        return h
    }
}

/// CrossAttnUpBlock2D / UpBlock2D: each resnet first concatenates the newest skip (h first).
struct UNetUpBlock {
    let resnets: [ResnetBlock2D]
    let attentions: [Transformer2DModel]
    let upsampler: Upsample2D?

    init(_ w: Weights, type: String, layers: Int, inChannels: Int, prevOutputChannels: Int, outChannels: Int,
         tembChannels: Int, addUpsample: Bool, config: UNet2DConditionConfig, heads: Int, crossDim: Int,
         transformerLayers: Int, onlyCross: Bool) throws {
        resnets = try (0..<layers).map { j in
            let skip = j == layers - 1 ? inChannels : outChannels
            let resIn = j == 0 ? prevOutputChannels : outChannels
            return try ResnetBlock2D(w["resnets"][j], inChannels: resIn + skip, outChannels: outChannels,
                                     tembChannels: tembChannels, groups: config.normNumGroups, eps: config.normEps)
        }
        attentions = type == "CrossAttnUpBlock2D" ? try (0..<layers).map {
            try Transformer2DModel(w["attentions"][$0], channels: outChannels, heads: heads, layers: transformerLayers,
                                   crossDim: crossDim, groups: config.normNumGroups,
                                   linearProjection: config.useLinearProjection, onlyCrossAttention: onlyCross)
        } : []
        upsampler = addUpsample ? try Upsample2D(w["upsamplers.0"], channels: outChannels) : nil
    }

    func callAsFunction(_ x: Tensor, temb: Tensor, context: Tensor, skips: inout [Tensor], upsampleSize: (Int, Int)?) -> Tensor {
        var h = x
        for (i, resnet) in resnets.enumerated() {
            let skip = skips.removeLast()
            h = resnet(Elementwise.concatChannels([h, skip]), temb: temb)
            if i < attentions.count { h = attentions[i](h, context: context) }
        }
        if let up = upsampler { h = up(h, size: upsampleSize) }
        return h
    }
}

/// UNetMidBlock2DCrossAttn: resnet → transformer(s) → resnet.
struct UNetMidBlock {
    let resnets: [ResnetBlock2D]
    let attentions: [Transformer2DModel]

    init(_ w: Weights, channels: Int, tembChannels: Int, config: UNet2DConditionConfig, heads: Int,
         crossDim: Int, transformerLayers: Int) throws {
        resnets = try (0..<2).map {
            try ResnetBlock2D(w["resnets"][$0], inChannels: channels, outChannels: channels, tembChannels: tembChannels,
                              groups: config.normNumGroups, eps: config.normEps, outputScaleFactor: config.midBlockScaleFactor)
        }
        // diffusers' mid block ignores only_cross_attention: always self-attention first.
        attentions = [try Transformer2DModel(w["attentions.0"], channels: channels, heads: heads, layers: transformerLayers,
                                             crossDim: crossDim, groups: config.normNumGroups,
                                             linearProjection: config.useLinearProjection, onlyCrossAttention: false)]
    }

    func callAsFunction(_ x: Tensor, temb: Tensor, context: Tensor) -> Tensor {
        var h = resnets[0](x, temb: temb)
        h = attentions[0](h, context: context)
        return resnets[1](h, temb: temb)
    }
}
