import AtelierKernels

/// Conversions between 8-bit images and the float32 NCHW tensors the VAE consumes and produces,
/// matching diffusers' `VaeImageProcessor` operation for operation (so each float is bit-identical):
///
/// - in:   `np.array(img).astype(float32) / 255.0`, then `2.0 * x - 1.0` (float32 throughout);
/// - out:  `(x * 0.5 + 0.5).clamp(0, 1)` in torch, then `(x * 255).round().astype(uint8)` in numpy,
///         where `round` is round-half-to-even;
/// - mask: `convert("L")`, `/ 255.0`, then binarize (`< 0.5 → 0`, `≥ 0.5 → 1`), no normalisation.
///
/// Resizing (PIL Lanczos to the requested size) is a separate step: see `ImageResampler`.
public enum ImageTensor {
    /// One image as [1, 3, H, W] in [−1, 1].
    public static func tensor(from image: RGBImage) -> Tensor {
        let hw = image.width * image.height
        let out = Tensor(uninitialized: [1, 3, image.height, image.width])
        let p = out.pointer
        image.pixels.withUnsafeBufferPointer { src in
            for i in 0..<hw {
                for c in 0..<3 {
                    p[c * hw + i] = normalize(src[3 * i + c])
                }
            }
        }
        return out
    }

    /// Several equally sized images as [B, 3, H, W] in [−1, 1].
    public static func tensor(from images: [RGBImage]) throws -> Tensor {
        guard let first = images.first else {
            throw ImageError.invalidArgument("cannot build an image batch from no images")
        }
        guard images.allSatisfy({ $0.width == first.width && $0.height == first.height }) else {
            throw ImageError.invalidArgument("images in one batch must share a size; got "
                + images.map { "\($0.width)x\($0.height)" }.joined(separator: ", "))
        }
        let chw = 3 * first.width * first.height
        let out = Tensor(uninitialized: [images.count, 3, first.height, first.width])
        for (b, image) in images.enumerated() {
            let one = tensor(from: image)
            (out.pointer + b * chw).update(from: one.pointer, count: chw)
        }
        return out
    }

    /// A mask as [1, 1, H, W]: values / 255, then binarized at 0.5 unless `binarize` is false.
    /// White (1) marks the area to repaint.
    public static func maskTensor(from mask: GrayImage, binarize: Bool = true) -> Tensor {
        let out = Tensor(uninitialized: [1, 1, mask.height, mask.width])
        let p = out.pointer
        for (i, v) in mask.pixels.enumerated() {
            let x = Float(v) / 255
            p[i] = binarize ? (x < 0.5 ? 0 : 1) : x
        }
        return out
    }

    /// The images of a [B, 3, H, W] tensor in [−1, 1].
    public static func images(from tensor: Tensor) throws -> [RGBImage] {
        guard tensor.rank == 4, tensor.shape[1] == 3, tensor.shape[2] > 0, tensor.shape[3] > 0 else {
            throw ImageError.invalidArgument("expected an image tensor of shape [B, 3, H, W], got \(tensor.shape)")
        }
        return try (0..<tensor.shape[0]).map { try image(from: tensor, index: $0) }
    }

    /// Image `index` of a [B, 3, H, W] tensor in [−1, 1].
    public static func image(from tensor: Tensor, index: Int = 0) throws -> RGBImage {
        guard tensor.rank == 4, tensor.shape[1] == 3, tensor.shape[2] > 0, tensor.shape[3] > 0 else {
            throw ImageError.invalidArgument("expected an image tensor of shape [B, 3, H, W], got \(tensor.shape)")
        }
        guard index >= 0, index < tensor.shape[0] else {
            throw ImageError.invalidArgument("image index \(index) is outside the batch of \(tensor.shape[0])")
        }
        let height = tensor.shape[2], width = tensor.shape[3]
        let hw = width * height
        let p = tensor.pointer + index * 3 * hw
        var pixels = [UInt8](repeating: 0, count: hw * 3)
        for c in 0..<3 {
            for i in 0..<hw {
                pixels[3 * i + c] = quantize(p[c * hw + i])
            }
        }
        return try RGBImage(width: width, height: height, pixels: pixels)
    }

    /// `2 * (v / 255) - 1` in float32, in that order.
    @inline(__always)
    public static func normalize(_ v: UInt8) -> Float {
        let unit = Float(v) / 255
        return 2 * unit - 1
    }

    /// One float of the VAE output to a byte, as diffusers' postprocess + `numpy_to_pil`.
    /// NaN (which numpy would turn into an unspecified byte) becomes 0.
    @inline(__always)
    public static func quantize(_ x: Float) -> UInt8 {
        var v = x * 0.5 + 0.5
        if v.isNaN { return 0 }
        v = min(max(v, 0), 1)
        return UInt8((v * 255).rounded(.toNearestOrEven))
    }
}

extension RGBImage {
    /// [1, 3, H, W] in [−1, 1], as diffusers' `VaeImageProcessor.preprocess` after resizing.
    public func normalizedTensor() -> Tensor { ImageTensor.tensor(from: self) }
}

extension GrayImage {
    /// [1, 1, H, W] in {0, 1} (or [0, 1] without binarizing), as diffusers' mask processor.
    public func maskTensor(binarize: Bool = true) -> Tensor { ImageTensor.maskTensor(from: self, binarize: binarize) }
}
