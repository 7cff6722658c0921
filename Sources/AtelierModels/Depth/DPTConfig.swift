/// `depth_estimator/config.json` of SD2-depth: transformers' `DPTConfig` keys, with the nested
/// BiT `backbone_config`. Absent keys take `DPTConfig`'s defaults (which are DPT-Large's, not
/// the hybrid's — the hybrid values always come from the file).
public struct DPTConfig: Codable, Sendable {
    public var hiddenSize: Int = 768
    public var numHiddenLayers: Int = 12
    public var numAttentionHeads: Int = 12
    public var intermediateSize: Int = 3072
    public var hiddenAct: ActivationKind = .gelu
    public var layerNormEps: Float = 1e-12
    /// An int or [height, width] in the file.
    public var imageSize: PerBlock<Int> = .all(384)
    public var patchSize: PerBlock<Int> = .all(16)
    public var numChannels: Int = 3
    public var isHybrid: Bool = false
    public var qkvBias: Bool = true
    /// Hybrid: only entries 2… matter — they pick the ViT layers (0-based) whose outputs feed the
    /// neck; entries 0 and 1 stand for the two BiT feature maps and are never read.
    public var backboneOutIndices: [Int] = [2, 5, 8, 11]
    public var readoutType: String = "project"
    public var reassembleFactors: [Double] = [4, 2, 1, 0.5]
    public var neckHiddenSizes: [Int] = [96, 192, 384, 768]
    public var fusionHiddenSize: Int = 256
    public var headInIndex: Int = -1
    public var useBatchNormInFusionResidual: Bool = false
    /// nil means "not use_batch_norm_in_fusion_residual".
    public var useBiasInFusionResidual: Bool? = nil
    public var addProjection: Bool = false
    public var backboneFeatmapShape: [Int]? = [1, 1024, 24, 24]
    public var neckIgnoreStages: [Int] = [0, 1]
    public var backboneConfig: BitConfig? = nil
    public var modelType: String? = "dpt"

    enum CodingKeys: String, CodingKey {
        case hiddenSize = "hidden_size", numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
        case intermediateSize = "intermediate_size", hiddenAct = "hidden_act", layerNormEps = "layer_norm_eps"
        case imageSize = "image_size", patchSize = "patch_size", numChannels = "num_channels", isHybrid = "is_hybrid"
        case qkvBias = "qkv_bias", backboneOutIndices = "backbone_out_indices", readoutType = "readout_type"
        case reassembleFactors = "reassemble_factors", neckHiddenSizes = "neck_hidden_sizes"
        case fusionHiddenSize = "fusion_hidden_size", headInIndex = "head_in_index"
        case useBatchNormInFusionResidual = "use_batch_norm_in_fusion_residual"
        case useBiasInFusionResidual = "use_bias_in_fusion_residual", addProjection = "add_projection"
        case backboneFeatmapShape = "backbone_featmap_shape", neckIgnoreStages = "neck_ignore_stages"
        case backboneConfig = "backbone_config", modelType = "model_type"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        // `try?`-free: a present key of the wrong type is an error; null counts as absent
        // (transformers writes e.g. "num_hidden_layers": null in backbone-based configs).
        func v<T: Decodable>(_ k: CodingKeys, _ d: T) throws -> T { try c.decodeIfPresent(T.self, forKey: k) ?? d }
        let d = DPTConfig()
        hiddenSize = try v(.hiddenSize, d.hiddenSize); numHiddenLayers = try v(.numHiddenLayers, d.numHiddenLayers)
        numAttentionHeads = try v(.numAttentionHeads, d.numAttentionHeads)
        intermediateSize = try v(.intermediateSize, d.intermediateSize); hiddenAct = try v(.hiddenAct, d.hiddenAct)
        layerNormEps = try v(.layerNormEps, d.layerNormEps)
        imageSize = try v(.imageSize, d.imageSize); patchSize = try v(.patchSize, d.patchSize)
        numChannels = try v(.numChannels, d.numChannels); isHybrid = try v(.isHybrid, d.isHybrid)
        qkvBias = try v(.qkvBias, d.qkvBias); backboneOutIndices = try v(.backboneOutIndices, d.backboneOutIndices)
        readoutType = try v(.readoutType, d.readoutType); reassembleFactors = try v(.reassembleFactors, d.reassembleFactors)
        neckHiddenSizes = try v(.neckHiddenSizes, d.neckHiddenSizes); fusionHiddenSize = try v(.fusionHiddenSize, d.fusionHiddenSize)
        headInIndex = try v(.headInIndex, d.headInIndex)
        useBatchNormInFusionResidual = try v(.useBatchNormInFusionResidual, d.useBatchNormInFusionResidual)
        useBiasInFusionResidual = try c.decodeIfPresent(Bool.self, forKey: .useBiasInFusionResidual)
        addProjection = try v(.addProjection, d.addProjection)
        backboneFeatmapShape = try c.decodeIfPresent([Int].self, forKey: .backboneFeatmapShape) ?? d.backboneFeatmapShape
        neckIgnoreStages = try v(.neckIgnoreStages, d.neckIgnoreStages)
        backboneConfig = try c.decodeIfPresent(BitConfig.self, forKey: .backboneConfig)
        modelType = try c.decodeIfPresent(String.self, forKey: .modelType)
    }

    /// The BiT config the hybrid embeddings build (`DPTConfig.__post_init__`).
    public var resolvedBackbone: BitConfig { backboneConfig ?? .dptDefault }

    /// Whether the fusion residual units' convs carry a bias.
    public var fusionResidualBias: Bool { useBiasInFusionResidual ?? !useBatchNormInFusionResidual }

    /// The ViT layers (0-based) whose outputs feed the neck, in *layer* order: transformers keeps
    /// `hidden_states[1:][idx] if idx in backbone_out_indices[2:]`, so the order inside the list
    /// and repeats do not matter.
    public var neckLayerIndices: [Int] {
        let wanted = Set(backboneOutIndices.dropFirst(2))
        return (0..<numHiddenLayers).filter { wanted.contains($0) }
    }

    /// Input side the model accepts (the hybrid embeddings refuse any other size).
    public var inputSide: Int {
        switch imageSize { case .all(let s): return s; case .each(let s): return s.first ?? 0 }
    }

    public var patch: Int {
        switch patchSize { case .all(let s): return s; case .each(let s): return s.first ?? 0 }
    }

    /// Everything transformers would reject, or would build into a network that fails or that
    /// this port does not implement, reported before any weight is read.
    public func validate(file: String) throws {
        func bad(_ reason: String) -> ModelError { .invalidConfig(file: file, reason: reason) }
        if let modelType, modelType != "dpt" {
            throw bad("model_type is '\(modelType)', not 'dpt' (a DPT depth estimator config.json was expected)")
        }
        guard isHybrid else {
            throw ModelError.unsupported("DPT without the BiT hybrid backbone (is_hybrid false); only DPT-Hybrid (SD2-depth's estimator) is implemented")
        }
        guard readoutType == "project" else { throw bad("readout_type must be 'project' for DPT-Hybrid, got '\(readoutType)'") }
        for (key, value) in [("image_size", imageSize), ("patch_size", patchSize)] {
            if case .each(let s) = value, s.count != 2 || s[0] != s[1] {
                throw ModelError.unsupported("\(key) \(s): DPT-Hybrid reassembles tokens on a square grid")
            }
        }
        guard inputSide > 0, patch > 0 else { throw bad("image_size and patch_size must be positive") }
        guard hiddenSize > 0, numAttentionHeads > 0, hiddenSize % numAttentionHeads == 0 else {
            throw bad("hidden_size \(hiddenSize) is not a multiple of num_attention_heads \(numAttentionHeads)")
        }
        guard numHiddenLayers > 0, intermediateSize > 0 else { throw bad("num_hidden_layers and intermediate_size must be positive") }
        guard Set(neckIgnoreStages) == [0, 1] else {
            throw ModelError.unsupported("neck_ignore_stages \(neckIgnoreStages): the hybrid neck passes exactly stages 0 and 1 (the BiT maps) through")
        }
        guard let shape = backboneFeatmapShape, shape.count == 4, shape[1] > 0 else {
            throw bad("backbone_featmap_shape must be [1, channels, height, width]")
        }
        let stages = 2 + neckLayerIndices.count
        guard neckHiddenSizes.count == stages else {
            throw bad("neck_hidden_sizes has \(neckHiddenSizes.count) entries but the neck gets \(stages) feature maps (2 BiT maps + ViT layers \(neckLayerIndices) from backbone_out_indices[2:])")
        }
        guard reassembleFactors.count >= stages else {
            throw bad("reassemble_factors has \(reassembleFactors.count) entries for \(stages) neck stages")
        }
        for f in reassembleFactors.prefix(stages).dropFirst(2) {
            let ok = f == 1 || (f > 1 && f == f.rounded()) || (f < 1 && f > 0 && (1 / f) == (1 / f).rounded())
            guard ok else { throw ModelError.unsupported("reassemble factor \(f) (only 1, integers > 1 and 1/integer)") }
        }
        let fused = neckHiddenSizes.count
        guard headInIndex >= -fused && headInIndex < fused else {
            throw bad("head_in_index \(headInIndex) is outside the \(fused) fusion outputs")
        }
        guard fusionHiddenSize >= 2 else { throw bad("fusion_hidden_size must be at least 2") }
        if addProjection && fusionHiddenSize != 256 {
            throw bad("add_projection builds a 256→256 conv (hard-coded in transformers), but fusion_hidden_size is \(fusionHiddenSize)")
        }
        try resolvedBackbone.validate(file: file)
        guard try resolvedBackbone.featureIndices(file: file).count == 3 else {
            throw bad("the hybrid embeddings need exactly 3 BiT feature maps (backbone_config.out_features)")
        }
    }
}

extension BitConfig {
    /// The BiT variants this port builds: non-preactivation bottlenecks without dilation.
    func validate(file: String) throws {
        func bad(_ reason: String) -> ModelError { .invalidConfig(file: file, reason: reason) }
        guard layerType == "bottleneck" else {
            throw ModelError.unsupported("BiT layer_type '\(layerType)' (DPT-Hybrid uses 'bottleneck')")
        }
        _ = try BitPaddingPolicy(globalPadding: globalPadding, file: file)
        guard stageCount > 0, depths.prefix(stageCount).allSatisfy({ $0 > 0 }) else { throw bad("backbone_config.depths must be positive") }
        guard numGroups > 0, embeddingSize > 0, widthFactor > 0 else { throw bad("backbone_config sizes must be positive") }
        // BitEncoder: the stride starts at 4 (stem) and doubles per stage after the first; once it
        // reaches output_stride, stages dilate instead — not implemented (DPT never gets there).
        var stride = 4
        for s in 1..<max(stageCount, 1) {
            if stride >= outputStride { throw ModelError.unsupported("dilated BiT stages (output_stride \(outputStride) reached at stage \(s + 1))") }
            stride *= 2
        }
    }
}
