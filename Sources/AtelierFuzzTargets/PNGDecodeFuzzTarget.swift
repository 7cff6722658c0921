import AtelierDiffusion
import Foundation

/// Arbitrary bytes as a PNG: `PNGCodec.decode` under the limits a coordinator or worker would
/// apply (at most 4096 px a side and 2²² pixels, so a hostile header cannot make the fuzzer
/// allocate gigabytes), then conversion to RGB and gray and the parameters text.
final class PNGDecodeFuzzTarget: FuzzTarget {
    static let limits = PNGReadLimits(maxDimension: 4096, maxPixels: 1 << 22)

    func run(_ input: UnsafeRawBufferPointer) {
        guard let png = try? PNGCodec.decode(Array(input), source: "fuzz", limits: Self.limits) else { return }
        _ = png.rgb()
        _ = png.gray()
        _ = try? png.gray16()
        _ = png.parametersText
    }
}
