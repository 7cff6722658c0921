/// An 8-bit single-channel image (PIL mode "L"): inpainting masks, and grayscale sources.
/// `height` rows of `width` bytes.
public struct GrayImage: Equatable, Sendable {
    public let width: Int
    public let height: Int
    public let pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) throws {
        try ImageGeometry.check(width: width, height: height, channels: 1, count: pixels.count, kind: "grayscale")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    init(unchecked width: Int, height: Int, pixels: [UInt8]) {
        assert(pixels.count == width * height)
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    public subscript(x: Int, y: Int) -> UInt8 { pixels[y * width + x] }

    /// The same values in three channels, as PIL's `convert("RGB")` of an "L" image.
    public func rgb() -> RGBImage {
        var out = [UInt8](repeating: 0, count: pixels.count * 3)
        for (i, v) in pixels.enumerated() {
            out[3 * i] = v; out[3 * i + 1] = v; out[3 * i + 2] = v
        }
        return RGBImage(unchecked: width, height: height, pixels: out)
    }
}
