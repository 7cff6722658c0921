import Foundation
import AtelierKernelsC

/// A GroupNorm reduced to its per-sample, per-channel affine form `y = x·scale + shift`, with the
/// statistics taken over the WHOLE feature map.
///
/// Why: a tiled (row-band) network pass must normalise every band with the statistics of the
/// full map, never the band's own, or tiles disagree at their seams and the result drifts from
/// the untiled one. The statistics are gathered here in one pass over the map (mean first, then
/// the squared deviations from it, both in Double — the same `ak_moments` as
/// `Normalization.groupNorm`), and applied band by band by `fillBand`. Scale and shift are formed
/// exactly as `Normalization.groupNorm` forms them, so a normalised band is bit-identical to the
/// same rows of the untiled output.
public struct GroupNormAffine: Sendable {
    /// [batch · channels], row-major.
    public let scale: [Float]
    public let shift: [Float]
    public let batch: Int
    public let channels: Int

    /// Statistics of `x` (NCHW or [N, C, L]) for `groups` groups with the module's affine
    /// parameters (nil: 1 and 0).
    public static func statistics(of x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?, eps: Float) -> GroupNormAffine {
        let n = x.shape[0], c = x.shape[1]
        precondition(groups > 0 && c % groups == 0, "GroupNorm: \(c) channels not divisible by \(groups) groups")
        let spatial = x.count / max(1, n * c)
        let perGroup = c / groups
        let groupSize = perGroup * spatial
        var scale = [Float](repeating: 0, count: n * c)
        var shift = [Float](repeating: 0, count: n * c)
        scale.withUnsafeMutableBufferPointer { sc in
            shift.withUnsafeMutableBufferPointer { sh in
                let scp = sc.baseAddress!, shp = sh.baseAddress!
                Parallel.forEachChunk(n * groups) { range in
                    for ng in range {
                        let src = x.pointer + ng * groupSize
                        var mean = 0.0, sq = 0.0
                        ak_moments(src, groupSize, &mean, &sq)
                        let inv = 1.0 / (sq / Double(groupSize) + Double(eps)).squareRoot()
                        let g = ng % groups, b = ng / groups
                        for ci in 0..<perGroup {
                            let ch = g * perGroup + ci
                            let s = Float(inv) * (weight?.pointer[ch] ?? 1)
                            scp[b * c + ch] = s
                            shp[b * c + ch] = (bias?.pointer[ch] ?? 0) - Float(mean) * s
                        }
                    }
                }
            }
        }
        return GroupNormAffine(scale: scale, shift: shift, batch: n, channels: c)
    }
}

/// Cuts a band of rows out of one sample of an NCHW feature map, optionally normalising it
/// (`GroupNormAffine`), applying SiLU and nearest-×2 upsampling on the way — the inputs of a
/// row-band convolution, without ever materialising the normalised / activated / upsampled map.
public enum FeatureBand {
    /// Fills `dst` ([channels, rows, outWidth] contiguous) with rows `[row0, row0 + rows)` of
    /// sample `sample` of `x` [N, C, H, W], in the coordinates of the (optionally ×2 nearest
    /// upsampled) map: `outWidth` is W, or 2·W when `upsample2x`. The element operations are the
    /// same formulas and kernels the untiled layers use, in the same order (normalise, SiLU), so each
    /// value equals the untiled one bit for bit.
    public static func fill(_ dst: UnsafeMutablePointer<Float>, from x: Tensor, sample: Int, row0: Int, rows: Int,
                            upsample2x: Bool, norm: GroupNormAffine?, silu: Bool) {
        let c = x.shape[1], h = x.shape[2], w = x.shape[3]
        let ow = upsample2x ? 2 * w : w
        precondition(sample >= 0 && sample < x.shape[0], "band sample out of range")
        precondition(row0 >= 0 && rows >= 0 && row0 + rows <= (upsample2x ? 2 * h : h), "band rows out of range")
        Parallel.forEachChunk(c, grain: 1) { range in
            for ch in range {
                let plane = x.pointer + (sample * c + ch) * h * w
                let scale = norm.map { $0.scale[sample * c + ch] } ?? 1
                let shift = norm.map { $0.shift[sample * c + ch] } ?? 0
                let out = dst + ch * rows * ow
                for r in 0..<rows {
                    let srcRow = upsample2x ? (row0 + r) / 2 : row0 + r
                    let line = plane + srcRow * w
                    let o = out + r * ow
                    if upsample2x {
                        for i in 0..<w {
                            let v = transform(line[i], norm != nil, scale, shift)
                            o[2 * i] = v; o[2 * i + 1] = v
                        }
                    } else {
                        for i in 0..<w { o[i] = transform(line[i], norm != nil, scale, shift) }
                    }
                    // The same element-wise kernel as `Activation.silu`: the same bits per element.
                    if silu { ak_silu(o, o, ow) }
                }
            }
        }
    }

    @inline(__always)
    static func transform(_ v: Float, _ normalise: Bool, _ scale: Float, _ shift: Float) -> Float {
        normalise ? v * scale + shift : v
    }
}
