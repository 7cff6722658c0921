/// A 16-bit single-channel image (PIL mode "I;16"), kept at full precision: depth maps are
/// exchanged as 16-bit grayscale PNGs, and rounding them to 8 bits would band the depth.
public struct GrayImage16: Equatable, Sendable {
    public let width: Int
    public let height: Int
    /// `width * height` samples, row-major, native integers (not byte-swapped).
    public let pixels: [UInt16]

    public init(width: Int, height: Int, pixels: [UInt16]) throws {
        try ImageGeometry.check(width: width, height: height, channels: 1, count: pixels.count, kind: "16-bit grayscale")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    init(unchecked width: Int, height: Int, pixels: [UInt16]) {
        assert(pixels.count == width * height)
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    public subscript(x: Int, y: Int) -> UInt16 { pixels[y * width + x] }
}
