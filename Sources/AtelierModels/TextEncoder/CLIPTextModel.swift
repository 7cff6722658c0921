import AtelierKernels

/// The SD2 text tower (OpenCLIP ViT-H/14 as transformers' CLIPTextModel): token + position
/// embeddings, pre-LN causal transformer layers, final LayerNorm. SD2 keeps 23 of OpenCLIP's 24
/// blocks (the "penultimate" layer), which the config's `num_hidden_layers` already says.
public struct CLIPTextModel {
    public let config: CLIPTextConfig
    /// Parameters in the weight source this network was built from.
    public let parameterCount: Int
    let tokenEmbedding: Embedding
    let positionEmbedding: Embedding
    let layers: [CLIPEncoderLayer]
    let finalLayerNorm: LayerNorm

    /// `weights` must be rooted at the CLIPTextModel (keys `text_model.…` or, as transformers 5
    /// saves them, `embeddings.…` directly).
    public init(config: CLIPTextConfig, weights source: WeightSource) throws {
        self.config = config
        parameterCount = source.parameterCount
        let root: Weights = source.contains("text_model.embeddings.token_embedding.weight")
            ? Weights(source)["text_model"] : Weights(source)
        let h = config.hiddenSize
        tokenEmbedding = try Embedding(root["embeddings.token_embedding"], count: config.vocabSize, dim: h)
        positionEmbedding = try Embedding(root["embeddings.position_embedding"], count: config.maxPositionEmbeddings, dim: h)
        guard h % config.numAttentionHeads == 0 else {
            throw ModelError.invalidConfig(file: "text_encoder/config.json",
                                           reason: "hidden_size \(h) is not divisible by num_attention_heads \(config.numAttentionHeads)")
        }
        layers = try (0..<config.numHiddenLayers).map {
            try CLIPEncoderLayer(root["encoder.layers"][$0], config: config)
        }
        finalLayerNorm = try LayerNorm(root["final_layer_norm"], dim: h, eps: config.layerNormEps)
    }

    /// `ids`: [batch][tokens] → last_hidden_state [batch, tokens, hidden] (final LayerNorm applied),
    /// what diffusers passes to the UNet as `encoder_hidden_states`.
    public func callAsFunction(_ ids: [[Int]]) throws -> Tensor {
        let b = ids.count, t = ids.first?.count ?? 0
        guard b > 0, t > 0, t <= config.maxPositionEmbeddings, ids.allSatisfy({ $0.count == t }) else {
            throw ModelError.unsupported("text encoder input must be 1…\(config.maxPositionEmbeddings) tokens per prompt, equal for all prompts")
        }
        if let bad = ids.joined().first(where: { $0 < 0 || $0 >= config.vocabSize }) {
            throw ModelError.unsupported("token id \(bad) is outside the text encoder's vocabulary of \(config.vocabSize)")
        }
        let h = config.hiddenSize
        let x = Tensor(uninitialized: [b, t, h])
        let positions = positionEmbedding(Array(0..<t))
        for (i, row) in ids.enumerated() {
            let tok = tokenEmbedding(row)
            let dst = x.pointer + i * t * h
            for j in 0..<(t * h) { dst[j] = tok.pointer[j] + positions.pointer[j] }
        }
        var hidden = x
        for layer in layers { hidden = layer(hidden) }
        return finalLayerNorm(hidden)
    }
}

/// One pre-LN transformer layer with causal self-attention.
struct CLIPEncoderLayer {
    let layerNorm1: LayerNorm, layerNorm2: LayerNorm
    let qProj: Linear, kProj: Linear, vProj: Linear, outProj: Linear
    let fc1: Linear, fc2: Linear
    let heads: Int
    let act: ActivationKind

    init(_ w: Weights, config: CLIPTextConfig) throws {
        let h = config.hiddenSize
        layerNorm1 = try LayerNorm(w["layer_norm1"], dim: h, eps: config.layerNormEps)
        layerNorm2 = try LayerNorm(w["layer_norm2"], dim: h, eps: config.layerNormEps)
        qProj = try Linear(w["self_attn.q_proj"], inFeatures: h, outFeatures: h)
        kProj = try Linear(w["self_attn.k_proj"], inFeatures: h, outFeatures: h)
        vProj = try Linear(w["self_attn.v_proj"], inFeatures: h, outFeatures: h)
        outProj = try Linear(w["self_attn.out_proj"], inFeatures: h, outFeatures: h)
        fc1 = try Linear(w["mlp.fc1"], inFeatures: h, outFeatures: config.intermediateSize)
        fc2 = try Linear(w["mlp.fc2"], inFeatures: config.intermediateSize, outFeatures: h)
        heads = config.numAttentionHeads
        act = config.hiddenAct
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        let n = layerNorm1(x)
        let a = AttentionOp.attention(q: qProj(n), k: kProj(n), v: vProj(n), heads: heads, causal: true)
        let h = Elementwise.add(x, outProj(a))
        let m = fc2(act.apply(fc1(layerNorm2(h))))
        Elementwise.addInPlace(h, m)
        return h
    }
}
