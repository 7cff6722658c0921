/// `unet/config.json` (diffusers' UNet2DConditionModel keys). Only what SD2-family UNets use is
/// modelled; a config asking for anything else is refused at load rather than silently run wrong.
public struct UNet2DConditionConfig: Codable, Sendable {
    public var inChannels: Int = 4
    public var outChannels: Int = 4
    public var sampleSize: Int? = 64
    public var flipSinToCos: Bool = true
    public var freqShift: Int = 0
    public var downBlockTypes: [String] = ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"]
    public var upBlockTypes: [String] = ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]
    public var midBlockType: String? = "UNetMidBlock2DCrossAttn"
    public var onlyCrossAttention: PerBlock<Bool> = .all(false)
    public var blockOutChannels: [Int] = [320, 640, 1280, 1280]
    public var layersPerBlock: PerBlock<Int> = .all(2)
    public var downsamplePadding: Int = 1
    public var midBlockScaleFactor: Float = 1
    public var actFn: ActivationKind = .silu
    public var normNumGroups: Int = 32
    public var normEps: Float = 1e-5
    public var crossAttentionDim: PerBlock<Int> = .all(1280)
    public var transformerLayersPerBlock: PerBlock<Int> = .all(1)
    public var attentionHeadDim: PerBlock<Int>? = .all(8)
    public var numAttentionHeads: PerBlock<Int>? = nil
    public var useLinearProjection: Bool = false
    public var upcastAttention: Bool = false
    public var numClassEmbeds: Int? = nil
    public var classEmbedType: String? = nil
    public var resnetTimeScaleShift: String = "default"
    public var dualCrossAttention: Bool = false
    public var addtionEmbedType: String? = nil
    public var timeEmbeddingType: String = "positional"
    public var convInKernel: Int = 3
    public var convOutKernel: Int = 3

    enum CodingKeys: String, CodingKey {
        case inChannels = "in_channels", outChannels = "out_channels", sampleSize = "sample_size"
        case flipSinToCos = "flip_sin_to_cos", freqShift = "freq_shift"
        case downBlockTypes = "down_block_types", upBlockTypes = "up_block_types", midBlockType = "mid_block_type"
        case onlyCrossAttention = "only_cross_attention", blockOutChannels = "block_out_channels"
        case layersPerBlock = "layers_per_block", downsamplePadding = "downsample_padding"
        case midBlockScaleFactor = "mid_block_scale_factor", actFn = "act_fn"
        case normNumGroups = "norm_num_groups", normEps = "norm_eps", crossAttentionDim = "cross_attention_dim"
        case transformerLayersPerBlock = "transformer_layers_per_block"
        case attentionHeadDim = "attention_head_dim", numAttentionHeads = "num_attention_heads"
        case useLinearProjection = "use_linear_projection", upcastAttention = "upcast_attention"
        case numClassEmbeds = "num_class_embeds", classEmbedType = "class_embed_type"
        case resnetTimeScaleShift = "resnet_time_scale_shift", dualCrossAttention = "dual_cross_attention"
        case addtionEmbedType = "addition_embed_type", timeEmbeddingType = "time_embedding_type"
        case convInKernel = "conv_in_kernel", convOutKernel = "conv_out_kernel"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func v<T: Decodable>(_ k: CodingKeys, _ d: T) throws -> T { try c.decodeIfPresent(T.self, forKey: k) ?? d }
        let d = UNet2DConditionConfig()
        inChannels = try v(.inChannels, d.inChannels); outChannels = try v(.outChannels, d.outChannels)
        sampleSize = try c.decodeIfPresent(Int.self, forKey: .sampleSize)
        flipSinToCos = try v(.flipSinToCos, d.flipSinToCos); freqShift = try v(.freqShift, d.freqShift)
        downBlockTypes = try v(.downBlockTypes, d.downBlockTypes); upBlockTypes = try v(.upBlockTypes, d.upBlockTypes)
        midBlockType = try c.decodeIfPresent(String.self, forKey: .midBlockType) ?? d.midBlockType
        onlyCrossAttention = try v(.onlyCrossAttention, d.onlyCrossAttention)
        blockOutChannels = try v(.blockOutChannels, d.blockOutChannels)
        layersPerBlock = try v(.layersPerBlock, d.layersPerBlock)
        downsamplePadding = try v(.downsamplePadding, d.downsamplePadding)
        midBlockScaleFactor = try v(.midBlockScaleFactor, d.midBlockScaleFactor)
        actFn = try v(.actFn, d.actFn); normNumGroups = try v(.normNumGroups, d.normNumGroups)
        normEps = try v(.normEps, d.normEps); crossAttentionDim = try v(.crossAttentionDim, d.crossAttentionDim)
        transformerLayersPerBlock = try v(.transformerLayersPerBlock, d.transformerLayersPerBlock)
        attentionHeadDim = try c.decodeIfPresent(PerBlock<Int>.self, forKey: .attentionHeadDim) ?? d.attentionHeadDim
        numAttentionHeads = try c.decodeIfPresent(PerBlock<Int>.self, forKey: .numAttentionHeads)
        useLinearProjection = try v(.useLinearProjection, d.useLinearProjection)
        upcastAttention = try v(.upcastAttention, d.upcastAttention)
        numClassEmbeds = try c.decodeIfPresent(Int.self, forKey: .numClassEmbeds)
        classEmbedType = try c.decodeIfPresent(String.self, forKey: .classEmbedType)
        resnetTimeScaleShift = try v(.resnetTimeScaleShift, d.resnetTimeScaleShift)
        dualCrossAttention = try v(.dualCrossAttention, d.dualCrossAttention)
        addtionEmbedType = try c.decodeIfPresent(String.self, forKey: .addtionEmbedType)
        timeEmbeddingType = try v(.timeEmbeddingType, d.timeEmbeddingType)
        convInKernel = try v(.convInKernel, d.convInKernel); convOutKernel = try v(.convOutKernel, d.convOutKernel)
    }

    /// Per-level values resolved as diffusers' `__init__` does, or an error for what we don't run.
    public func resolved() throws -> ResolvedUNetConfig {
        let n = blockOutChannels.count
        guard n > 0, downBlockTypes.count == n, upBlockTypes.count == n else {
            throw ModelError.invalidConfig(file: "unet/config.json", reason: "block_out_channels, down_block_types and up_block_types must have the same length")
        }
        if resnetTimeScaleShift != "default" { throw ModelError.unsupported("unet resnet_time_scale_shift '\(resnetTimeScaleShift)'") }
        if dualCrossAttention { throw ModelError.unsupported("unet dual_cross_attention") }
        if let t = classEmbedType { throw ModelError.unsupported("unet class_embed_type '\(t)'") }
        if let t = addtionEmbedType { throw ModelError.unsupported("unet addition_embed_type '\(t)'") }
        if timeEmbeddingType != "positional" { throw ModelError.unsupported("unet time_embedding_type '\(timeEmbeddingType)'") }
        if convInKernel != 3 || convOutKernel != 3 { throw ModelError.unsupported("unet conv kernels other than 3") }
        let known: Set<String> = ["CrossAttnDownBlock2D", "DownBlock2D"]
        let knownUp: Set<String> = ["CrossAttnUpBlock2D", "UpBlock2D"]
        if let bad = downBlockTypes.first(where: { !known.contains($0) }) { throw ModelError.unsupported("unet down block type '\(bad)'") }
        if let bad = upBlockTypes.first(where: { !knownUp.contains($0) }) { throw ModelError.unsupported("unet up block type '\(bad)'") }
        if let m = midBlockType, m != "UNetMidBlock2DCrossAttn" { throw ModelError.unsupported("unet mid block type '\(m)'") }
        // diffusers: `num_attention_heads = num_attention_heads or attention_head_dim` (the
        // historical misnomer: SD2's attention_head_dim lists head *counts*).
        guard let headsSpec = numAttentionHeads ?? attentionHeadDim else {
            throw ModelError.invalidConfig(file: "unet/config.json", reason: "neither num_attention_heads nor attention_head_dim is set")
        }
        return ResolvedUNetConfig(
            heads: try headsSpec.expand(n, key: "attention_head_dim"),
            layers: try layersPerBlock.expand(n, key: "layers_per_block"),
            crossDim: try crossAttentionDim.expand(n, key: "cross_attention_dim"),
            transformerLayers: try transformerLayersPerBlock.expand(n, key: "transformer_layers_per_block"),
            onlyCross: try onlyCrossAttention.expand(n, key: "only_cross_attention"))
    }
}

/// Per-level lists, expanded from ints where the config gave one value for all levels.
public struct ResolvedUNetConfig: Sendable {
    public let heads: [Int]
    public let layers: [Int]
    public let crossDim: [Int]
    public let transformerLayers: [Int]
    public let onlyCross: [Bool]
}
