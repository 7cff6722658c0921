/// `vae/config.json` (diffusers' AutoencoderKL keys).
public struct AutoencoderKLConfig: Codable, Sendable {
    public var inChannels: Int = 3
    public var outChannels: Int = 3
    public var downBlockTypes: [String] = ["DownEncoderBlock2D"]
    public var upBlockTypes: [String] = ["UpDecoderBlock2D"]
    public var blockOutChannels: [Int] = [64]
    public var layersPerBlock: Int = 1
    public var actFn: ActivationKind = .silu
    public var latentChannels: Int = 4
    public var normNumGroups: Int = 32
    public var sampleSize: Int? = 32
    public var scalingFactor: Float = 0.18215
    public var shiftFactor: Float? = nil
    public var midBlockAddAttention: Bool = true
    public var useQuantConv: Bool = true
    public var usePostQuantConv: Bool = true

    enum CodingKeys: String, CodingKey {
        case inChannels = "in_channels", outChannels = "out_channels"
        case downBlockTypes = "down_block_types", upBlockTypes = "up_block_types"
        case blockOutChannels = "block_out_channels", layersPerBlock = "layers_per_block", actFn = "act_fn"
        case latentChannels = "latent_channels", normNumGroups = "norm_num_groups", sampleSize = "sample_size"
        case scalingFactor = "scaling_factor", shiftFactor = "shift_factor"
        case midBlockAddAttention = "mid_block_add_attention"
        case useQuantConv = "use_quant_conv", usePostQuantConv = "use_post_quant_conv"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func v<T: Decodable>(_ k: CodingKeys, _ d: T) throws -> T { try c.decodeIfPresent(T.self, forKey: k) ?? d }
        let d = AutoencoderKLConfig()
        inChannels = try v(.inChannels, d.inChannels); outChannels = try v(.outChannels, d.outChannels)
        downBlockTypes = try v(.downBlockTypes, d.downBlockTypes); upBlockTypes = try v(.upBlockTypes, d.upBlockTypes)
        blockOutChannels = try v(.blockOutChannels, d.blockOutChannels); layersPerBlock = try v(.layersPerBlock, d.layersPerBlock)
        actFn = try v(.actFn, d.actFn); latentChannels = try v(.latentChannels, d.latentChannels)
        normNumGroups = try v(.normNumGroups, d.normNumGroups); sampleSize = try c.decodeIfPresent(Int.self, forKey: .sampleSize)
        scalingFactor = try v(.scalingFactor, d.scalingFactor); shiftFactor = try c.decodeIfPresent(Float.self, forKey: .shiftFactor)
        midBlockAddAttention = try v(.midBlockAddAttention, d.midBlockAddAttention)
        useQuantConv = try v(.useQuantConv, d.useQuantConv); usePostQuantConv = try v(.usePostQuantConv, d.usePostQuantConv)
    }

    /// 2^(levels−1): 8 for SD2, 4 for the x4 upscaler's VAE.
    public var scaleFactor: Int { 1 << (blockOutChannels.count - 1) }
}
