import AtelierKernels

/// Image ↔ tensor steps of the pipelines, each as diffusers does it (VaeImageProcessor,
/// prepare_depth_map, postprocess).
enum PipelineImages {
    enum Filter { case lanczos, bicubic }

    static func preprocess(_ image: RGBImage, width: Int?, height: Int?, factor: Int, filter: Filter) throws -> Tensor {
        try VaeImagePreprocessor.preprocess(image, width: width, height: height, scaleFactor: factor,
                                            filter: filter == .lanczos ? .lanczos : .bicubic)
    }

    /// Binarised mask [1, 1, H, W] at the image size (white = repaint).
    static func preprocessMask(_ mask: GrayImage, width: Int, height: Int) throws -> Tensor {
        try VaeImagePreprocessor.preprocessMask(mask, width: width, height: height, scaleFactor: 1)
    }

    /// A tile's pixels as [1, 3, h, w] in [−1, 1] (tiles are cut from an already preprocessed image).
    static func toTensor(_ image: RGBImage, expectWidth: Int, expectHeight: Int) throws -> Tensor {
        guard image.width == expectWidth, image.height == expectHeight else {
            throw PipelineError.invalidOption("tile pixels are \(image.width)×\(image.height) but the tile rectangle is \(expectWidth)×\(expectHeight)")
        }
        return ImageTensor.tensor(from: image)
    }

    /// prepare_depth_map with a given map: bicubic (torch, align_corners=False) to the latent
    /// size, then 2·(d − min)/(max − min) − 1 in float32.
    static func depthCondition(_ depth: DepthMap, latentHeight: Int, latentWidth: Int) -> Tensor {
        let raw = Tensor(shape: [1, 1, depth.height, depth.width], values: depth.values)
        let d = Interpolation.bicubic(raw, height: latentHeight, width: latentWidth)
        var lo = Float.infinity, hi = -Float.infinity
        for i in 0..<d.count { lo = min(lo, d[flat: i]); hi = max(hi, d[flat: i]) }
        let range = hi - lo
        for i in 0..<d.count { d[flat: i] = 2 * (d[flat: i] - lo) / range - 1 }
        return d
    }

    /// Decoded [1, 3, H, W] in ~[−1, 1] → RGB8 (clamp, ×255, round half to even).
    static func postprocess(_ t: Tensor) throws -> RGBImage {
        try ImageTensor.image(from: t, index: 0)
    }
}

