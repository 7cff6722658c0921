/// An 8-bit RGB image: `height` rows of `width` pixels, each R, G, B — the memory layout of
/// `np.array(pil_image)` for a PIL "RGB" image, which is what the diffusers pipelines consume
/// and produce. Immutable; operations return new images.
public struct RGBImage: Equatable, Sendable {
    public let width: Int
    public let height: Int
    /// `width * height * 3` bytes, row-major, channel-interleaved.
    public let pixels: [UInt8]

    public static let channels = 3

    /// Fails when the buffer does not hold exactly `width * height * 3` bytes.
    public init(width: Int, height: Int, pixels: [UInt8]) throws {
        try ImageGeometry.check(width: width, height: height, channels: 3, count: pixels.count, kind: "RGB")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// A uniform image.
    public init(width: Int, height: Int, red: UInt8, green: UInt8, blue: UInt8) throws {
        try ImageGeometry.check(width: width, height: height, channels: 3, count: width * height * 3, kind: "RGB")
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for i in stride(from: 0, to: pixels.count, by: 3) {
            pixels[i] = red; pixels[i + 1] = green; pixels[i + 2] = blue
        }
        self.init(unchecked: width, height: height, pixels: pixels)
    }

    /// For producers that computed the size themselves.
    init(unchecked width: Int, height: Int, pixels: [UInt8]) {
        assert(pixels.count == width * height * 3)
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// The (r, g, b) triple at column `x`, row `y`.
    public subscript(x: Int, y: Int) -> (red: UInt8, green: UInt8, blue: UInt8) {
        let i = (y * width + x) * 3
        return (pixels[i], pixels[i + 1], pixels[i + 2])
    }

    /// Luma as PIL's `convert("L")` computes it (ITU-R 601-2 weights in 16.16 fixed point, rounded),
    /// which is what diffusers' mask processor applies to an RGB mask.
    public func grayscale() -> GrayImage {
        var out = [UInt8](repeating: 0, count: width * height)
        pixels.withUnsafeBufferPointer { src in
            for i in 0..<out.count {
                out[i] = PILColor.luma(src[3 * i], src[3 * i + 1], src[3 * i + 2])
            }
        }
        return GrayImage(unchecked: width, height: height, pixels: out)
    }
}

/// Size validation shared by the image value types.
enum ImageGeometry {
    static func check(width: Int, height: Int, channels: Int, count: Int, kind: String) throws {
        guard width > 0, height > 0 else {
            throw ImageError.invalidArgument("\(kind) image size must be positive, got \(width)x\(height)")
        }
        let (area, o1) = width.multipliedReportingOverflow(by: height)
        let (expected, o2) = area.multipliedReportingOverflow(by: channels)
        guard !o1, !o2, expected == count else {
            throw ImageError.invalidArgument(
                "\(kind) image of \(width)x\(height) needs \(width)x\(height)x\(channels) samples, got \(count)")
        }
    }
}

/// PIL's colour conversions, reproduced bit for bit (Pillow `src/libImaging/Convert.c`).
enum PILColor {
    /// `L24(rgb) >> 16` with `L24 = r*19595 + g*38470 + b*7471 + 0x8000`; verified against
    /// Pillow for all 2^24 colours.
    @inline(__always)
    static func luma(_ r: UInt8, _ g: UInt8, _ b: UInt8) -> UInt8 {
        UInt8(truncatingIfNeeded: (UInt32(r) * 19595 + UInt32(g) * 38470 + UInt32(b) * 7471 + 0x8000) >> 16)
    }

    /// PIL converts "I;16" to 8 bits by clamping, not scaling: 300 becomes 255.
    @inline(__always)
    static func clamp16(_ v: UInt16) -> UInt8 { v > 255 ? 255 : UInt8(v) }
}
