import AtelierKernels
import Foundation

/// Ancestral DDPM sampling (Ho et al. 2020), reproducing diffusers `DDPMScheduler`
/// (`schedulers/scheduling_ddpm.py`; SD2-SPEC §5.9). In SD2 it matters as the x4 upscaler's
/// `low_res_scheduler`, whose `add_noise` at the integer `noise_level` augments the low-res image
/// (`addNoise(original:noise:trainTimestep:)`); `step` is implemented for completeness.
///
/// step: x₀ from the prediction (clipped if `clip_sample`), then
/// x_prev = (√ᾱ_prev·β_t/(1−ᾱ_t))·x₀ + (√α_t·(1−ᾱ_prev)/(1−ᾱ_t))·x, plus √var·randn when t > 0,
/// with the previous timestep taken from the schedule (not t − T//N as in DDIM).
public struct DDPMScheduler: Scheduler {
    /// `variance_type` values implemented here.
    public enum VarianceType: String, Sendable, CaseIterable {
        case fixedSmall = "fixed_small"
        case fixedSmallLog = "fixed_small_log"
        case fixedLarge = "fixed_large"
    }

    public let className = "DDPMScheduler"
    public let order = 1
    public let initNoiseSigma: Float = 1
    public private(set) var timesteps: [Float] = []
    public private(set) var numInferenceSteps = 0

    public let predictionType: PredictionType
    public let timestepSpacing: TimestepSpacing
    public let varianceType: VarianceType
    let schedule: NoiseSchedule
    private let stepsOffset: Int
    private let clipSampleRange: Float?
    private var stepTimesteps: [Int] = []

    /// Configures like `DDPMScheduler.from_config(config)`; absent keys take DDPM's defaults
    /// (β 0.0001→0.02 "linear", "fixed_small", `clip_sample` true, "leading" spacing).
    public init(config: SchedulerConfig) throws {
        try ConfigValue.requireFalse(config.thresholding, key: "thresholding", reason: "dynamic thresholding is not implemented (it is unsuitable for latent diffusion)")
        schedule = try NoiseSchedule(
            numTrainTimesteps: config.numTrainTimesteps ?? 1000, betaStart: config.betaStart ?? 0.0001,
            betaEnd: config.betaEnd ?? 0.02,
            schedule: try ConfigValue.parse(config.betaSchedule, key: "beta_schedule", default: .linear),
            trainedBetas: config.trainedBetas, rescaleZeroTerminalSNR: config.rescaleBetasZeroSnr ?? false)
        predictionType = try ConfigValue.parse(config.predictionType, key: "prediction_type", default: .epsilon)
        timestepSpacing = try ConfigValue.parse(config.timestepSpacing, key: "timestep_spacing", default: .leading)
        varianceType = try ConfigValue.parse(config.varianceType, key: "variance_type", default: .fixedSmall)
        stepsOffset = config.stepsOffset ?? 0
        clipSampleRange = (config.clipSample ?? true) ? Float(config.clipSampleRange ?? 1.0) : nil
    }

    public mutating func setTimesteps(_ steps: Int) throws {
        try TimestepSpacing.validate(steps: steps, trainTimesteps: schedule.numTrainTimesteps)
        numInferenceSteps = steps
        stepTimesteps = timestepSpacing.descendingTimesteps(
            steps: steps, trainTimesteps: schedule.numTrainTimesteps, stepsOffset: stepsOffset)
        timesteps = stepTimesteps.map(Float.init)
    }

    public func scaleModelInput(_ sample: Tensor, stepIndex: Int) -> Tensor { sample }

    public mutating func step(
        modelOutput: Tensor, stepIndex: Int, sample: Tensor, random: inout TorchRandomSource, noiseWindow: NoiseWindow?
    ) -> Tensor {
        precondition(numInferenceSteps > 0, "call setTimesteps before step")
        let t = stepTimesteps[stepIndex]
        let previousT = stepIndex + 1 < stepTimesteps.count ? stepTimesteps[stepIndex + 1] : -1
        let alphaProd = schedule.alphaCumprod(atTimestep: t)
        let alphaProdPrev: Float = previousT >= 0 ? schedule.alphaCumprod(atTimestep: previousT) : 1
        let betaProd = 1 - alphaProd
        let betaProdPrev = 1 - alphaProdPrev
        let currentAlpha = alphaProd / alphaProdPrev
        let currentBeta = 1 - currentAlpha

        var original: Tensor
        switch predictionType {
        case .epsilon:
            let sqrtBeta = betaProd.squareRoot(), sqrtAlpha = alphaProd.squareRoot()
            original = SchedulerMath.map(sample, modelOutput) { x, e in (x - sqrtBeta * e) / sqrtAlpha }
        case .sample:
            original = modelOutput
        case .vPrediction:
            let sqrtBeta = betaProd.squareRoot(), sqrtAlpha = alphaProd.squareRoot()
            original = SchedulerMath.map(sample, modelOutput) { x, v in sqrtAlpha * x - sqrtBeta * v }
        }
        if let range = clipSampleRange {
            original = SchedulerMath.map(original) { min(max($0, -range), range) }
        }
        let originalCoefficient = (alphaProdPrev.squareRoot() * currentBeta) / betaProd
        let sampleCoefficient = (currentAlpha.squareRoot() * betaProdPrev) / betaProd
        let mean = SchedulerMath.map(original, sample) { x0, x in originalCoefficient * x0 + sampleCoefficient * x }
        guard t > 0 else {
            return SchedulerMath.map(mean) { $0 + 0 }  // `pred_prev_sample + 0` (integer variance)
        }
        let noise = random.normal(shape: modelOutput.shape, window: noiseWindow)
        // `_get_variance(t)`: (1 − ᾱ_prev)/(1 − ᾱ_t)·β_t, clamped at 1e-20.
        let variance = max(((1 - alphaProdPrev) / (1 - alphaProd)) * currentBeta, Float(1e-20))
        let standardDeviation: Float
        switch varianceType {
        case .fixedSmall: standardDeviation = variance.squareRoot()
        case .fixedSmallLog: standardDeviation = Float(Foundation.exp(Double(0.5 * Float(Foundation.log(Double(variance))))))
        case .fixedLarge: standardDeviation = currentBeta.squareRoot()
        }
        return SchedulerMath.map(mean, noise) { m, n in m + standardDeviation * n }
    }

    public func addNoise(original: Tensor, noise: Tensor, stepIndex: Int) -> Tensor {
        schedule.addNoise(original: original, noise: noise, timestep: stepTimesteps[stepIndex])
    }

    /// `add_noise(image, noise, noise_level)` at an explicit training timestep — the x4 upscaler's
    /// low-res augmentation: √ᾱ[t]·x + √(1 − ᾱ[t])·ε (0 ≤ t < num_train_timesteps).
    public func addNoise(original: Tensor, noise: Tensor, trainTimestep: Int) -> Tensor {
        schedule.addNoise(original: original, noise: noise, timestep: trainTimestep)
    }
}
