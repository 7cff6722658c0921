import AtelierKernels

/// Classifier-free guidance on a [uncond, cond] batch, in the model's own parameterisation
/// (ε or v), with optional guidance rescale (diffusers `rescale_noise_cfg`, whose std is
/// torch's unbiased one).
enum Guidance {
    static func combine(_ out: Tensor, scale g: Float, rescale phi: Float) -> Tensor {
        let uncond = out.slice(0), cond = out.slice(1)
        let n = uncond.count
        let pred = Tensor(uninitialized: [1] + uncond.shape)
        for i in 0..<n { pred[flat: i] = uncond[flat: i] + g * (cond[flat: i] - uncond[flat: i]) }
        guard phi > 0 else { return pred }
        let ratio = cond.standardDeviation / pred.standardDeviation
        for i in 0..<n {
            let v = pred[flat: i]
            pred[flat: i] = phi * (v * ratio) + (1 - phi) * v
        }
        return pred
    }
}
