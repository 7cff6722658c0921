import Foundation

/// PIL's antialiasing resampling filters (Pillow `src/libImaging/Resample.c`), with their exact
/// kernels and supports. diffusers resizes pipeline inputs with LANCZOS (BICUBIC for the x4
/// upscaler); the DPT depth estimator's processor uses BILINEAR.
///
/// The kernel formulas keep PIL's operation order and constants (including the `float` literals
/// in the Hamming window), because after normalisation the weights are quantised to 22-bit fixed
/// point and a last-bit difference can move a coefficient across a rounding boundary.
public enum ResampleFilter: String, CaseIterable, Sendable {
    case box
    case bilinear
    case hamming
    case bicubic
    case lanczos

    /// Half-width of the kernel at scale 1, in source pixels.
    public var support: Double {
        switch self {
        case .box: return 0.5
        case .bilinear, .hamming: return 1
        case .bicubic: return 2
        case .lanczos: return 3
        }
    }

    /// The PIL filter name as used by diffusers' `PIL_INTERPOLATION` ("lanczos", "bicubic", ...).
    public init?(pilName: String) {
        self.init(rawValue: pilName.lowercased())
    }

    @inline(__always)
    func weight(_ x: Double) -> Double {
        switch self {
        case .box:
            return x > -0.5 && x <= 0.5 ? 1 : 0
        case .bilinear:
            let x = x < 0 ? -x : x
            return x < 1 ? 1 - x : 0
        case .hamming:
            var x = x < 0 ? -x : x
            if x == 0 { return 1 }
            if x >= 1 { return 0 }
            x = x * Double.pi
            // `0.54f + 0.46f * cos(x)` in C: float constants promoted to double.
            return sin(x) / x * (Double(Float(0.54)) + Double(Float(0.46)) * cos(x))
        case .bicubic:
            let a = -0.5
            let x = x < 0 ? -x : x
            if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
            if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
            return 0
        case .lanczos:
            if -3 <= x && x < 3 { return Self.sinc(x) * Self.sinc(x / 3) }
            return 0
        }
    }

    @inline(__always)
    private static func sinc(_ x: Double) -> Double {
        if x == 0 { return 1 }
        let px = x * Double.pi
        return sin(px) / px
    }
}
