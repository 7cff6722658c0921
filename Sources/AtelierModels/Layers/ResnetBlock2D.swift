import AtelierKernels

/// diffusers' ResnetBlock2D ("default" time-embedding norm), used by UNet (eps 1e-5, with a
/// time embedding) and VAE (eps 1e-6, none): h = conv1(silu(GN1(x))) [+ proj(silu(temb))];
/// h = conv2(silu(GN2(h))); out = (shortcut(x) + h) / scale.
public struct ResnetBlock2D {
    let norm1: GroupNorm, conv1: Conv2d
    let timeEmbProj: Linear?
    let norm2: GroupNorm, conv2: Conv2d
    let shortcut: Conv2d?
    let outputScale: Float

    public init(_ w: Weights, inChannels: Int, outChannels: Int, tembChannels: Int?, groups: Int,
                eps: Float, outputScaleFactor: Float = 1) throws {
        norm1 = try GroupNorm(w["norm1"], groups: groups, channels: inChannels, eps: eps)
        conv1 = try Conv2d(w["conv1"], inChannels: inChannels, outChannels: outChannels, kernel: 3, padding: .symmetric(1))
        timeEmbProj = try tembChannels.map { try Linear(w["time_emb_proj"], inFeatures: $0, outFeatures: outChannels) }
        norm2 = try GroupNorm(w["norm2"], groups: groups, channels: outChannels, eps: eps)
        conv2 = try Conv2d(w["conv2"], inChannels: outChannels, outChannels: outChannels, kernel: 3, padding: .symmetric(1))
        shortcut = inChannels != outChannels
            ? try Conv2d(w["conv_shortcut"], inChannels: inChannels, outChannels: outChannels, kernel: 1) : nil
        outputScale = outputScaleFactor
    }

    /// `temb` is the already-SiLU'd time embedding [B, tembChannels] (shared by every block).
    public func callAsFunction(_ x: Tensor, temb: Tensor?) -> Tensor {
        var h = conv1(Activation.silu(norm1(x)))
        if let proj = timeEmbProj, let temb {
            let t = proj(temb)  // [B, C]
            let (b, c) = (h.shape[0], h.shape[1])
            let plane = h.count / (b * c)
            for bi in 0..<b {
                for ci in 0..<c {
                    let v = t.pointer[bi * c + ci]
                    let p = h.pointer + (bi * c + ci) * plane
                    for j in 0..<plane { p[j] += v }
                }
            }
        }
        h = conv2(Activation.silu(norm2(h)))
        let skip = shortcut.map { $0(x) } ?? x
        Elementwise.addInPlace(h, skip)
        if outputScale != 1 {
            let inv = 1 / outputScale
            for i in 0..<h.count { h.pointer[i] *= inv }
        }
        return h
    }
}
