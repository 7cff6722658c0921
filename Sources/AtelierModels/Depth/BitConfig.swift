/// `backbone_config` of a DPT-Hybrid `config.json`: transformers' `BitConfig` keys (BiT, the
/// ResNet that feeds the hybrid ViT).
///
/// A key absent from the dict takes `BitConfig`'s own default — transformers builds the backbone
/// with `BitConfig.from_dict(backbone_config)`, so e.g. a missing `layer_type` means
/// "preactivation", not DPT's "bottleneck". A missing `backbone_config` altogether is a different
/// case: `DPTConfig` then uses its sub-config defaults (`BitConfig.dptDefault`).
public struct BitConfig: Codable, Sendable, Equatable {
    public var numChannels: Int = 3
    public var embeddingSize: Int = 64
    /// One entry per stage *at most*: the encoder zips this with `depths`, so the 4-entry default
    /// with DPT's 3 depths builds 3 stages and ignores 2048.
    public var hiddenSizes: [Int] = [256, 512, 1024, 2048]
    public var depths: [Int] = [3, 4, 6, 3]
    public var layerType: String = "preactivation"
    public var hiddenAct: ActivationKind = .relu
    /// "SAME" (TF-style, dynamic for strided convs), "VALID", or nil (PyTorch-style symmetric).
    public var globalPadding: String? = nil
    public var numGroups: Int = 32
    public var embeddingDynamicPadding: Bool = false
    public var outputStride: Int = 32
    public var widthFactor: Int = 1
    public var outFeatures: [String]? = nil
    public var outIndices: [Int]? = nil
    public var modelType: String? = "bit"

    enum CodingKeys: String, CodingKey {
        case numChannels = "num_channels", embeddingSize = "embedding_size", hiddenSizes = "hidden_sizes"
        case depths, layerType = "layer_type", hiddenAct = "hidden_act", globalPadding = "global_padding"
        case numGroups = "num_groups", embeddingDynamicPadding = "embedding_dynamic_padding"
        case outputStride = "output_stride", widthFactor = "width_factor"
        case outFeatures = "out_features", outIndices = "out_indices", modelType = "model_type"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func v<T: Decodable>(_ k: CodingKeys, _ d: T) throws -> T { try c.decodeIfPresent(T.self, forKey: k) ?? d }
        let d = BitConfig()
        numChannels = try v(.numChannels, d.numChannels); embeddingSize = try v(.embeddingSize, d.embeddingSize)
        hiddenSizes = try v(.hiddenSizes, d.hiddenSizes); depths = try v(.depths, d.depths)
        layerType = try v(.layerType, d.layerType); hiddenAct = try v(.hiddenAct, d.hiddenAct)
        globalPadding = try c.decodeIfPresent(String.self, forKey: .globalPadding)
        numGroups = try v(.numGroups, d.numGroups)
        embeddingDynamicPadding = try v(.embeddingDynamicPadding, d.embeddingDynamicPadding)
        outputStride = try v(.outputStride, d.outputStride); widthFactor = try v(.widthFactor, d.widthFactor)
        outFeatures = try c.decodeIfPresent([String].self, forKey: .outFeatures)
        outIndices = try c.decodeIfPresent([Int].self, forKey: .outIndices)
        modelType = try c.decodeIfPresent(String.self, forKey: .modelType)
    }

    /// What `DPTConfig` builds when `is_hybrid` is set and `backbone_config` is absent
    /// (`DPTConfig.sub_configs_defaults`): BitConfig defaults plus these five.
    public static var dptDefault: BitConfig {
        var c = BitConfig()
        c.globalPadding = "same"
        c.layerType = "bottleneck"
        c.depths = [3, 4, 9]
        c.outFeatures = ["stage1", "stage2", "stage3"]
        c.embeddingDynamicPadding = true
        return c
    }

    /// Stages actually built: `zip(depths, hidden_sizes)`.
    public var stageCount: Int { min(depths.count, hiddenSizes.count) }

    /// "stem", "stage1", … — named after `depths`, as transformers does (even past `stageCount`).
    public var stageNames: [String] { ["stem"] + depths.indices.map { "stage\($0 + 1)" } }

    /// Indices into `stageNames` of the feature maps the backbone returns: `out_features`, else
    /// `out_indices`, else the last stage (transformers' `set_output_features_output_indices`).
    public func featureIndices(file: String) throws -> [Int] {
        let names = stageNames
        if let outFeatures {
            return try outFeatures.map { f in
                guard let i = names.firstIndex(of: f) else {
                    throw ModelError.invalidConfig(file: file, reason: "backbone_config.out_features names '\(f)', not one of \(names)")
                }
                return i
            }
        }
        if let outIndices {
            return try outIndices.map { i in
                let j = i < 0 ? i + names.count : i
                guard names.indices.contains(j) else {
                    throw ModelError.invalidConfig(file: file, reason: "backbone_config.out_indices has \(i), outside 0..<\(names.count)")
                }
                return j
            }
        }
        return [names.count - 1]
    }

    /// timm's `make_div`: rounds a channel count to a multiple of 8 (never below 8, never more
    /// than 10% down). Bottleneck widths are `make_div(out · 0.25)`, so a stage of 40 channels
    /// has 16 mid channels, not 10.
    public static func makeDivisible(_ value: Double, divisor: Int = 8) -> Int {
        var v = max(divisor, Int(value + Double(divisor) / 2) / divisor * divisor)
        if Double(v) < 0.9 * value { v += divisor }
        return v
    }
}
