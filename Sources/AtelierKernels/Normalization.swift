import AtelierKernelsC

/// GroupNorm and LayerNorm. Statistics accumulate in Double (`ak_moments`: eight partial sums in a
/// fixed tree, vectorised): torch's fp32 kernels are close to exact, and a float running sum over
/// 200k elements would drift well past parity tolerance.
public enum Normalization {
    /// GroupNorm over NCHW (or [N, C] / [N, C, L]): biased variance over (C/G)·spatial, then the
    /// per-channel affine transform.
    public static func groupNorm(_ x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?, eps: Float) -> Tensor {
        precondition(x.rank >= 2 && groups > 0, "GroupNorm wants [N, C, …] and groups > 0, got \(x.shape), \(groups)")
        let n = x.shape[0], c = x.shape[1]
        precondition(c % groups == 0, "GroupNorm: \(c) channels not divisible by \(groups) groups")
        precondition((weight?.count ?? c) == c && (bias?.count ?? c) == c, "GroupNorm: affine parameters do not have \(c) channels")
        let spatial = x.count / max(1, n * c)
        let perGroup = c / groups
        let groupSize = perGroup * spatial
        let y = Tensor(uninitialized: x.shape)
        Parallel.forEachChunk(n * groups) { range in
            for ng in range {
                let src = x.pointer + ng * groupSize
                let dst = y.pointer + ng * groupSize
                var mean = 0.0, sq = 0.0
                ak_moments(src, groupSize, &mean, &sq)
                let inv = 1.0 / (sq / Double(groupSize) + Double(eps)).squareRoot()
                let g = ng % groups
                for ci in 0..<perGroup {
                    let ch = g * perGroup + ci
                    let scale = Float(inv) * (weight?.pointer[ch] ?? 1)
                    let shift = (bias?.pointer[ch] ?? 0) - Float(mean) * scale
                    let s = src + ci * spatial, d = dst + ci * spatial
                    for i in 0..<spatial { d[i] = s[i] * scale + shift }
                }
            }
        }
        return y
    }

    /// LayerNorm over the last axis.
    public static func layerNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Float) -> Tensor {
        precondition(x.rank >= 1 && x.shape[x.rank - 1] > 0, "LayerNorm wants a non-empty last axis, got \(x.shape)")
        precondition((weight?.count ?? x.shape[x.rank - 1]) == x.shape[x.rank - 1] && (bias?.count ?? x.shape[x.rank - 1]) == x.shape[x.rank - 1],
                     "LayerNorm: affine parameters do not match the last axis \(x.shape[x.rank - 1])")
        let d = x.shape[x.rank - 1]
        let rows = x.count / d
        let y = Tensor(uninitialized: x.shape)
        Parallel.forEachChunk(rows, grain: 16) { range in
            for r in range {
                let src = x.pointer + r * d, dst = y.pointer + r * d
                var mean = 0.0, sq = 0.0
                ak_moments(src, d, &mean, &sq)
                let inv = Float(1.0 / (sq / Double(d) + Double(eps)).squareRoot())
                let m = Float(mean)
                for i in 0..<d {
                    dst[i] = (src[i] - m) * inv * (weight?.pointer[i] ?? 1) + (bias?.pointer[i] ?? 0)
                }
            }
        }
        return y
    }
}
