/// How visible tile seams are in a stitched image.
///
/// The ratio of the mean squared gradient magnitude on the seam lines (the centre of every overlap
/// band, full length) to the mean over every other pixel. A seamless stitch looks like any other
/// part of the image there, so the ratio is about 1; tiles that disagree (different colour, noise
/// or content) leave a step or a ramp at the seam and drive it well above 1.
///
/// Gradients are forward differences (backward on the last row/column), summed over channels:
/// g(x, y) = Σ_c (I(x+1, y, c) − I(x, y, c))² + (I(x, y+1, c) − I(x, y, c))².
/// A tiny epsilon keeps flat images (all gradients 0) at exactly 1 rather than 0/0; an image with
/// no seam lines (a single tile) or nothing but seam lines also reports 1.
public enum SeamMetric {
    public static func ratio(pixels: [UInt8], width: Int, height: Int, channels: Int,
                             seamColumns: [Int], seamRows: [Int]) throws -> Double {
        guard width > 0, height > 0, channels > 0, pixels.count == width * height * channels else {
            throw TilingError.invalidBuffer(
                "image buffer of \(pixels.count) samples does not match \(width)x\(height)x\(channels)")
        }
        var onColumn = [Bool](repeating: false, count: width)
        for x in seamColumns where x >= 0 && x < width { onColumn[x] = true }
        var onRow = [Bool](repeating: false, count: height)
        for y in seamRows where y >= 0 && y < height { onRow[y] = true }

        var seamSum = 0.0, seamCount = 0
        var otherSum = 0.0, otherCount = 0
        pixels.withUnsafeBufferPointer { p in
            for y in 0..<height {
                let yn = y + 1 < height ? y + 1 : max(y - 1, 0)
                let ySign = y + 1 < height ? 1.0 : -1.0
                for x in 0..<width {
                    let xn = x + 1 < width ? x + 1 : max(x - 1, 0)
                    let xSign = x + 1 < width ? 1.0 : -1.0
                    var g = 0.0
                    let i = (y * width + x) * channels
                    let ix = (y * width + xn) * channels
                    let iy = (yn * width + x) * channels
                    for c in 0..<channels {
                        let dx = xSign * (Double(p[ix + c]) - Double(p[i + c]))
                        let dy = ySign * (Double(p[iy + c]) - Double(p[i + c]))
                        g += dx * dx + dy * dy
                    }
                    if onColumn[x] || onRow[y] {
                        seamSum += g
                        seamCount += 1
                    } else {
                        otherSum += g
                        otherCount += 1
                    }
                }
            }
        }
        guard seamCount > 0, otherCount > 0 else { return 1 }
        let epsilon = 1e-9
        return (seamSum / Double(seamCount) + epsilon) / (otherSum / Double(otherCount) + epsilon)
    }
}
