import AtelierKernels

/// `DPTViTHybridEmbeddings`: the BiT backbone replaces ViT's patch embedding. Its last feature
/// map (1024@24² for SD2-depth) goes through a 1×1 conv to the hidden size and becomes the token
/// sequence; the cls token is prepended and the learned position embeddings added. The first two
/// BiT maps are passed on untouched to the neck (`residual_feature_map_index = [0, 1]`).
///
/// The projection's input width is `backbone_featmap_shape[1]` from the config, not the BiT
/// output channels (transformers reads the config); a disagreement shows up as a weight shape
/// mismatch at load. transformers resizes the position embeddings bilinearly to the token grid on
/// every call; the grid always equals the configured one (inputs must be `image_size`), where
/// that resize is the identity, so it is not done here.
struct DPTViTHybridEmbeddings {
    let backbone: BitBackbone
    let projection: Conv2d
    let clsToken: Tensor
    let positionEmbeddings: Tensor
    let hidden: Int

    init(_ w: Weights, config: DPTConfig, file: String) throws {
        backbone = try BitBackbone(w["backbone.bit"], config: config.resolvedBackbone, file: file)
        hidden = config.hiddenSize
        let featureDim = config.backboneFeatmapShape?[1] ?? backbone.stageChannels.last ?? 0
        projection = try Conv2d(w["projection"], inChannels: featureDim, outChannels: hidden, kernel: 1)
        clsToken = try w.load("cls_token", shape: [1, 1, hidden])
        let grid = config.inputSide / config.patch
        positionEmbeddings = try w.load("position_embeddings", shape: [1, grid * grid + 1, hidden])
    }

    /// pixels [B, 3, S, S] → (tokens [B, 1 + N, D], the two BiT maps for the neck).
    func callAsFunction(_ pixels: Tensor) -> (tokens: Tensor, residuals: [Tensor]) {
        let maps = backbone(pixels)
        let patches = Elementwise.channelsToTokens(projection(maps[2]))  // [B, N, D]
        let (b, n, d) = (patches.shape[0], patches.shape[1], patches.shape[2])
        precondition(n + 1 == positionEmbeddings.shape[1], "hybrid embeddings: \(n) tokens for \(positionEmbeddings.shape[1] - 1) positions")
        let tokens = Tensor(uninitialized: [b, n + 1, d])
        let pos = positionEmbeddings.pointer
        for bi in 0..<b {
            let dst = tokens.pointer + bi * (n + 1) * d
            for j in 0..<d { dst[j] = clsToken.pointer[j] + pos[j] }
            let src = patches.pointer + bi * n * d
            for i in 0..<(n * d) { dst[d + i] = src[i] + pos[d + i] }
        }
        return (tokens, [maps[0], maps[1]])
    }
}
