import Foundation

/// An original-layout SD2 checkpoint in one `.safetensors` file (UNet under
/// `model.diffusion_model.`, VAE under `first_stage_model.`, OpenCLIP under
/// `cond_stage_model.model.`). Such files carry no config, so the architecture is read off the
/// tensor shapes with SD2's conventions (SD2-SPEC §9): 64-channel attention heads, 32 norm
/// groups, the penultimate text layer.
public struct SingleFileCheckpoint {
    public static let unetPrefix = "model.diffusion_model."
    public static let vaePrefix = "first_stage_model."
    public static let textPrefix = "cond_stage_model.model."

    public let file: SafeTensorsFile
    public let unetConfig: UNet2DConditionConfig
    public let vaeConfig: AutoencoderKLConfig
    public let textConfig: CLIPTextConfig
    public let unetWeights: WeightSource
    public let vaeWeights: WeightSource
    public let textWeights: WeightSource
    /// The inference YAML found beside the file, if any.
    public let sidecar: SingleFileSidecar?
    /// `epsilon` or `v_prediction`: from the sidecar, else guessed from the file name ("768-v"),
    /// else epsilon (SD2-SPEC §9). The weights cannot tell.
    public let predictionType: String

    /// Without a sidecar: the official 768 px SD 2.x files (`768-v-ema`, `v2-1_768-ema-pruned`)
    /// are v-prediction, the 512 px ones (`512-base-ema`, `v2-1_512-ema-pruned`) ε; other names ε.
    static func guessPredictionType(fileName: String) -> String {
        let n = fileName.lowercased()
        let isV = n.contains("768-v") || n.contains("768v") || n.contains("-v-")
            || (n.contains("768") && !n.contains("base") && !n.contains("512"))
        return isV ? "v_prediction" : "epsilon"
    }

    /// The VAE's latent scaling factor, decided as diffusers decides it for a single file — by the
    /// *model type*, never by the VAE's shape:
    /// - The x4 upscaler (7-channel UNet; diffusers' type "upscale", whose hub VAE config says
    ///   0.08333): 0.08333, whatever a YAML states, because `StableDiffusionUpscalePipeline.__init__`
    ///   re-registers 0.08333 on any VAE whose factor is not exactly that.
    /// - Every other SD2 model: the sidecar YAML's `model.params.scale_factor` when it states one
    ///   (`create_vae_diffusers_config_from_ldm` with an `original_config`), else
    ///   `LDM_VAE_DEFAULT_SCALING_FACTOR` 0.18215 (also what the SD2 hub configs say). A VAE with 3
    ///   levels in a text-to-image file is still 0.18215.
    /// A `scale_factor` buffer stored in the checkpoint itself is ignored, as diffusers ignores it.
    static func vaeScalingFactor(unetInChannels: Int, stated: Float?) throws -> Float {
        if unetInChannels == 7 { return 0.08333 }
        guard let stated else { return 0.18215 }
        guard stated.isFinite, stated > 0 else {
            throw ModelError.cannotInferConfig("the sidecar YAML's scale_factor \(stated) is not a positive number; fix or remove it (SD2 uses 0.18215)")
        }
        return stated
    }

    /// - Parameter headChannels: channels per UNet attention head when no sidecar says otherwise
    ///   (64 in every SD2 model).
    public init(url: URL, headChannels defaultHeadChannels: Int = 64) throws {
        try self.init(file: try SafeTensorsFile(url: url), sidecar: SingleFileSidecar.find(for: url),
                      headChannels: defaultHeadChannels)
    }

    /// Reads the architecture off an already opened file. `file.url`'s last component stands for
    /// the file name (prediction-type guess); `sidecar` is the inference YAML, if any.
    ///
    /// Every shape this relies on is checked — rank, and every dimension ≥ 1 — and a tensor that
    /// cannot be what its name says is a `ModelError.unexpectedShape` naming it, never a trap: the
    /// file is untrusted input (a damaged download, a hand-edited or hostile header).
    public init(file f: SafeTensorsFile, sidecar side: SingleFileSidecar?, headChannels defaultHeadChannels: Int = 64) throws {
        sidecar = side
        let name = f.url.lastPathComponent.lowercased()
        let path = f.url.path
        predictionType = side?.predictionType ?? Self.guessPredictionType(fileName: name)
        let headChannels = side?.numHeadChannels.flatMap { $0 > 0 ? $0 : nil } ?? defaultHeadChannels
        let fixedHeads = side?.numHeadChannels == -1 ? side?.numHeads.flatMap { $0 > 0 ? $0 : nil } : nil
        file = f
        let all = SafeTensorsWeights(files: [f])
        func component(_ prefix: String) -> [String] {
            f.names.filter { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }
        }
        let unetKeys = component(Self.unetPrefix), vaeKeys = component(Self.vaePrefix), textKeys = component(Self.textPrefix)
        guard !unetKeys.isEmpty else {
            throw ModelError.cannotInferConfig("\(path) has no '\(Self.unetPrefix)…' tensors; is it an SD2 checkpoint (or a diffusers component file that belongs in a model folder)?")
        }
        guard !vaeKeys.isEmpty else { throw ModelError.cannotInferConfig("\(path) has no VAE ('\(Self.vaePrefix)…') tensors") }
        guard !textKeys.isEmpty else {
            throw ModelError.cannotInferConfig("\(path) has no OpenCLIP text encoder ('\(Self.textPrefix)…'); SD1-style CLIP checkpoints are not SD2")
        }
        let shapes = ShapeReader(file: f)

        // UNet
        let u = Self.unetPrefix
        guard let convIn = try shapes.optional(u + "input_blocks.0.0.weight", layout: "[out, in, k, k]"),
              let convOut = try shapes.optional(u + "out.2.weight", layout: "[out, in, k, k]") else {
            throw ModelError.cannotInferConfig("UNet conv_in/conv_out weights are missing")
        }
        let inputIdx = Set(unetKeys.compactMap { k -> Int? in
            k.hasPrefix("input_blocks.") ? Self.index(in: k, at: 1) : nil })
        let opIdx = inputIdx.filter { i in unetKeys.contains { $0.hasPrefix("input_blocks.\(i).0.op.") } }.sorted()
        let layers = (opIdx.first ?? (inputIdx.max() ?? 1) + 1) - 1
        let levels = opIdx.count + 1
        guard layers >= 1 else { throw ModelError.cannotInferConfig("cannot count UNet resnets per level") }
        var uc = UNet2DConditionConfig()
        uc.inChannels = convIn[1]
        uc.outChannels = convOut[0]
        uc.sampleSize = nil
        var channels: [Int] = [], heads: [Int] = [], down: [String] = [], onlyCross: [Bool] = []
        var crossDim = 1024, transformerLayers = 1, linear = true
        for b in 0..<levels {
            let first = 1 + b * (layers + 1)
            guard let c = try shapes.optional(u + "input_blocks.\(first).0.in_layers.2.weight", layout: "[out, in, k, k]")?[0] else {
                throw ModelError.cannotInferConfig("UNet level \(b) has no resnet")
            }
            channels.append(c)
            heads.append(fixedHeads ?? max(1, c / headChannels))
            let attn = "input_blocks.\(first).1."
            if let k2 = try shapes.optional(u + attn + "transformer_blocks.0.attn2.to_k.weight", layout: "[out, in]") {
                down.append("CrossAttnDownBlock2D")
                crossDim = k2[1]
                let k1 = try shapes.optional(u + attn + "transformer_blocks.0.attn1.to_k.weight", layout: "[out, in]")?[1] ?? c
                onlyCross.append(k1 != c)
                transformerLayers = Set(unetKeys.filter { $0.hasPrefix(attn + "transformer_blocks.") }
                    .compactMap { Self.index(in: $0, at: 4) }).count
                // proj_in is Linear [C, C] (use_linear_projection) or a 1×1 conv [C, C, 1, 1].
                if let projIn = f.info(u + attn + "proj_in.weight")?.shape {
                    guard projIn.count == 2 || projIn.count == 4 else {
                        throw ModelError.unexpectedShape(key: u + attn + "proj_in.weight", expected: "[out, in] or [out, in, 1, 1]",
                                                         found: projIn, source: path)
                    }
                    linear = projIn.count == 2
                }
            } else {
                down.append("DownBlock2D")
                onlyCross.append(false)
            }
        }
        uc.blockOutChannels = channels
        uc.layersPerBlock = .all(layers)
        uc.downBlockTypes = down
        uc.upBlockTypes = down.reversed().map { $0 == "CrossAttnDownBlock2D" ? "CrossAttnUpBlock2D" : "UpBlock2D" }
        uc.attentionHeadDim = .each(heads)
        uc.crossAttentionDim = .all(crossDim)
        uc.onlyCrossAttention = .each(onlyCross)
        uc.transformerLayersPerBlock = .all(max(1, transformerLayers))
        uc.useLinearProjection = linear
        uc.numClassEmbeds = try shapes.optional(u + "label_emb.weight", layout: "[classes, dim]")?[0]
        uc.midBlockType = unetKeys.contains { $0.hasPrefix("middle_block.") } ? "UNetMidBlock2DCrossAttn" : nil
        unetConfig = uc
        unetWeights = RenamedWeights(all, table: LDMKeyMap.unet(keys: unetKeys, layers: layers, prefix: u))

        // VAE
        let v = Self.vaePrefix
        let vaeLevels = Set(vaeKeys.compactMap { k -> Int? in
            k.hasPrefix("encoder.down.") ? Self.index(in: k, at: 2) : nil }).count
        let vaeLayers = Set(vaeKeys.compactMap { k -> Int? in
            k.hasPrefix("encoder.down.0.block.") ? Self.index(in: k, at: 4) : nil }).count
        guard vaeLevels > 0, vaeLayers > 0 else { throw ModelError.cannotInferConfig("VAE encoder levels not found") }
        var vc = AutoencoderKLConfig()
        vc.blockOutChannels = try (0..<vaeLevels).map { i in
            guard let s = try shapes.optional(v + "encoder.down.\(i).block.0.conv1.weight", layout: "[out, in, k, k]") else {
                throw ModelError.cannotInferConfig("VAE encoder level \(i) has no resnet")
            }
            return s[0]
        }
        vc.layersPerBlock = vaeLayers
        vc.downBlockTypes = Array(repeating: "DownEncoderBlock2D", count: vaeLevels)
        vc.upBlockTypes = Array(repeating: "UpDecoderBlock2D", count: vaeLevels)
        vc.inChannels = try shapes.optional(v + "encoder.conv_in.weight", layout: "[out, in, k, k]")?[1] ?? 3
        vc.outChannels = try shapes.optional(v + "decoder.conv_out.weight", layout: "[out, in, k, k]")?[0] ?? 3
        vc.latentChannels = try shapes.optional(v + "decoder.conv_in.weight", layout: "[out, in, k, k]")?[1] ?? 4
        vc.midBlockAddAttention = vaeKeys.contains { $0.hasPrefix("encoder.mid.attn_1.") }
        vc.useQuantConv = vaeKeys.contains { $0.hasPrefix("quant_conv.") }
        vc.usePostQuantConv = vaeKeys.contains { $0.hasPrefix("post_quant_conv.") }
        vc.scalingFactor = try Self.vaeScalingFactor(unetInChannels: uc.inChannels, stated: side?.scaleFactor)
        vaeConfig = vc
        vaeWeights = RenamedWeights(all, table: LDMKeyMap.vae(keys: vaeKeys, levels: vaeLevels, prefix: v))

        // Text encoder
        let t = Self.textPrefix
        guard let tok = try shapes.optional(t + "token_embedding.weight", layout: "[vocabulary, width]"),
              let pos = try shapes.optional(t + "positional_embedding", layout: "[positions, width]"),
              let fc = try shapes.optional(t + "transformer.resblocks.0.mlp.c_fc.weight", layout: "[hidden, width]") else {
            throw ModelError.cannotInferConfig("OpenCLIP token/position embeddings or MLP weights are missing")
        }
        let blocks = Set(textKeys.compactMap { k -> Int? in
            k.hasPrefix("transformer.resblocks.") ? Self.index(in: k, at: 2) : nil }).count
        guard blocks >= 2 else { throw ModelError.cannotInferConfig("the text encoder needs at least 2 transformer blocks") }
        let width = tok[1]
        guard pos[1] == width, fc[1] == width else {
            let (key, found) = pos[1] != width ? (t + "positional_embedding", pos) : (t + "transformer.resblocks.0.mlp.c_fc.weight", fc)
            throw ModelError.unexpectedShape(key: key, expected: "[_, \(width)] (the token embedding's width)", found: found, source: path)
        }
        textConfig = CLIPTextConfig(hiddenSize: width, intermediateSize: fc[0], numHiddenLayers: blocks - 1,
                                    numAttentionHeads: max(1, width / 64) /* OpenCLIP's 64-channel heads */, hiddenAct: .gelu,
                                    layerNormEps: 1e-5, maxPositionEmbeddings: pos[0], vocabSize: tok[0])
        textWeights = RenamedWeights(all, table: LDMKeyMap.openCLIP(keys: textKeys, width: width,
                                                                    keepLayers: blocks - 1, prefix: t))
    }

    /// Parses a whole single-file checkpoint held in memory and infers its configuration, without
    /// binding the networks: the entry point of `atelier inspect`-style checks and of the header
    /// fuzzer. `sidecarYAML` is the text of the inference YAML, if any. Throws `SafeTensorsError`
    /// or `ModelError`; never traps.
    public static func inspect(data: Data, name: String = "memory.safetensors", sidecarYAML: String? = nil) throws -> SingleFileCheckpoint {
        let file = try SafeTensorsFile(data: data, name: name)
        return try SingleFileCheckpoint(file: file, sidecar: sidecarYAML.map(SingleFileSidecar.parse))
    }

    /// Key component `position` (dot-separated) as a block index, or nil. Indices above 9,999 are
    /// ignored: no SD2 network comes near, and huge ones would overflow the level arithmetic.
    static func index(in key: String, at position: Int) -> Int? {
        let parts = key.split(separator: ".", omittingEmptySubsequences: false)
        guard position < parts.count, let i = Int(parts[position]), (0...9_999).contains(i) else { return nil }
        return i
    }
}

/// Checked shape look-ups for config inference.
struct ShapeReader {
    let file: SafeTensorsFile

    /// The shape of `key` if present; it must have the rank of `layout` (one name per dimension,
    /// e.g. "[out, in, k, k]") and no dimension below 1.
    func optional(_ key: String, layout: String) throws -> [Int]? {
        guard let shape = file.info(key)?.shape else { return nil }
        let rank = layout.split(separator: ",").count
        guard shape.count == rank, shape.allSatisfy({ $0 >= 1 }) else {
            throw ModelError.unexpectedShape(key: key, expected: "\(layout) with every dimension ≥ 1",
                                             found: shape, source: file.url.path)
        }
        return shape
    }
}
