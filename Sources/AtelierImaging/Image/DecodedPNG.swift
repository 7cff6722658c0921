/// A PNG file as decoded, before any colour conversion: the samples in the layout PIL would open
/// the file in, its text chunks, and where it came from (for error messages).
///
/// The layouts follow PIL's choice of mode on open, so that the conversions below reproduce
/// `Image.open(path).convert("RGB" | "L")` exactly:
/// palette images are expanded to RGB (RGBA when they carry transparency), gray below 8 bits is
/// scaled up to 8 bits, 16-bit colour keeps its high byte, and only plain 16-bit grayscale stays at
/// 16 bits.
public struct DecodedPNG: Sendable {
    public enum Pixels: Equatable, Sendable {
        case gray8([UInt8])
        case grayAlpha8([UInt8])
        case rgb8([UInt8])
        case rgba8([UInt8])
        case gray16([UInt16])
    }

    public let width: Int
    public let height: Int
    public let pixels: Pixels
    /// Text chunks (tEXt and zTXt decoded as Latin-1, iTXt as UTF-8). A keyword that occurs twice
    /// keeps its last value, as in PIL's `im.text`.
    public let text: [String: String]
    /// IHDR colour type (0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA) and bit depth of the file.
    public let sourceColorType: Int
    public let sourceBitDepth: Int
    /// The path (or a label for in-memory data) used in error messages.
    public let source: String

    public init(width: Int, height: Int, pixels: Pixels, text: [String: String] = [:],
                sourceColorType: Int, sourceBitDepth: Int, source: String) {
        self.width = width
        self.height = height
        self.pixels = pixels
        self.text = text
        self.sourceColorType = sourceColorType
        self.sourceBitDepth = sourceBitDepth
        self.source = source
    }

    public var hasAlpha: Bool {
        switch pixels {
        case .grayAlpha8, .rgba8: return true
        case .gray8, .rgb8, .gray16: return false
        }
    }

    /// The A1111 `parameters` text chunk, if the file has one.
    public var parametersText: String? { text[GenerationParameters.pngTextKey] }

    /// The image as RGB, as PIL's `convert("RGB")`: gray is replicated, alpha is dropped (not
    /// composited), and 16-bit gray is clamped to 255.
    public func rgb() -> RGBImage {
        if case .rgb8(let p) = pixels { return RGBImage(unchecked: width, height: height, pixels: p) }
        let n = width * height
        var out = [UInt8](repeating: 0, count: n * 3)
        switch pixels {
        case .rgb8:
            break
        case .rgba8(let p):
            for i in 0..<n {
                out[3 * i] = p[4 * i]; out[3 * i + 1] = p[4 * i + 1]; out[3 * i + 2] = p[4 * i + 2]
            }
        case .gray8(let p):
            for i in 0..<n { out[3 * i] = p[i]; out[3 * i + 1] = p[i]; out[3 * i + 2] = p[i] }
        case .grayAlpha8(let p):
            for i in 0..<n { let v = p[2 * i]; out[3 * i] = v; out[3 * i + 1] = v; out[3 * i + 2] = v }
        case .gray16(let p):
            for i in 0..<n { let v = PILColor.clamp16(p[i]); out[3 * i] = v; out[3 * i + 1] = v; out[3 * i + 2] = v }
        }
        return RGBImage(unchecked: width, height: height, pixels: out)
    }

    /// The image as 8-bit gray, as PIL's `convert("L")` (what diffusers' mask processor does):
    /// colour goes through PIL's fixed-point luma, alpha is dropped, 16-bit gray is clamped to 255.
    public func gray() -> GrayImage {
        if case .gray8(let p) = pixels { return GrayImage(unchecked: width, height: height, pixels: p) }
        let n = width * height
        var out = [UInt8](repeating: 0, count: n)
        switch pixels {
        case .gray8:
            break
        case .grayAlpha8(let p):
            for i in 0..<n { out[i] = p[2 * i] }
        case .rgb8(let p):
            for i in 0..<n { out[i] = PILColor.luma(p[3 * i], p[3 * i + 1], p[3 * i + 2]) }
        case .rgba8(let p):
            for i in 0..<n { out[i] = PILColor.luma(p[4 * i], p[4 * i + 1], p[4 * i + 2]) }
        case .gray16(let p):
            for i in 0..<n { out[i] = PILColor.clamp16(p[i]) }
        }
        return GrayImage(unchecked: width, height: height, pixels: out)
    }

    /// The image as 16-bit gray, for depth maps. 8-bit gray is widened without scaling (as PIL's
    /// `convert("I;16")`); colour images are refused, because which channel holds the depth would
    /// be a guess.
    public func gray16() throws -> GrayImage16 {
        switch pixels {
        case .gray16(let p):
            return GrayImage16(unchecked: width, height: height, pixels: p)
        case .gray8(let p):
            return GrayImage16(unchecked: width, height: height, pixels: p.map { UInt16($0) })
        case .grayAlpha8(let p):
            return GrayImage16(unchecked: width, height: height, pixels: (0..<(width * height)).map { UInt16(p[2 * $0]) })
        case .rgb8, .rgba8:
            throw ImageError.unsupportedFormat(
                path: source, detail: "a depth map must be a grayscale PNG (8 or 16 bits), this one is colour")
        }
    }
}
