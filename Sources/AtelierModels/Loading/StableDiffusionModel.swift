import Foundation

/// The three networks of an SD2-family model, loaded from a diffusers folder or an original
/// single-file `.safetensors`. Weights stay memory-mapped (fp32 files are used in place).
public struct StableDiffusionModel {
    public let location: URL
    public let format: CheckpointFormat
    public let textEncoder: CLIPTextModel
    public let unet: UNet2DConditionModel
    public let vae: AutoencoderKL

    /// The diffusers folder (for tokenizer/ and scheduler/), nil for single files.
    public var folder: URL? { format == .diffusersFolder ? location : nil }

    public init(location: URL, format: CheckpointFormat, textEncoder: CLIPTextModel, unet: UNet2DConditionModel, vae: AutoencoderKL) {
        self.location = location; self.format = format
        self.textEncoder = textEncoder; self.unet = unet; self.vae = vae
    }

    public static func load(_ url: URL) throws -> StableDiffusionModel {
        switch try CheckpointFormat.detect(url: url) {
        case .safetensors:
            return try load(singleFile: SingleFileCheckpoint(url: url))
        case .diffusersFolder:
            let textEncoder = try loadTextEncoder(url.appendingPathComponent("text_encoder"))
            let unet = try loadUNet(url.appendingPathComponent("unet"))
            let model = StableDiffusionModel(
                location: url, format: .diffusersFolder, textEncoder: textEncoder, unet: unet,
                vae: try loadVAE(url.appendingPathComponent("vae"), forUpscaler: unet.config.inChannels == 7))
            try model.checkComponentsFit(source: url.path)
            return model
        }
    }

    /// Binds the three networks of an opened single-file checkpoint (from a file, or from bytes
    /// via `SingleFileCheckpoint.inspect(data:)`). Every weight's shape is checked against the
    /// inferred config; a mismatch is a `ModelError`, never a trap.
    public static func load(singleFile ckpt: SingleFileCheckpoint) throws -> StableDiffusionModel {
        let model = StableDiffusionModel(
            location: ckpt.file.url, format: .safetensors,
            textEncoder: try CLIPTextModel(config: ckpt.textConfig, weights: ckpt.textWeights),
            unet: try UNet2DConditionModel(config: ckpt.unetConfig, weights: ckpt.unetWeights),
            vae: try AutoencoderKL(config: ckpt.vaeConfig, weights: ckpt.vaeWeights))
        try model.checkComponentsFit(source: ckpt.file.url.path)
        return model
    }

    /// The three networks must agree where they meet, or a render would fail deep in a kernel:
    /// the UNet's cross-attention reads the text encoder's width, and the VAE decodes what the
    /// UNet predicts.
    func checkComponentsFit(source: String) throws {
        let width = textEncoder.config.hiddenSize
        if let cross = unet.contextWidths.first(where: { $0 != width }) {
            throw ModelError.invalidConfig(file: source, reason: "the UNet's cross-attention expects \(cross)-wide text embeddings but the text encoder produces \(width)")
        }
        guard unet.config.outChannels == vae.config.latentChannels else {
            throw ModelError.invalidConfig(file: source, reason: "the UNet predicts \(unet.config.outChannels) latent channels but the VAE decodes \(vae.config.latentChannels)")
        }
    }

    public static func loadUNet(_ folder: URL) throws -> UNet2DConditionModel {
        let (config, weights) = try DiffusersComponent.open(folder, config: UNet2DConditionConfig.self)
        return try UNet2DConditionModel(config: config, weights: weights)
    }

    /// - Parameter forUpscaler: the VAE of an x4 upscaler folder, whose scaling factor is 0.08333
    ///   whatever its config says (`StableDiffusionUpscalePipeline.__init__` re-registers it).
    public static func loadVAE(_ folder: URL, forUpscaler: Bool = false) throws -> AutoencoderKL {
        var (config, weights) = try DiffusersComponent.open(folder, config: AutoencoderKLConfig.self)
        if forUpscaler { config.scalingFactor = 0.08333 }
        return try AutoencoderKL(config: config, weights: RenamedWeights.legacyVAEAttention(weights))
    }

    public static func loadTextEncoder(_ folder: URL) throws -> CLIPTextModel {
        let (config, weights) = try DiffusersComponent.open(folder, config: CLIPTextConfig.self)
        return try CLIPTextModel(config: config, weights: weights)
    }
}
