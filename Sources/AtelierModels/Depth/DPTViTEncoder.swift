import AtelierKernels

/// One pre-LN ViT block (`DPTViTLayer`): h += dense(attn(LN_before(h))); h += out(act(inter(LN_after(h)))).
/// LayerNorm eps is the config's 1e-12 (not 1e-5/1e-6 as elsewhere in SD2).
struct DPTViTLayer {
    let layernormBefore: LayerNorm, layernormAfter: LayerNorm
    let query: Linear, key: Linear, value: Linear, attentionOutput: Linear
    let intermediate: Linear, output: Linear
    let heads: Int
    let activation: ActivationKind

    init(_ w: Weights, config c: DPTConfig) throws {
        let d = c.hiddenSize
        layernormBefore = try LayerNorm(w["layernorm_before"], dim: d, eps: c.layerNormEps)
        layernormAfter = try LayerNorm(w["layernorm_after"], dim: d, eps: c.layerNormEps)
        let a = w["attention.attention"]
        query = try Linear(a["query"], inFeatures: d, outFeatures: d, bias: c.qkvBias)
        key = try Linear(a["key"], inFeatures: d, outFeatures: d, bias: c.qkvBias)
        value = try Linear(a["value"], inFeatures: d, outFeatures: d, bias: c.qkvBias)
        attentionOutput = try Linear(w["attention.output.dense"], inFeatures: d, outFeatures: d)
        intermediate = try Linear(w["intermediate.dense"], inFeatures: d, outFeatures: c.intermediateSize)
        output = try Linear(w["output.dense"], inFeatures: c.intermediateSize, outFeatures: d)
        heads = c.numAttentionHeads
        activation = c.hiddenAct
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        let n = layernormBefore(x)
        let h = attentionOutput(AttentionOp.attention(q: query(n), k: key(n), v: value(n), heads: heads))
        Elementwise.addInPlace(h, x)
        let y = output(activation.apply(intermediate(layernormAfter(h))))
        Elementwise.addInPlace(y, h)
        return y
    }
}

/// The ViT encoder (`DPTViTEncoder`), returning the outputs of the layers the neck reads
/// (`DPTConfig.neckLayerIndices`). Layers after the last of those cannot change the depth — the
/// final `dpt.layernorm` and everything after it feed no head of `DPTForDepthEstimation` — so they
/// are loaded (the checkpoint must be complete) but not run.
struct DPTViTEncoder {
    let layers: [DPTViTLayer]
    let selected: [Int]

    init(_ w: Weights, config: DPTConfig) throws {
        layers = try (0..<config.numHiddenLayers).map { try DPTViTLayer(w["layer"][$0], config: config) }
        selected = config.neckLayerIndices
    }

    /// tokens [B, 1 + N, D] → the selected layers' outputs, in layer order.
    func callAsFunction(_ tokens: Tensor) -> [Tensor] {
        var h = tokens
        var out: [Tensor] = []
        let last = selected.max() ?? -1
        for (i, layer) in layers.enumerated() where i <= last {
            h = layer(h)
            if selected.contains(i) { out.append(h) }
        }
        return out
    }
}
