import AtelierKernels

/// Euler's method in σ-space (Karras et al. 2022, Algorithm 2 with s_churn = 0), reproducing
/// diffusers `EulerDiscreteScheduler` (`schedulers/scheduling_euler_discrete.py`; SD2-SPEC §5.6).
///
/// - σ(t) = `np.interp(t, 0…T−1, σ_train)` at float32 timesteps (fractional for "linspace"), in
///   float64, then a trailing 0 (or σ_min) and a cast to float32.
/// - `init_noise_sigma` = σ_max for "linspace"/"trailing" but √(σ_max² + 1) for "leading".
/// - The UNet input is x/√(σ² + 1); x₀ = x − σε (ε) or v·(−σ/√(σ²+1)) + x/(σ²+1) (v);
///   x_next = x + (x − x₀)/σ · (σ_next − σ), all float32.
/// - `use_karras_sigmas`: Karras σ between the interpolated ends, timesteps from `_sigma_to_t`,
///   left fractional.
public struct EulerDiscreteScheduler: Scheduler {
    public let className = "EulerDiscreteScheduler"
    public let order = 1
    public private(set) var timesteps: [Float] = []
    /// σ for each step plus the final σ (count = timesteps.count + 1).
    public private(set) var sigmas: [Float]
    public private(set) var numInferenceSteps = 0

    public let predictionType: PredictionType
    public let timestepSpacing: TimestepSpacing
    public let useKarrasSigmas: Bool
    let schedule: NoiseSchedule
    private let stepsOffset: Int
    private let karrasSigmaMin: Double?
    private let karrasSigmaMax: Double?
    private let finalSigmaIsMinimum: Bool

    /// Configures like `EulerDiscreteScheduler.from_config(config)`; absent keys take Euler's
    /// defaults (β 0.0001→0.02 "linear", "linspace" spacing, final σ "zero").
    public init(config: SchedulerConfig) throws {
        try ConfigValue.requireFalse(config.useExponentialSigmas, key: "use_exponential_sigmas", reason: "only Karras σ spacing is implemented")
        try ConfigValue.requireFalse(config.useBetaSigmas, key: "use_beta_sigmas", reason: "only Karras σ spacing is implemented")
        if let interpolation = config.interpolationType, interpolation != "linear" {
            throw SchedulerError.invalidValue(key: "interpolation_type", value: "'\(interpolation)'", valid: ["linear"])
        }
        if let type = config.timestepType, type != "discrete" {
            throw SchedulerError.invalidValue(key: "timestep_type", value: "'\(type)'", valid: ["discrete"])
        }
        let rescale = config.rescaleBetasZeroSnr ?? false
        var schedule = try NoiseSchedule(
            numTrainTimesteps: config.numTrainTimesteps ?? 1000, betaStart: config.betaStart ?? 0.0001,
            betaEnd: config.betaEnd ?? 0.02,
            schedule: try ConfigValue.parse(config.betaSchedule, key: "beta_schedule", default: .linear),
            trainedBetas: config.trainedBetas, rescaleZeroTerminalSNR: rescale)
        if rescale { schedule.clampTerminalAlphaCumprodForSigmas() }
        self.schedule = schedule
        predictionType = try ConfigValue.parse(config.predictionType, key: "prediction_type", default: .epsilon)
        timestepSpacing = try ConfigValue.parse(config.timestepSpacing, key: "timestep_spacing", default: .linspace)
        useKarrasSigmas = config.useKarrasSigmas ?? false
        stepsOffset = config.stepsOffset ?? 0
        karrasSigmaMin = config.sigmaMin
        karrasSigmaMax = config.sigmaMax
        switch config.finalSigmasType ?? "zero" {
        case "zero": finalSigmaIsMinimum = false
        case "sigma_min": finalSigmaIsMinimum = true
        case let other: throw SchedulerError.invalidValue(key: "final_sigmas_type", value: "'\(other)'", valid: ["zero", "sigma_min"])
        }
        // Before set_timesteps diffusers holds the full reversed training table plus 0.
        sigmas = schedule.trainSigmas.reversed() + [0]
    }

    public var initNoiseSigma: Float { timestepSpacing.eulerInitNoiseSigma(maxSigma: sigmas.max() ?? 0) }

    public mutating func setTimesteps(_ steps: Int) throws {
        let trainTimesteps = schedule.numTrainTimesteps
        try TimestepSpacing.validate(steps: steps, trainTimesteps: trainTimesteps)
        let floatTimesteps = timestepSpacing.eulerTimesteps(steps: steps, trainTimesteps: trainTimesteps, stepsOffset: stepsOffset)
        let trainSigmas = schedule.trainSigmas
        let table = trainSigmas.map(Double.init)
        var stepSigmas = floatTimesteps.map { NumPyEmulation.interpolateOnIntegerGrid(Double($0), table) }
        var stepTimesteps = floatTimesteps
        if useKarrasSigmas {
            let logSigmas = SigmaSchedule.logSigmas(trainSigmas)
            stepSigmas = SigmaSchedule.karras(
                sigmaMin: karrasSigmaMin ?? stepSigmas[stepSigmas.count - 1],
                sigmaMax: karrasSigmaMax ?? stepSigmas[0], count: steps)
            stepTimesteps = stepSigmas.map { Float(SigmaSchedule.sigmaToTimestep($0, logSigmas: logSigmas)) }
        }
        let finalSigma: Double = finalSigmaIsMinimum ? Double(trainSigmas[0]) : 0
        sigmas = (stepSigmas + [finalSigma]).map { Float($0) }
        timesteps = stepTimesteps
        numInferenceSteps = steps
    }

    public func scaleModelInput(_ sample: Tensor, stepIndex: Int) -> Tensor {
        EulerDiscreteScheduler.scaled(sample, sigma: sigmas[stepIndex])
    }

    /// x / √(σ² + 1): the Euler family's `scale_model_input` (shared with Euler-ancestral).
    static func scaled(_ sample: Tensor, sigma: Float) -> Tensor {
        let divisor = (sigma * sigma + 1).squareRoot()
        return SchedulerMath.map(sample) { $0 / divisor }
    }

    public mutating func step(
        modelOutput: Tensor, stepIndex: Int, sample: Tensor, random: inout TorchRandomSource, noiseWindow: NoiseWindow?
    ) -> Tensor {
        precondition(numInferenceSteps > 0, "call setTimesteps before step")
        let sigma = sigmas[stepIndex]
        let sigmaHat = sigma * 1  // σ·(γ + 1) with γ = 0 (s_churn = 0)
        let original = EulerDiscreteScheduler.predictOriginal(
            predictionType, modelOutput: modelOutput, sample: sample, sigma: sigma, sigmaHat: sigmaHat)
        let dt = sigmas[stepIndex + 1] - sigmaHat
        return SchedulerMath.map(sample, original) { x, x0 in x + ((x - x0) / sigmaHat) * dt }
    }

    /// x₀ from the model output, shared with Euler-ancestral (which passes σ̂ = σ).
    static func predictOriginal(
        _ predictionType: PredictionType, modelOutput: Tensor, sample: Tensor, sigma: Float, sigmaHat: Float
    ) -> Tensor {
        switch predictionType {
        case .epsilon:
            return SchedulerMath.map(sample, modelOutput) { x, e in x - sigmaHat * e }
        case .vPrediction:
            let squarePlusOne = sigma * sigma + 1
            let outputScale = -sigma / squarePlusOne.squareRoot()
            return SchedulerMath.map(sample, modelOutput) { x, v in v * outputScale + x / squarePlusOne }
        case .sample:
            return modelOutput
        }
    }

    public func addNoise(original: Tensor, noise: Tensor, stepIndex: Int) -> Tensor {
        let sigma = sigmas[stepIndex]
        return SchedulerMath.map(original, noise) { x, n in x + n * sigma }
    }
}
