/// `text_encoder/config.json` of a diffusers SD2 model (transformers' CLIPTextConfig keys).
public struct CLIPTextConfig: Codable, Sendable, Equatable {
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var hiddenAct: ActivationKind
    public var layerNormEps: Float
    public var maxPositionEmbeddings: Int
    public var vocabSize: Int

    enum CodingKeys: String, CodingKey {
        case hiddenSize = "hidden_size", intermediateSize = "intermediate_size"
        case numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
        case hiddenAct = "hidden_act", layerNormEps = "layer_norm_eps"
        case maxPositionEmbeddings = "max_position_embeddings", vocabSize = "vocab_size"
        case textConfig = "text_config"
    }

    public init(hiddenSize: Int = 1024, intermediateSize: Int = 4096, numHiddenLayers: Int = 23,
                numAttentionHeads: Int = 16, hiddenAct: ActivationKind = .gelu, layerNormEps: Float = 1e-5,
                maxPositionEmbeddings: Int = 77, vocabSize: Int = 49408) {
        self.hiddenSize = hiddenSize; self.intermediateSize = intermediateSize
        self.numHiddenLayers = numHiddenLayers; self.numAttentionHeads = numAttentionHeads
        self.hiddenAct = hiddenAct; self.layerNormEps = layerNormEps
        self.maxPositionEmbeddings = maxPositionEmbeddings; self.vocabSize = vocabSize
    }

    public init(from decoder: Decoder) throws {
        let top = try decoder.container(keyedBy: CodingKeys.self)
        // A full CLIPConfig nests the text tower under `text_config`.
        let c = top.contains(.textConfig) ? try top.nestedContainer(keyedBy: CodingKeys.self, forKey: .textConfig) : top
        let d = CLIPTextConfig()
        hiddenSize = try c.decodeIfPresent(Int.self, forKey: .hiddenSize) ?? 512
        intermediateSize = try c.decodeIfPresent(Int.self, forKey: .intermediateSize) ?? 2048
        numHiddenLayers = try c.decodeIfPresent(Int.self, forKey: .numHiddenLayers) ?? 12
        numAttentionHeads = try c.decodeIfPresent(Int.self, forKey: .numAttentionHeads) ?? 8
        hiddenAct = try c.decodeIfPresent(ActivationKind.self, forKey: .hiddenAct) ?? .quickGelu
        layerNormEps = try c.decodeIfPresent(Float.self, forKey: .layerNormEps) ?? d.layerNormEps
        maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? 77
        vocabSize = try c.decodeIfPresent(Int.self, forKey: .vocabSize) ?? 49408
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(hiddenSize, forKey: .hiddenSize); try c.encode(intermediateSize, forKey: .intermediateSize)
        try c.encode(numHiddenLayers, forKey: .numHiddenLayers); try c.encode(numAttentionHeads, forKey: .numAttentionHeads)
        try c.encode(hiddenAct, forKey: .hiddenAct); try c.encode(layerNormEps, forKey: .layerNormEps)
        try c.encode(maxPositionEmbeddings, forKey: .maxPositionEmbeddings); try c.encode(vocabSize, forKey: .vocabSize)
    }
}
