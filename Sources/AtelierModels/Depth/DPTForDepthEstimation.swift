import Foundation
import AtelierKernels

/// transformers' `DPTForDepthEstimation` with the hybrid (BiT + ViT) backbone: the MiDaS
/// estimator SD2-depth ships as `depth_estimator/` (Intel/dpt-hybrid-midas; SD2-SPEC §4.4).
///
/// pixel values [B, 3, S, S] (S = `image_size`, 384; the image processor's output in [−1, 1])
/// → BiT stem/stages → 1×1 projection to tokens + cls + positions → ViT → the BiT maps of
/// stages 1–2 and the ViT layers picked by `backbone_out_indices[2:]` → reassemble → fusion →
/// head → `predicted_depth` [B, 2·f, 2·f] (384² for SD2-depth), relative inverse depth.
///
/// Everything is read from the config (widths, depths, layers, heads, neck sizes, factors,
/// padding policy, norms); the variants transformers would build but that are not implemented
/// (non-hybrid DPT, preactivation or dilated BiT) fail at load with `ModelError.unsupported`.
public struct DPTForDepthEstimation {
    public let config: DPTConfig
    /// Parameters in the weight source this network was built from.
    public let parameterCount: Int
    let embeddings: DPTViTHybridEmbeddings
    let encoder: DPTViTEncoder
    let neck: DPTNeck
    let head: DPTDepthHead
    /// Side of `predicted_depth` for a valid input.
    public let outputSide: Int

    public init(config: DPTConfig, weights source: WeightSource, file: String = "config.json") throws {
        try config.validate(file: file)
        self.config = config
        parameterCount = source.parameterCount
        let w = Weights(source)
        embeddings = try DPTViTHybridEmbeddings(w["dpt.embeddings"], config: config, file: file)
        encoder = try DPTViTEncoder(w["dpt.encoder"], config: config)
        neck = try DPTNeck(w["neck"], config: config)
        head = try DPTDepthHead(w["head"], config: config)
        outputSide = try Self.checkGeometry(config: config, backbone: embeddings.backbone)
    }

    /// Loads `config.json` + `model.safetensors` (any precision; fp16 is upcast) from a folder.
    public static func load(_ folder: URL) throws -> DPTForDepthEstimation {
        let (config, weights) = try DiffusersComponent.open(folder, config: DPTConfig.self)
        return try DPTForDepthEstimation(config: config, weights: weights,
                                         file: folder.appendingPathComponent("config.json").path)
    }

    /// The one input side the model accepts (`image_size`): the hybrid embeddings refuse others
    /// rather than interpolate.
    public var inputSide: Int { config.inputSide }

    /// `predicted_depth` [B, H', W'] for pixel values [B, 3, S, S].
    public func predict(_ pixelValues: Tensor) throws -> Tensor {
        let s = inputSide
        guard pixelValues.rank == 4, pixelValues.shape[1] == config.numChannels,
              pixelValues.shape[2] == s, pixelValues.shape[3] == s, pixelValues.shape[0] > 0 else {
            throw ModelError.unsupported("depth estimator input \(pixelValues.shape): this DPT-Hybrid takes [B, \(config.numChannels), \(s), \(s)] (its image_size; resize the image first)")
        }
        let (tokens, residuals) = embeddings(pixelValues)
        let fused = neck(residuals + encoder(tokens))
        let index = config.headInIndex < 0 ? fused.count + config.headInIndex : config.headInIndex
        return head(fused[index])
    }

    /// Walks the feature-map sizes for `image_size` once at load: the token grid must match the
    /// position embeddings (else transformers fails mid-forward), and the output side follows.
    static func checkGeometry(config c: DPTConfig, backbone: BitBackbone) throws -> Int {
        let sides = try backbone.featureSides(inputSide: c.inputSide)
        let grid = c.inputSide / c.patch
        guard sides[2] == grid else {
            throw ModelError.unsupported("image_size \(c.inputSide) with patch_size \(c.patch) means a \(grid)×\(grid) token grid, but BiT's last map is \(sides[2])×\(sides[2])")
        }
        var maps = [sides[0], sides[1]]
        for i in 2..<c.neckHiddenSizes.count {
            let f = c.reassembleFactors[i]
            maps.append(f > 1 ? grid * Int(f) : f < 1 ? (grid - 1) / Int(1 / f) + 1 : grid)
        }
        // Fusion: the coarsest map doubles per layer (skips are resized to it).
        var side = maps[maps.count - 1]
        var outputs: [Int] = []
        for _ in maps { side *= 2; outputs.append(side) }
        let index = c.headInIndex < 0 ? outputs.count + c.headInIndex : c.headInIndex
        return outputs[index] * 2
    }
}
