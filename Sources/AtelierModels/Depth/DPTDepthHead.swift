import AtelierKernels

/// `DPTDepthEstimationHead`: [optional 3×3 projection + ReLU] → 3×3 conv to half the fusion
/// width → ×2 bilinear (align_corners=True) → 3×3 conv to 32 → ReLU → 1×1 conv to 1 → ReLU.
/// The output is MiDaS's relative *inverse* depth (larger = nearer), non-negative.
/// Names: `head.head.{0,2,4}`, `head.projection` (only with `add_projection`).
struct DPTDepthHead {
    let projection: Conv2d?
    let conv0: Conv2d, conv2: Conv2d, conv4: Conv2d

    init(_ w: Weights, config c: DPTConfig) throws {
        let f = c.fusionHiddenSize
        projection = c.addProjection
            ? try Conv2d(w["projection"], inChannels: 256, outChannels: 256, kernel: 3, padding: .symmetric(1)) : nil
        conv0 = try Conv2d(w["head.0"], inChannels: f, outChannels: f / 2, kernel: 3, padding: .symmetric(1))
        conv2 = try Conv2d(w["head.2"], inChannels: f / 2, outChannels: 32, kernel: 3, padding: .symmetric(1))
        conv4 = try Conv2d(w["head.4"], inChannels: 32, outChannels: 1, kernel: 1)
    }

    /// [B, fusion, h, w] → [B, 2h, 2w].
    func callAsFunction(_ x: Tensor) -> Tensor {
        var h = x
        if let projection { h = Activation.relu(projection(h)) }
        h = conv0(h)
        h = Interpolation.bilinearAlignCorners(h, height: h.shape[2] * 2, width: h.shape[3] * 2)
        h = Activation.relu(conv4(Activation.relu(conv2(h))))
        return h.reshaped([h.shape[0], h.shape[2], h.shape[3]])
    }
}
