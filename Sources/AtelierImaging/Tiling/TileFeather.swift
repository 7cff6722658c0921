/// The blending weights of one tile along one axis, in output pixels.
///
/// Across an overlap band of width B shared with a neighbour, the weight ramps linearly
/// 0→1 into the tile as (i + 0.5) / B for the i-th pixel of the band. The half-pixel offset keeps
/// the weight strictly positive everywhere inside the image (so every output pixel has a
/// non-zero total weight), and makes the two ramps of a band sum to exactly 1 at every pixel:
/// (i + 0.5)/B + (B − i − 0.5)/B = 1. At the image border there is no neighbour, so no ramp:
/// the weight stays 1 up to the edge instead of fading against the outside.
///
/// Where a tile's two bands meet (only possible for the stretched last overlap, see `TileGrid`),
/// the weight is the smaller of the two ramps.
public enum TileFeather {
    /// Weights for a span of `length` output pixels with the given leading/trailing band widths.
    public static func weights(length: Int, leadingBand: Int, trailingBand: Int) -> [Double] {
        (0..<max(length, 0)).map { i in
            var w = 1.0
            if leadingBand > 0 {
                w = min(w, (Double(i) + 0.5) / Double(leadingBand))
            }
            if trailingBand > 0 {
                w = min(w, (Double(length - i) - 0.5) / Double(trailingBand))
            }
            return w
        }
    }

    /// The weights of `span` once upscaled by `scale`.
    public static func weights(for span: TileSpan, scale: Int) -> [Double] {
        weights(length: span.length * scale, leadingBand: span.leadingOverlap * scale,
                trailingBand: span.trailingOverlap * scale)
    }
}
