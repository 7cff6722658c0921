import AtelierKernels

/// Ancestral Euler ("Euler a"), reproducing diffusers `EulerAncestralDiscreteScheduler`
/// (`schedulers/scheduling_euler_ancestral_discrete.py`; SD2-SPEC §5.7).
///
/// Same σ table, `init_noise_sigma` and input scaling as `EulerDiscreteScheduler`. Each step goes
/// deterministically down to σ_down and adds fresh noise of size σ_up:
/// σ_up = √(σ_next²(σ² − σ_next²)/σ²), σ_down = √(σ_next² − σ_up²),
/// x_next = x + (x − x₀)/σ·(σ_down − σ) + randn·σ_up — one `randn` per step, the last included.
public struct EulerAncestralDiscreteScheduler: Scheduler {
    public let className = "EulerAncestralDiscreteScheduler"
    public let order = 1
    public private(set) var timesteps: [Float] = []
    /// σ for each step plus the final 0 (count = timesteps.count + 1).
    public private(set) var sigmas: [Float]
    public private(set) var numInferenceSteps = 0

    public let predictionType: PredictionType
    public let timestepSpacing: TimestepSpacing
    let schedule: NoiseSchedule
    private let stepsOffset: Int

    /// Configures like `EulerAncestralDiscreteScheduler.from_config(config)`; absent keys take its
    /// defaults (β 0.0001→0.02 "linear", "linspace" spacing). It has no Karras option.
    public init(config: SchedulerConfig) throws {
        let rescale = config.rescaleBetasZeroSnr ?? false
        var schedule = try NoiseSchedule(
            numTrainTimesteps: config.numTrainTimesteps ?? 1000, betaStart: config.betaStart ?? 0.0001,
            betaEnd: config.betaEnd ?? 0.02,
            schedule: try ConfigValue.parse(config.betaSchedule, key: "beta_schedule", default: .linear),
            trainedBetas: config.trainedBetas, rescaleZeroTerminalSNR: rescale)
        if rescale { schedule.clampTerminalAlphaCumprodForSigmas() }
        self.schedule = schedule
        predictionType = try ConfigValue.parse(
            config.predictionType, key: "prediction_type", default: .epsilon, allowed: [.epsilon, .vPrediction])
        timestepSpacing = try ConfigValue.parse(config.timestepSpacing, key: "timestep_spacing", default: .linspace)
        stepsOffset = config.stepsOffset ?? 0
        sigmas = schedule.trainSigmas.reversed() + [0]
    }

    public var initNoiseSigma: Float { timestepSpacing.eulerInitNoiseSigma(maxSigma: sigmas.max() ?? 0) }

    public mutating func setTimesteps(_ steps: Int) throws {
        let trainTimesteps = schedule.numTrainTimesteps
        try TimestepSpacing.validate(steps: steps, trainTimesteps: trainTimesteps)
        let floatTimesteps = timestepSpacing.eulerTimesteps(steps: steps, trainTimesteps: trainTimesteps, stepsOffset: stepsOffset)
        let table = schedule.trainSigmas.map(Double.init)
        sigmas = floatTimesteps.map { Float(NumPyEmulation.interpolateOnIntegerGrid(Double($0), table)) } + [0]
        timesteps = floatTimesteps
        numInferenceSteps = steps
    }

    public func scaleModelInput(_ sample: Tensor, stepIndex: Int) -> Tensor {
        EulerDiscreteScheduler.scaled(sample, sigma: sigmas[stepIndex])
    }

    public mutating func step(
        modelOutput: Tensor, stepIndex: Int, sample: Tensor, random: inout TorchRandomSource, noiseWindow: NoiseWindow?
    ) -> Tensor {
        precondition(numInferenceSteps > 0, "call setTimesteps before step")
        let sigma = sigmas[stepIndex]
        let original = EulerDiscreteScheduler.predictOriginal(
            predictionType, modelOutput: modelOutput, sample: sample, sigma: sigma, sigmaHat: sigma)
        let sigmaFrom = sigma
        let sigmaTo = sigmas[stepIndex + 1]
        let sigmaUp = (((sigmaTo * sigmaTo) * (sigmaFrom * sigmaFrom - sigmaTo * sigmaTo)) / (sigmaFrom * sigmaFrom)).squareRoot()
        let sigmaDown = (sigmaTo * sigmaTo - sigmaUp * sigmaUp).squareRoot()
        let dt = sigmaDown - sigma
        let noise = random.normal(shape: modelOutput.shape, window: noiseWindow)
        return SchedulerMath.map(sample, original, noise) { x, x0, n in
            (x + ((x - x0) / sigma) * dt) + n * sigmaUp
        }
    }

    public func addNoise(original: Tensor, noise: Tensor, stepIndex: Int) -> Tensor {
        let sigma = sigmas[stepIndex]
        return SchedulerMath.map(original, noise) { x, n in x + n * sigma }
    }
}
