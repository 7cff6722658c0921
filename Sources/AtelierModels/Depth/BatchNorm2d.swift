import AtelierKernels

/// `nn.BatchNorm2d` in eval mode (running statistics, eps 1e-5): the optional norm of DPT's
/// fusion residual units (`use_batch_norm_in_fusion_residual`, set by the ADE20k segmentation
/// checkpoints; SD2-depth leaves it off). `num_batches_tracked` is ignored.
struct BatchNorm2d {
    let scale: [Float]
    let shift: [Float]

    init(_ w: Weights, channels: Int, eps: Double = 1e-5) throws {
        let weight = try w.load("weight", shape: [channels]), bias = try w.load("bias", shape: [channels])
        let mean = try w.load("running_mean", shape: [channels]), variance = try w.load("running_var", shape: [channels])
        var scale = [Float](repeating: 0, count: channels), shift = scale
        for c in 0..<channels {
            let inv = 1 / (Double(variance.pointer[c]) + eps).squareRoot()
            scale[c] = Float(inv * Double(weight.pointer[c]))
            shift[c] = Float(Double(bias.pointer[c]) - Double(mean.pointer[c]) * inv * Double(weight.pointer[c]))
        }
        self.scale = scale
        self.shift = shift
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        let (n, c) = (x.shape[0], x.shape[1])
        let plane = x.count / max(1, n * c)
        let y = Tensor(uninitialized: x.shape)
        Parallel.forEachChunk(n * c, grain: 4) { range in
            for p in range {
                let a = scale[p % c], b = shift[p % c]
                let s = x.pointer + p * plane, d = y.pointer + p * plane
                for i in 0..<plane { d[i] = s[i] * a + b }
            }
        }
        return y
    }
}
