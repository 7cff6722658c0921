import AtelierKernels

/// `F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)` on NCHW, which DPT's
/// fusion uses to bring a skip map to the running map's size when they differ (`image_size` not a
/// multiple of 32 — never for SD2-depth's 384², where every fusion size matches and this is
/// skipped). Source coordinate `(dst + 0.5)·in/out − 0.5`, clamped at 0 (torch's linear modes,
/// unlike cubic, clamp), two taps with the second clamped to the last pixel; no antialiasing.
/// Rounding follows torch's separable kernel closely but not FMA for FMA: agreement is to
/// float32 rounding, well inside the parity tolerance.
enum BilinearResize {
    static func resize(_ x: Tensor, height: Int, width: Int) -> Tensor {
        let (n, c, inH, inW) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        if inH == height && inW == width { return x }
        let rows = taps(inSize: inH, outSize: height), cols = taps(inSize: inW, outSize: width)
        let out = Tensor(uninitialized: [n, c, height, width])
        Parallel.forEachChunk(n * c, grain: 1) { range in
            for plane in range {
                let src = x.pointer + plane * inH * inW, dst = out.pointer + plane * height * width
                for oy in 0..<height {
                    let (y0, y1, wy) = rows[oy]
                    let l0 = src + y0 * inW, l1 = src + y1 * inW
                    for ox in 0..<width {
                        let (x0, x1, wx) = cols[ox]
                        let top = l0[x0] * (1 - wx) + l0[x1] * wx
                        let bottom = l1[x0] * (1 - wx) + l1[x1] * wx
                        dst[oy * width + ox] = top * (1 - wy) + bottom * wy
                    }
                }
            }
        }
        return out
    }

    /// Per output position: first tap, second tap, weight of the second.
    static func taps(inSize: Int, outSize: Int) -> [(Int, Int, Float)] {
        let scale = Float(inSize) / Float(outSize)
        return (0..<outSize).map { i in
            let real = max(scale * (Float(i) + 0.5) - 0.5, 0)
            let i0 = min(Int(real), inSize - 1)
            let i1 = i0 + (i0 < inSize - 1 ? 1 : 0)
            let lambda = min(max(real - Float(i0), 0), 1)
            return (i0, i1, lambda)
        }
    }
}
