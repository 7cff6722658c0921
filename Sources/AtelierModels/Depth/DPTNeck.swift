import AtelierKernels

/// `DPTNeck`: reassemble the four inputs into maps, bring each to the fusion width with a 3×3
/// conv without bias (`neck.convs.i`), then fuse from the coarsest map up
/// (`neck.fusion_stage.layers.0` takes the last input; the mapping is reversed). Returns every
/// fusion output, coarsest first — the head picks one with `head_in_index`.
struct DPTNeck {
    let reassemble: DPTReassembleStage
    let convs: [Conv2d]
    let fusion: [DPTFeatureFusionLayer]

    init(_ w: Weights, config c: DPTConfig) throws {
        reassemble = try DPTReassembleStage(w["reassemble_stage"], config: c)
        convs = try c.neckHiddenSizes.enumerated().map { i, channels in
            try Conv2d(w["convs"][i], inChannels: channels, outChannels: c.fusionHiddenSize, kernel: 3,
                       padding: .symmetric(1), bias: false)
        }
        fusion = try c.neckHiddenSizes.indices.map { try DPTFeatureFusionLayer(w["fusion_stage.layers"][$0], config: c) }
    }

    func callAsFunction(_ inputs: [Tensor]) -> [Tensor] {
        let features = zip(reassemble(inputs), convs).map { x, conv in conv(x) }
        var fused: [Tensor] = []
        for (layer, feature) in zip(fusion, features.reversed()) {
            fused.append(fused.last.map { layer($0, skip: feature) } ?? layer(feature, skip: nil))
        }
        return fused
    }
}
