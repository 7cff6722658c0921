import AtelierKernels

/// Max-pooling over NCHW with explicit zero padding, as BiT's stem pool runs it: `DynamicPad2d`
/// pads with the value **0** (an `F.pad`, not the −∞ of `MaxPool2d(padding=…)`), then a plain
/// `max_pool2d` without padding and without ceil mode. After the stem's ReLU the two agree, but
/// the zeros are what transformers computes, so they are what this does.
enum MaxPool2d {
    static func maxPool(_ x: Tensor, kernel: Int, stride: Int, padding: Padding2D) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let ph = h + padding.top + padding.bottom, pw = w + padding.left + padding.right
        let oh = (ph - kernel) / stride + 1, ow = (pw - kernel) / stride + 1
        precondition(oh > 0 && ow > 0, "max-pool: \(h)×\(w) input is smaller than the \(kernel)×\(kernel) window")
        let out = Tensor(uninitialized: [n, c, oh, ow])
        Parallel.forEachChunk(n * c, grain: 4) { range in
            for plane in range {
                let src = x.pointer + plane * h * w, dst = out.pointer + plane * oh * ow
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        var m = -Float.infinity
                        for ky in 0..<kernel {
                            let iy = oy * stride + ky - padding.top
                            for kx in 0..<kernel {
                                let ix = ox * stride + kx - padding.left
                                let v: Float = (iy >= 0 && iy < h && ix >= 0 && ix < w) ? src[iy * w + ix] : 0
                                m = max(m, v)
                            }
                        }
                        dst[oy * ow + ox] = m
                    }
                }
            }
        }
        return out
    }
}
