import AtelierKernels

/// diffusers' `VaeImageProcessor.preprocess` for PIL inputs, end to end: the target size defaults to
/// the image's own, both sides are floored to a multiple of the VAE scale factor, the image is
/// resized with PIL's filter (skipped when the size is unchanged, as PIL does) and converted to a
/// tensor. Defaults are the SD2 img2img/inpaint/depth ones (factor 8, Lanczos); the x4 upscaler uses
/// factor 4 with bicubic.
public enum VaeImagePreprocessor {
    /// The size diffusers' `get_default_height_width` settles on.
    public static func targetSize(imageWidth: Int, imageHeight: Int, width: Int? = nil, height: Int? = nil,
                                  scaleFactor: Int = 8) throws -> (width: Int, height: Int) {
        guard scaleFactor > 0 else { throw ImageError.invalidArgument("VAE scale factor must be positive") }
        let w = width ?? imageWidth, h = height ?? imageHeight
        let size = (width: w - w % scaleFactor, height: h - h % scaleFactor)
        guard size.width > 0, size.height > 0 else {
            throw ImageError.invalidArgument(
                "an image of \(w)x\(h) is smaller than one \(scaleFactor)x\(scaleFactor) latent cell; use at least \(scaleFactor)x\(scaleFactor)")
        }
        return size
    }

    /// [1, 3, H, W] in [−1, 1].
    public static func preprocess(_ image: RGBImage, width: Int? = nil, height: Int? = nil, scaleFactor: Int = 8,
                                  filter: ResampleFilter = .lanczos) throws -> Tensor {
        let size = try targetSize(imageWidth: image.width, imageHeight: image.height, width: width, height: height,
                                  scaleFactor: scaleFactor)
        let resized = try image.resized(width: size.width, height: size.height, filter: filter)
        return resized.normalizedTensor()
    }

    /// The inpainting mask processor (`do_normalize=False, do_binarize=True,
    /// do_convert_grayscale=True`): [1, 1, H, W] in {0, 1}. Convert colour masks with
    /// `DecodedPNG.gray()` / `RGBImage.grayscale()` first (PIL's `convert("L")`).
    public static func preprocessMask(_ mask: GrayImage, width: Int? = nil, height: Int? = nil, scaleFactor: Int = 8,
                                      filter: ResampleFilter = .lanczos) throws -> Tensor {
        let size = try targetSize(imageWidth: mask.width, imageHeight: mask.height, width: width, height: height,
                                  scaleFactor: scaleFactor)
        let resized = try mask.resized(width: size.width, height: size.height, filter: filter)
        return resized.maskTensor(binarize: true)
    }
}
