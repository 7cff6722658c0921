import AtelierKernels

/// Classifier-free guidance on a [uncond, cond] batch, in the model's own parameterisation
/// (ε or v), with optional guidance rescale (diffusers `rescale_noise_cfg`, whose std is
/// torch's unbiased one).
enum Guidance {
    static func combine(_ out: Tensor, scale g: Float, rescale phi: Float) -> Tensor {
        let uncond = out.slice(0), cond = out.slice(1)
        let n = uncond.count
        let pred = Tensor(uninitialized: uncond.shape.count == out.rank - 1 ? [1] + uncond.shape : uncond.shape)
        for i in 0..<n { pred[flat: i] = uncond[flat: i] + g * (cond[flat: i] - uncond[flat: i]) }
        guard phi > 0 else { return pred }
        let stdText = std(cond), stdCfg = std(pred)
        let ratio = stdText / stdCfg
        for i in 0..<n {
            let v = pred[flat: i]
            pred[flat: i] = phi * (v * ratio) + (1 - phi) * v
        }
        return pred
    }

    /// Unbiased standard deviation over all elements, as a float32 result.
    static func std(_ t: Tensor) -> Float {
        var sum = 0.0
        for i in 0..<t.count { sum += Double(t[flat: i]) }
        let mean = sum / Double(t.count)
        var sq = 0.0
        for i in 0..<t.count { let d = Double(t[flat: i]) - mean; sq += d * d }
        return Float((sq / Double(max(t.count - 1, 1))).squareRoot())
    }
}
