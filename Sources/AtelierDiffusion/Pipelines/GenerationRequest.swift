import Foundation

/// What to render, in the terms of `atelier render` / `atelier upscale`. Unset options (nil)
/// take diffusers' pipeline defaults for the model's mode.
public struct GenerationRequest: Sendable {
    public var prompt: String
    public var negativePrompt: String = ""
    public var seed: UInt64 = 0
    public var steps: Int?
    public var guidance: Double?
    public var scheduler: String?
    public var width: Int?
    public var height: Int?
    public var initImage: RGBImage?
    public var strength: Double?
    public var mask: GrayImage?
    /// Raw depth values (e.g. a 16-bit PNG's samples), row-major, any size.
    public var depthMap: DepthMap?
    public var guidanceRescale: Double = 0
    /// x4 upscaler noise augmentation level (0…350).
    public var noiseLevel: Int?

    public init(prompt: String) { self.prompt = prompt }
}

/// A depth map as the depth-to-image pipeline takes it: raw values, normalised later to [-1, 1].
public struct DepthMap: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public let values: [Float]

    public init(width: Int, height: Int, values: [Float]) {
        precondition(values.count == width * height, "depth map size mismatch")
        self.width = width; self.height = height; self.values = values
    }
}

/// The five SD2 modes; which one runs follows from the request and the UNet's input channels
/// (4 txt2img/img2img, 5 depth, 7 x4 upscaler, 9 inpainting).
public enum GenerationMode: String, Sendable {
    case txt2img, img2img, inpaint, depth2img, upscale
}

/// A rendered image and the parameters that reproduce it.
public struct GenerationResult: Sendable {
    public let image: RGBImage
    public let parameters: GenerationParameters
}
