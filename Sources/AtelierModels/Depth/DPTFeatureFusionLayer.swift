import AtelierKernels

/// `DPTPreActResidualLayer` (RefineNet's residual conv unit): x + conv2(act(conv1(act(x)))), 3×3
/// convs with padding 1, each optionally followed by BatchNorm (which then also drops the conv
/// bias, unless `use_bias_in_fusion_residual` says otherwise).
struct DPTPreActResidualLayer {
    let convolution1: Conv2d, convolution2: Conv2d
    let batchNorm1: BatchNorm2d?, batchNorm2: BatchNorm2d?

    init(_ w: Weights, config c: DPTConfig) throws {
        let f = c.fusionHiddenSize
        convolution1 = try Conv2d(w["convolution1"], inChannels: f, outChannels: f, kernel: 3, padding: .symmetric(1), bias: c.fusionResidualBias)
        convolution2 = try Conv2d(w["convolution2"], inChannels: f, outChannels: f, kernel: 3, padding: .symmetric(1), bias: c.fusionResidualBias)
        batchNorm1 = c.useBatchNormInFusionResidual ? try BatchNorm2d(w["batch_norm1"], channels: f) : nil
        batchNorm2 = c.useBatchNormInFusionResidual ? try BatchNorm2d(w["batch_norm2"], channels: f) : nil
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        var h = convolution1(Activation.relu(x))
        if let batchNorm1 { h = batchNorm1(h) }
        h = convolution2(Activation.relu(h))
        if let batchNorm2 { h = batchNorm2(h) }
        Elementwise.addInPlace(h, x)
        return h
    }
}

/// `DPTFeatureFusionLayer`: h ← h + RCU₁(skip) (the skip bilinear-resized, align_corners=False,
/// when its size differs), h ← RCU₂(h), then ×2 bilinear with **align_corners=True** and a 1×1
/// projection conv. The coarsest layer has no skip; its `residual_layer1` weights exist in the
/// checkpoint but are never used (they are still loaded, as a completeness check).
struct DPTFeatureFusionLayer {
    let residualLayer1: DPTPreActResidualLayer
    let residualLayer2: DPTPreActResidualLayer
    let projection: Conv2d

    init(_ w: Weights, config c: DPTConfig) throws {
        residualLayer1 = try DPTPreActResidualLayer(w["residual_layer1"], config: c)
        residualLayer2 = try DPTPreActResidualLayer(w["residual_layer2"], config: c)
        projection = try Conv2d(w["projection"], inChannels: c.fusionHiddenSize, outChannels: c.fusionHiddenSize, kernel: 1)
    }

    func callAsFunction(_ x: Tensor, skip: Tensor?) -> Tensor {
        var h = x
        if let skip {
            let sized = BilinearResize.resize(skip, height: x.shape[2], width: x.shape[3])
            h = residualLayer1(sized)
            Elementwise.addInPlace(h, x)
        }
        h = residualLayer2(h)
        h = Interpolation.bilinearAlignCorners(h, height: h.shape[2] * 2, width: h.shape[3] * 2)
        return projection(h)
    }
}
