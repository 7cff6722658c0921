import Foundation
import AtelierKernels

/// The three networks of an SD2-family model, loaded from a diffusers folder or an original
/// single-file `.safetensors`. Weights stay memory-mapped (fp32 files are used in place).
public struct StableDiffusionModel {
    public let location: URL
    public let format: CheckpointFormat
    public let textEncoder: CLIPTextModel
    public let unet: UNet2DConditionModel
    public let vae: AutoencoderKL
    /// The mapped files the text encoder's weights live in (a diffusers folder's
    /// `text_encoder/`; empty for single files, whose one mapping also holds the UNet), so that
    /// `releaseTextEncoderPages()` can drop them from RSS between prompts.
    public let textEncoderFiles: [SafeTensorsFile]

    /// The diffusers folder (for tokenizer/ and scheduler/), nil for single files.
    public var folder: URL? { format == .diffusersFolder ? location : nil }

    public init(location: URL, format: CheckpointFormat, textEncoder: CLIPTextModel, unet: UNet2DConditionModel, vae: AutoencoderKL,
                textEncoderFiles: [SafeTensorsFile] = []) {
        self.location = location; self.format = format
        self.textEncoder = textEncoder; self.unet = unet; self.vae = vae
        self.textEncoderFiles = textEncoderFiles
    }

    /// Drops the text encoder's mapped weights from the resident set (they fault back in, from
    /// the page cache, on the next prompt). The text encoder runs once per prompt, then the UNet
    /// runs for every step: without this its 1.4 GB (SD2, fp32) would be resident on top of the
    /// UNet's for the whole loop. Weights converted at load (fp16 files) are owned copies and
    /// stay; so do single-file checkpoints, whose one mapping is shared with the UNet.
    public func releaseTextEncoderPages() {
        for f in textEncoderFiles { f.releaseResidentPages() }
    }

    /// - Parameter precision: the UNet's weights and products (`.bf16`: half the memory; the
    ///   text encoder and the VAE stay fp32, they run once per image).
    public static func load(_ url: URL, precision: OwnGEMM.Precision = .fp32) throws -> StableDiffusionModel {
        switch try CheckpointFormat.detect(url: url) {
        case .safetensors:
            return try load(singleFile: SingleFileCheckpoint(url: url), precision: precision)
        case .diffusersFolder:
            let (textEncoder, textFiles) = try openTextEncoder(url.appendingPathComponent("text_encoder"))
            let unet = try loadUNet(url.appendingPathComponent("unet"), precision: precision)
            let model = StableDiffusionModel(
                location: url, format: .diffusersFolder, textEncoder: textEncoder, unet: unet,
                vae: try loadVAE(url.appendingPathComponent("vae"), forUpscaler: unet.config.inChannels == 7),
                textEncoderFiles: textFiles)
            try model.checkComponentsFit(source: url.path)
            return model
        }
    }

    /// Binds the three networks of an opened single-file checkpoint (from a file, or from bytes
    /// via `SingleFileCheckpoint.inspect(data:)`). Every weight's shape is checked against the
    /// inferred config; a mismatch is a `ModelError`, never a trap.
    public static func load(singleFile ckpt: SingleFileCheckpoint, precision: OwnGEMM.Precision = .fp32) throws -> StableDiffusionModel {
        let model = StableDiffusionModel(
            location: ckpt.file.url, format: .safetensors,
            textEncoder: try CLIPTextModel(config: ckpt.textConfig, weights: ckpt.textWeights),
            unet: try UNet2DConditionModel(config: ckpt.unetConfig, weights: ckpt.unetWeights, precision: precision),
            vae: try AutoencoderKL(config: ckpt.vaeConfig, weights: ckpt.vaeWeights))
        try model.checkComponentsFit(source: ckpt.file.url.path)
        // The UNet's fp32 pages were read once to round them; drop them from the resident set
        // (what is still used in place, norms and biases, faults back in).
        if precision == .bf16 { ckpt.file.releaseResidentPages() }
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

    public static func loadUNet(_ folder: URL, precision: OwnGEMM.Precision = .fp32) throws -> UNet2DConditionModel {
        let (config, weights) = try DiffusersComponent.open(folder, config: UNet2DConditionConfig.self)
        let unet = try UNet2DConditionModel(config: config, weights: weights, precision: precision)
        // In bf16 the fp32 file was read once to round the weights: drop its pages from the
        // resident set (norms and biases still used in place fault back in, a few pages).
        if precision == .bf16 { for f in (weights as? SafeTensorsWeights)?.files ?? [] { f.releaseResidentPages() } }
        return unet
    }

    /// - Parameter forUpscaler: the VAE of an x4 upscaler folder, whose scaling factor is 0.08333
    ///   whatever its config says (`StableDiffusionUpscalePipeline.__init__` re-registers it).
    public static func loadVAE(_ folder: URL, forUpscaler: Bool = false) throws -> AutoencoderKL {
        var (config, weights) = try DiffusersComponent.open(folder, config: AutoencoderKLConfig.self)
        if forUpscaler { config.scalingFactor = 0.08333 }
        return try AutoencoderKL(config: config, weights: RenamedWeights.legacyVAEAttention(weights))
    }

    public static func loadTextEncoder(_ folder: URL) throws -> CLIPTextModel {
        try openTextEncoder(folder).model
    }

    /// The text encoder and the mapped files its weights borrow from.
    static func openTextEncoder(_ folder: URL) throws -> (model: CLIPTextModel, files: [SafeTensorsFile]) {
        let (config, weights) = try DiffusersComponent.open(folder, config: CLIPTextConfig.self)
        // Only F32 tensors are used in place; a file of F16/BF16 weights was converted into owned
        // copies and is released (unmapped) as soon as nothing holds it, so it is not kept here.
        let mapped = ((weights as? SafeTensorsWeights)?.files ?? []).filter { file in
            file.names.contains { file.info($0)?.dtype == .f32 }
        }
        return (try CLIPTextModel(config: config, weights: weights), mapped)
    }
}
