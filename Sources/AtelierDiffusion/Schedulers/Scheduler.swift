import AtelierKernels

/// A diffusion sampler: the part of a Stable Diffusion pipeline that varies between "DDIM",
/// "Euler a", "DPM++ 2M Karras", … Each conforming type reproduces one diffusers scheduler class
/// (`diffusers/schedulers/scheduling_*.py`, diffusers 0.42) including its float32/float64
/// arithmetic, so latents match a diffusers run step for step — bit for bit, except where torch's
/// float32 `sqrt` (MKL VML, not correctly rounded for ~0.6 % of inputs) rounds a scalar
/// coefficient an ulp lower than the correctly rounded `squareRoot()` used here.
///
/// Steps are addressed by **index into `timesteps`**, not by timestep value. diffusers' newer
/// schedulers track the same index internally (`_step_index`, started at `begin_index`); using it
/// explicitly makes img2img straightforward and avoids timestep look-ups that are ambiguous when
/// a schedule repeats a value (PNDM, DPM-Karras). A txt2img loop:
///
/// ```swift
/// try scheduler.setTimesteps(steps)
/// var latents = random.normal(shape: shape) * scheduler.initNoiseSigma   // scale each element
/// for i in scheduler.timesteps.indices {
///     let input = scheduler.scaleModelInput(latents, stepIndex: i)
///     let output = unet(input, timestep: scheduler.timesteps[i])
///     latents = scheduler.step(modelOutput: output, stepIndex: i, sample: latents, random: &random)
/// }
/// ```
///
/// img2img (diffusers `StableDiffusionImg2ImgPipeline.get_timesteps` + `set_begin_index`): start at
/// `let begin = scheduler.img2imgBeginIndex(strength:)`, noise the encoded image with
/// `addNoise(original:noise:stepIndex: begin)` (no `initNoiseSigma` factor), then run the loop for
/// `begin..<timesteps.count`.
public protocol Scheduler: Sendable {
    /// The diffusers class this scheduler reproduces, e.g. "EulerDiscreteScheduler".
    var className: String { get }
    /// The timesteps handed to the UNet, one per step (after `setTimesteps`): integers for
    /// DDIM/PNDM/DPM/DDPM, fractional values for Euler and Euler-ancestral.
    var timesteps: [Float] { get }
    /// The factor applied to initial Gaussian noise in txt2img (`init_noise_sigma`).
    var initNoiseSigma: Float { get }
    /// UNet evaluations per step (`order` in diffusers; 1 for all schedulers here).
    var order: Int { get }
    /// The step count last passed to `setTimesteps` (PNDM produces one more timestep than this).
    var numInferenceSteps: Int { get }

    /// `set_timesteps(steps)`: builds `timesteps` and resets any multistep history.
    mutating func setTimesteps(_ steps: Int) throws
    /// `scale_model_input`: what the UNet sees at step `stepIndex`.
    func scaleModelInput(_ sample: Tensor, stepIndex: Int) -> Tensor
    /// `step`: the sample for the next step from the model output at step `stepIndex`. Stochastic
    /// samplers (Euler-ancestral, DDPM, DDIM with η > 0) draw one `randn` of the sample's shape.
    /// Multistep schedulers (PNDM, DPM) expect consecutive indices after `setTimesteps`.
    ///
    /// `noiseWindow`: for one tile of a tiled render, where the tile lies in the whole image; the
    /// step's `randn` is then drawn for the whole image and cropped (see `NoiseWindow`). nil (the
    /// four-argument overload) draws at the sample's shape, as diffusers does.
    mutating func step(
        modelOutput: Tensor, stepIndex: Int, sample: Tensor, random: inout TorchRandomSource, noiseWindow: NoiseWindow?
    ) -> Tensor
    /// `add_noise(original, noise, timesteps[stepIndex])` as img2img calls it, i.e. with
    /// `set_begin_index(stepIndex)` in effect for the schedulers that have it.
    func addNoise(original: Tensor, noise: Tensor, stepIndex: Int) -> Tensor
}

extension Scheduler {
    /// `step` for a whole image: stochastic samplers draw their noise at the sample's shape.
    public mutating func step(modelOutput: Tensor, stepIndex: Int, sample: Tensor, random: inout TorchRandomSource) -> Tensor {
        step(modelOutput: modelOutput, stepIndex: stepIndex, sample: sample, random: &random, noiseWindow: nil)
    }

    /// img2img's first step index for `strength` ∈ [0, 1], as diffusers' `get_timesteps`:
    /// `init = min(int(N·strength), N)`, `t_start = max(N − init, 0)`, index `t_start·order`.
    ///
    /// `strength` stays a Double all the way here because Python's `N * strength` is a double
    /// product: 10 × 0.7 = 7.000000000000001 → 7 steps, where a Float 0.7 gives 6.9999998 → 6.
    /// Strengths outside [0, 1] (or NaN, which Python would reject) are clamped to that range, so
    /// the result is always in 0…N·order; a caller must still check that steps remain.
    public func img2imgBeginIndex(strength: Double) -> Int {
        let steps = numInferenceSteps
        let strength = strength.isNaN ? 0 : Swift.min(Swift.max(strength, 0), 1)
        let initTimestep = min(Int(Double(steps) * strength), steps)
        let tStart = max(steps - initTimestep, 0)
        return tStart * order
    }
}
