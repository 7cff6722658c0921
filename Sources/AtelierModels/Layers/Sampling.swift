import AtelierKernels

/// Downsample2D: a stride-2 3×3 conv. UNets pad symmetrically (padding 1); the VAE encoder uses
/// padding 0 with an explicit right/bottom pad of 1 (SD2-SPEC §7.3).
public struct Downsample2D {
    let conv: Conv2d

    public init(_ w: Weights, channels: Int, padding: Int) throws {
        let pad: Padding2D = padding == 0 ? .init(top: 0, left: 0, bottom: 1, right: 1) : .symmetric(padding)
        conv = try Conv2d(w["conv"], inChannels: channels, outChannels: channels, kernel: 3, stride: 2, padding: pad)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { conv(x) }
}

/// Upsample2D: nearest ×2 (or to the skip connection's size when the latent side is not a
/// multiple of 2^levels), then a 3×3 conv.
public struct Upsample2D {
    let conv: Conv2d

    public init(_ w: Weights, channels: Int) throws {
        conv = try Conv2d(w["conv"], inChannels: channels, outChannels: channels, kernel: 3, padding: .symmetric(1))
    }

    public func callAsFunction(_ x: Tensor, size: (Int, Int)? = nil) -> Tensor {
        let (h, w) = size ?? (x.shape[2] * 2, x.shape[3] * 2)
        return conv(Elementwise.upsampleNearest(x, height: h, width: w))
    }
}
