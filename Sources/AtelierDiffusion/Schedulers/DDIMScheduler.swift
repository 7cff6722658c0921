import AtelierKernels

/// DDIM (Song et al. 2020), reproducing diffusers `DDIMScheduler` (`schedulers/scheduling_ddim.py`).
/// The default scheduler of the SD2/2.1 768-v models and the x4 upscaler (SD2-SPEC §5.4).
///
/// - `prev_t = t − T//N` whatever the spacing; ᾱ_prev = ᾱ[prev_t], or `final_alpha_cumprod`
///   (1 if `set_alpha_to_one`, else ᾱ[0]) when prev_t < 0.
/// - x₀ from the prediction (ε, v or x₀), optionally clipped; σ_t = η·√var;
///   x_prev = √ᾱ_prev·x₀ + √(1 − ᾱ_prev − σ_t²)·ε̂ (+ σ_t·randn when η > 0).
/// All coefficients are float32 scalars computed in diffusers' order (0-d torch tensors).
public struct DDIMScheduler: Scheduler {
    public let className = "DDIMScheduler"
    public let order = 1
    public let initNoiseSigma: Float = 1
    public private(set) var timesteps: [Float] = []
    public private(set) var numInferenceSteps = 0
    /// η of the DDIM paper: 0 is deterministic DDIM, 1 is DDPM-like. diffusers passes it to
    /// `step()`; here it comes from the config's `eta` (default 0) and may be changed.
    public var eta: Double

    public let predictionType: PredictionType
    public let timestepSpacing: TimestepSpacing
    let schedule: NoiseSchedule
    private var stepTimesteps: [Int] = []
    private let stepsOffset: Int
    private let clipSampleRange: Float?
    private let finalAlphaCumprod: Float

    /// Configures like `DDIMScheduler.from_config(config)`; absent keys take DDIM's defaults
    /// (β 0.0001→0.02 "linear", `clip_sample` true, `set_alpha_to_one` true, "leading" spacing).
    public init(config: SchedulerConfig) throws {
        try ConfigValue.requireFalse(config.thresholding, key: "thresholding", reason: "dynamic thresholding is not implemented (it is unsuitable for latent diffusion)")
        schedule = try NoiseSchedule(
            numTrainTimesteps: config.numTrainTimesteps ?? 1000, betaStart: config.betaStart ?? 0.0001,
            betaEnd: config.betaEnd ?? 0.02,
            schedule: try ConfigValue.parse(config.betaSchedule, key: "beta_schedule", default: .linear),
            trainedBetas: config.trainedBetas, rescaleZeroTerminalSNR: config.rescaleBetasZeroSnr ?? false)
        predictionType = try ConfigValue.parse(config.predictionType, key: "prediction_type", default: .epsilon)
        timestepSpacing = try ConfigValue.parse(config.timestepSpacing, key: "timestep_spacing", default: .leading)
        stepsOffset = config.stepsOffset ?? 0
        clipSampleRange = (config.clipSample ?? true) ? Float(config.clipSampleRange ?? 1.0) : nil
        finalAlphaCumprod = (config.setAlphaToOne ?? true) ? 1 : schedule.alphasCumprod[0]
        eta = config.eta ?? 0
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
        let timestep = stepTimesteps[stepIndex]
        let previous = timestep - schedule.numTrainTimesteps / numInferenceSteps
        let alphaProd = schedule.alphaCumprod(atTimestep: timestep)
        let alphaProdPrev = previous >= 0 ? schedule.alphaCumprod(atTimestep: previous) : finalAlphaCumprod
        let betaProd = 1 - alphaProd
        let sqrtAlpha = alphaProd.squareRoot()
        let sqrtBeta = betaProd.squareRoot()

        // 3. x₀ and ε̂ from the model output.
        var original: Tensor
        let epsilon: Tensor
        switch predictionType {
        case .epsilon:
            original = SchedulerMath.map(sample, modelOutput) { x, e in (x - sqrtBeta * e) / sqrtAlpha }
            epsilon = modelOutput
        case .sample:
            original = modelOutput
            epsilon = SchedulerMath.map(sample, modelOutput) { x, x0 in (x - sqrtAlpha * x0) / sqrtBeta }
        case .vPrediction:
            original = SchedulerMath.map(sample, modelOutput) { x, v in sqrtAlpha * x - sqrtBeta * v }
            epsilon = SchedulerMath.map(sample, modelOutput) { x, v in sqrtAlpha * v + sqrtBeta * x }
        }
        // 4. Clip x₀.
        if let range = clipSampleRange {
            original = SchedulerMath.map(original) { min(max($0, -range), range) }
        }
        // 5. σ_t(η) = η·√((1 − ᾱ_prev)/(1 − ᾱ_t)·(1 − ᾱ_t/ᾱ_prev)).
        let variance = ((1 - alphaProdPrev) / betaProd) * (1 - alphaProd / alphaProdPrev)
        let stdDev = Float(eta) * variance.squareRoot()
        // 6–7. Direction to x_t and x_prev.
        let directionCoefficient = ((1 - alphaProdPrev) - stdDev * stdDev).squareRoot()
        let sqrtAlphaPrev = alphaProdPrev.squareRoot()
        var previousSample = SchedulerMath.map(original, epsilon) { x0, e in
            sqrtAlphaPrev * x0 + directionCoefficient * e
        }
        if eta > 0 {
            let noise = random.normal(shape: modelOutput.shape, window: noiseWindow)
            previousSample = SchedulerMath.map(previousSample, noise) { x, n in x + stdDev * n }
        }
        return previousSample
    }

    public func addNoise(original: Tensor, noise: Tensor, stepIndex: Int) -> Tensor {
        schedule.addNoise(original: original, noise: noise, timestep: stepTimesteps[stepIndex])
    }

    /// `add_noise` at an explicit training timestep (0 ≤ t < num_train_timesteps).
    public func addNoise(original: Tensor, noise: Tensor, trainTimestep: Int) -> Tensor {
        schedule.addNoise(original: original, noise: noise, timestep: trainTimestep)
    }
}
