import AtelierKernels

/// Runs the VAE's layers over horizontal bands of rows, with exact whole-map GroupNorm.
///
/// Why bands and how they stay exact:
/// - Every convolution reads its input band plus the halo rows its kernel needs (one row above
///   and below for a 3×3) straight from the full input map and writes only its own output rows,
///   so no output is computed twice and no seam exists: each output element sees exactly the
///   inputs it sees in the untiled pass.
/// - The GroupNorm (+ SiLU) and nearest ×2 upsampling in front of a convolution are applied to
///   the band as it is cut (`FeatureBand.fill`), never to a whole map; the statistics are those
///   of the WHOLE map (`GroupNormAffine.statistics`, pass one), applied per band (pass two).
/// - The mid-block attention attends over all tokens and runs whole: it sits at the lowest
///   resolution, where the map is small.
/// - A residual block whose channel count does not change writes its output over its own input
///   map (the second convolution reads the intermediate map, not the input), so a block costs
///   two maps, not three.
/// What stays whole: the feature maps between layers (one or two at a time) and the output.
/// What is band-sized: every normalised / activated / upsampled temporary and the conv output
/// band, bounded by `bandFloats` whatever the image size.
public struct VAERowBandExecutor {
    /// Upper bound on the floats of one input band (and one output band), 4 Mi = 16 MB.
    public static let defaultBandFloats = 4 << 20
    let bandFloats: Int

    init(bandFloats: Int = VAERowBandExecutor.defaultBandFloats) {
        self.bandFloats = max(1, bandFloats)
    }

    /// What is added to a convolution's output band before it is stored.
    enum Residual {
        case identity(Tensor)
        case shortcut(Conv2d, Tensor)
    }

    /// out = conv(silu?(norm?(upsample?(x)))) [+ residual], band by band. `into` (same shape as
    /// the output, not read by this convolution) receives the result instead of a new tensor.
    func convolution(_ x: Tensor, _ conv: Conv2d, upsample2x: Bool = false, norm: GroupNormAffine? = nil,
                     silu: Bool = false, residual: Residual? = nil, outputScale: Float = 1, into: Tensor? = nil) -> Tensor {
        let n = x.shape[0], cin = x.shape[1]
        let ih = upsample2x ? 2 * x.shape[2] : x.shape[2], iw = upsample2x ? 2 * x.shape[3] : x.shape[3]
        let cout = conv.weight.shape[0], k = conv.weight.shape[2], s = conv.stride, pad = conv.padding
        let oh = (ih + pad.top + pad.bottom - k) / s + 1, ow = (iw + pad.left + pad.right - k) / s + 1
        let out = into ?? Tensor(uninitialized: [n, cout, oh, ow])
        precondition(out.shape == [n, cout, oh, ow], "row-band output shape \(out.shape) ≠ \([n, cout, oh, ow])")
        // Output rows per band: the input band (stride·rows + halo rows) and the output band both
        // stay within the budget; at least one row.
        let perOutRowIn = cin * s * iw, perOutRowOut = cout * ow
        let rowsPerBand = max(1, min(oh, bandFloats / max(1, max(perOutRowIn, perOutRowOut))))
        let maxInRows = min(ih, (rowsPerBand - 1) * s + k)
        let inputBand = TensorStorage(uninitializedCount: cin * maxInRows * iw)
        let skipBand: TensorStorage? = {
            if case .shortcut(_, let t) = residual { return TensorStorage(uninitializedCount: t.shape[1] * rowsPerBand * ow) }
            return nil
        }()
        for b in 0..<n {
            var o0 = 0
            while o0 < oh {
                let o1 = min(oh, o0 + rowsPerBand)
                // Padded-input rows [o0·s, (o1−1)·s + k) are real rows shifted by the top padding.
                let start = o0 * s - pad.top, end = (o1 - 1) * s + k - pad.top
                let r0 = max(0, start), r1 = min(ih, end)
                let band = Tensor(shape: [1, cin, r1 - r0, iw], storage: inputBand)
                FeatureBand.fill(band.pointer, from: x, sample: b, row0: r0, rows: r1 - r0,
                                 upsample2x: upsample2x, norm: norm, silu: silu)
                let padding = Padding2D(top: r0 - start, left: pad.left, bottom: end - r1, right: pad.right)
                let y = Convolution.conv2d(band, weight: conv.weight, bias: conv.bias, stride: s, padding: padding)
                let rows = o1 - o0, plane = rows * ow
                switch residual {
                case .identity(let t)?:
                    precondition(t.shape == out.shape, "identity residual shape \(t.shape) ≠ \(out.shape)")
                    Self.addRows(into: y, from: t, sample: b, row0: o0, rows: rows)
                case .shortcut(let sc, let t)?:
                    let sb = Tensor(shape: [1, t.shape[1], rows, t.shape[3]], storage: skipBand!)
                    FeatureBand.fill(sb.pointer, from: t, sample: b, row0: o0, rows: rows, upsample2x: false, norm: nil, silu: false)
                    let skip = Convolution.conv2d(sb, weight: sc.weight, bias: sc.bias, stride: sc.stride, padding: sc.padding)
                    Elementwise.addInPlace(y, skip)
                case nil:
                    break
                }
                if outputScale != 1 {
                    let inv = 1 / outputScale
                    for i in 0..<y.count { y.pointer[i] *= inv }
                }
                Parallel.forEachChunk(cout, grain: 8) { range in
                    for co in range {
                        (out.pointer + ((b * cout + co) * oh + o0) * ow).update(from: y.pointer + co * plane, count: plane)
                    }
                }
                o0 = o1
            }
        }
        return out
    }

    /// y[0, c, r, :] += t[sample, c, row0 + r, :] — the same per-element addition as
    /// `Elementwise.addInPlace` on the whole map.
    static func addRows(into y: Tensor, from t: Tensor, sample: Int, row0: Int, rows: Int) {
        let c = t.shape[1], h = t.shape[2], w = t.shape[3]
        Parallel.forEachChunk(c, grain: 8) { range in
            for ch in range {
                let dst = y.pointer + ch * rows * w
                let src = t.pointer + ((sample * c + ch) * h + row0) * w
                for i in 0..<(rows * w) { dst[i] += src[i] }
            }
        }
    }

    /// ResnetBlock2D without a time embedding (the VAE's), in bands. `x` is consumed: when the
    /// channel count is unchanged the block's output is written over it.
    func resnet(_ r: ResnetBlock2D, _ x: Tensor) -> Tensor {
        precondition(r.timeEmbProj == nil, "the row-band executor runs the VAE's resnets, which have no time embedding")
        let a1 = GroupNormAffine.statistics(of: x, groups: r.norm1.groups, weight: r.norm1.weight, bias: r.norm1.bias, eps: r.norm1.eps)
        let h = convolution(x, r.conv1, norm: a1, silu: true)
        let a2 = GroupNormAffine.statistics(of: h, groups: r.norm2.groups, weight: r.norm2.weight, bias: r.norm2.bias, eps: r.norm2.eps)
        if let sc = r.shortcut {
            return convolution(h, r.conv2, norm: a2, silu: true, residual: .shortcut(sc, x), outputScale: r.outputScale)
        }
        return convolution(h, r.conv2, norm: a2, silu: true, residual: .identity(x), outputScale: r.outputScale, into: x)
    }

    func mid(_ m: VAEMidBlock, _ x: Tensor) -> Tensor {
        var h = resnet(m.resnet1, x)
        if let a = m.attention { h = a(h) }
        return resnet(m.resnet2, h)
    }

    /// The decoder from (post-quant-conv) latents to pixels.
    func decode(_ d: VAEDecoder, _ z: Tensor) -> Tensor {
        var h = mid(d.mid, convolution(z, d.convIn))
        for level in d.up {
            for r in level.resnets { h = resnet(r, h) }
            if let us = level.upsampler { h = convolution(h, us.conv, upsample2x: true) }
        }
        let a = GroupNormAffine.statistics(of: h, groups: d.normOut.groups, weight: d.normOut.weight, bias: d.normOut.bias, eps: d.normOut.eps)
        return convolution(h, d.convOut, norm: a, silu: true)
    }

    /// The encoder from pixels to (pre-quant-conv) moments. `image` is only read.
    func encode(_ e: VAEEncoder, _ image: Tensor) -> Tensor {
        var h = convolution(image, e.convIn)
        for level in e.down {
            for r in level.resnets { h = resnet(r, h) }
            if let ds = level.downsampler { h = convolution(h, ds.conv) }
        }
        h = mid(e.mid, h)
        let a = GroupNormAffine.statistics(of: h, groups: e.normOut.groups, weight: e.normOut.weight, bias: e.normOut.bias, eps: e.normOut.eps)
        return convolution(h, e.convOut, norm: a, silu: true)
    }
}
