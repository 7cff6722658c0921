import AtelierKernels

/// Pseudo numerical methods (PNDM / PLMS, Liu et al. 2022), reproducing diffusers `PNDMScheduler`
/// (`schedulers/scheduling_pndm.py`). The default of the SD2 512 models (SD2-SPEC §5.5).
///
/// With `skip_prk_steps` (all official SD2 configs) the run list is `[…, t₂, t₁, t₁, t₀]` reversed —
/// the second timestep twice, so **N+1 UNet calls** — and PLMS combines the last ≤4 ε predictions
/// (Adams–Bashforth). The second call is a Heun-like redo of the first step. Without
/// `skip_prk_steps`, the first 12 calls are the 4th-order Runge–Kutta warm-up of the paper.
/// The step counter is internal (as in diffusers), so an img2img run starting at a later index
/// still begins with the single-history first step.
public struct PNDMScheduler: Scheduler {
    public let className = "PNDMScheduler"
    public let order = 1
    public let initNoiseSigma: Float = 1
    public private(set) var timesteps: [Float] = []
    public private(set) var numInferenceSteps = 0

    public let predictionType: PredictionType
    public let timestepSpacing: TimestepSpacing
    public let skipPrkSteps: Bool
    let schedule: NoiseSchedule
    private let stepsOffset: Int
    private let finalAlphaCumprod: Float

    private var stepTimesteps: [Int] = []
    private var prkTimesteps: [Int] = []
    private var counter = 0
    private var ets: [Tensor] = []
    private var currentSample: Tensor?
    /// `cur_model_output`, the running RK combination; nil stands for the integer 0 diffusers uses.
    private var currentModelOutput: Tensor?

    /// Configures like `PNDMScheduler.from_config(config)`; absent keys take PNDM's defaults
    /// (β 0.0001→0.02 "linear", `skip_prk_steps` false, `set_alpha_to_one` **false**, "leading").
    /// PNDM has no `clip_sample`, `thresholding` or `rescale_betas_zero_snr` (ignored, as diffusers).
    public init(config: SchedulerConfig) throws {
        schedule = try NoiseSchedule(
            numTrainTimesteps: config.numTrainTimesteps ?? 1000, betaStart: config.betaStart ?? 0.0001,
            betaEnd: config.betaEnd ?? 0.02,
            schedule: try ConfigValue.parse(config.betaSchedule, key: "beta_schedule", default: .linear),
            trainedBetas: config.trainedBetas, rescaleZeroTerminalSNR: false)
        predictionType = try ConfigValue.parse(
            config.predictionType, key: "prediction_type", default: .epsilon, allowed: [.epsilon, .vPrediction])
        timestepSpacing = try ConfigValue.parse(config.timestepSpacing, key: "timestep_spacing", default: .leading)
        skipPrkSteps = config.skipPrkSteps ?? false
        stepsOffset = config.stepsOffset ?? 0
        finalAlphaCumprod = (config.setAlphaToOne ?? false) ? 1 : schedule.alphasCumprod[0]
    }

    private var stepRatio: Int { schedule.numTrainTimesteps / numInferenceSteps }

    public mutating func setTimesteps(_ steps: Int) throws {
        let trainTimesteps = schedule.numTrainTimesteps
        try TimestepSpacing.validate(steps: steps, trainTimesteps: trainTimesteps)
        let ascending = Array(timestepSpacing.descendingTimesteps(
            steps: steps, trainTimesteps: trainTimesteps, stepsOffset: stepsOffset).reversed())
        let prk: [Int]
        let plms: [Int]
        if skipPrkSteps {
            prk = []
            // concatenate([_t[:-1], _t[-2:-1], _t[-1:]])[::-1]
            plms = Array((ascending.dropLast() + ascending.dropLast().suffix(1) + ascending.suffix(1)).reversed())
        } else {
            // repeat(_t[-4:], 2) + tile([0, T//N//2], 4), then [:-1].repeat(2)[1:-1] reversed.
            // With fewer than 4 steps the two arrays differ in length and NumPy refuses to add
            // them (diffusers raises ValueError), so there is no warm-up to reproduce.
            guard steps >= 4 else {
                throw SchedulerError.invalidStepCount(steps, reason: "PNDM's Runge–Kutta warm-up (skip_prk_steps false, the PNDM default this config leaves in place) needs at least 4 steps, as in diffusers; use --steps 4 or more or another scheduler")
            }
            let half = trainTimesteps / steps / 2
            let lastFour = ascending.suffix(4)
            let paired = lastFour.flatMap { [$0, $0 + half] }
            let doubled = paired.dropLast().flatMap { [$0, $0] }
            prk = Array(doubled.dropFirst().dropLast().reversed())
            // Warm-up timesteps past the table (e.g. 1000 at 1000 steps) read ᾱ[T−1], as
            // `NoiseSchedule.alphaCumprod(atTimestep:)` explains.
            plms = Array(ascending.dropLast(3).reversed())
        }
        numInferenceSteps = steps
        prkTimesteps = prk
        stepTimesteps = prk + plms
        timesteps = stepTimesteps.map(Float.init)
        counter = 0
        ets = []
        currentSample = nil
        currentModelOutput = nil
    }

    public func scaleModelInput(_ sample: Tensor, stepIndex: Int) -> Tensor { sample }

    public mutating func step(
        modelOutput: Tensor, stepIndex: Int, sample: Tensor, random: inout TorchRandomSource, noiseWindow: NoiseWindow?
    ) -> Tensor {
        precondition(numInferenceSteps > 0, "call setTimesteps before step")
        let timestep = stepTimesteps[stepIndex]
        if counter < prkTimesteps.count && !skipPrkSteps {
            return stepRungeKutta(modelOutput: modelOutput, timestep: timestep, sample: sample)
        }
        return stepLinearMultistep(modelOutput: modelOutput, timestep: timestep, sample: sample)
    }

    /// `step_prk`: one of the four RK sub-steps; the combination (1/6, 1/3, 1/3, 1/6) is used on
    /// the fourth.
    private mutating func stepRungeKutta(modelOutput: Tensor, timestep: Int, sample: Tensor) -> Tensor {
        let diffToPrevious = counter % 2 != 0 ? 0 : schedule.numTrainTimesteps / numInferenceSteps / 2
        let previousTimestep = timestep - diffToPrevious
        let baseTimestep = prkTimesteps[counter / 4 * 4]
        let sixth = Float(1.0 / 6.0), third = Float(1.0 / 3.0)
        var output = modelOutput
        switch counter % 4 {
        case 0:
            currentModelOutput = accumulate(currentModelOutput, modelOutput, weight: sixth)
            ets.append(modelOutput)
            currentSample = sample
        case 1, 2:
            currentModelOutput = accumulate(currentModelOutput, modelOutput, weight: third)
        default:
            output = accumulate(currentModelOutput, modelOutput, weight: sixth)
            currentModelOutput = nil
        }
        let base = currentSample ?? sample
        let previous = previousSample(base, timestep: baseTimestep, previousTimestep: previousTimestep, modelOutput: output)
        counter += 1
        return previous
    }

    /// `cur + weight·m`, where a nil `cur` is diffusers' integer 0.
    private func accumulate(_ current: Tensor?, _ modelOutput: Tensor, weight: Float) -> Tensor {
        guard let current else { return SchedulerMath.map(modelOutput) { 0 + weight * $0 } }
        return SchedulerMath.map(current, modelOutput) { c, m in c + weight * m }
    }

    /// `step_plms`: Adams–Bashforth combination of the stored ε predictions.
    private mutating func stepLinearMultistep(modelOutput: Tensor, timestep: Int, sample: Tensor) -> Tensor {
        var timestep = timestep
        var previousTimestep = timestep - stepRatio
        if counter != 1 {
            ets = Array(ets.suffix(3))
            ets.append(modelOutput)
        } else {
            previousTimestep = timestep
            timestep = timestep + stepRatio
        }
        var sample = sample
        let combined: Tensor
        let n = ets.count
        if n == 1 && counter == 0 {
            combined = modelOutput
            currentSample = sample
        } else if n == 1 && counter == 1 {
            combined = SchedulerMath.map(modelOutput, ets[n - 1]) { m, e in (m + e) / 2 }
            if let stored = currentSample { sample = stored }
            currentSample = nil
        } else if n == 2 {
            combined = SchedulerMath.map(ets[n - 1], ets[n - 2]) { e1, e2 in (3 * e1 - e2) / 2 }
        } else if n == 3 {
            combined = SchedulerMath.map(ets[n - 1], ets[n - 2], ets[n - 3]) { e1, e2, e3 in
                ((23 * e1 - 16 * e2) + 5 * e3) / 12
            }
        } else {
            let factor = Float(1.0 / 24.0)
            combined = SchedulerMath.map(ets[n - 1], ets[n - 2], ets[n - 3], ets[n - 4]) { e1, e2, e3, e4 in
                factor * (((55 * e1 - 59 * e2) + 37 * e3) - 9 * e4)
            }
        }
        let previous = previousSample(sample, timestep: timestep, previousTimestep: previousTimestep, modelOutput: combined)
        counter += 1
        return previous
    }

    /// `_get_prev_sample` (formula (9) of the PNDM paper):
    /// x_prev = √(ᾱ_p/ᾱ_t)·x − (ᾱ_p − ᾱ_t)·ε / (ᾱ_t·√(1−ᾱ_p) + √(ᾱ_t(1−ᾱ_t)ᾱ_p)).
    private func previousSample(_ sample: Tensor, timestep: Int, previousTimestep: Int, modelOutput: Tensor) -> Tensor {
        let alphaProd = schedule.alphaCumprod(atTimestep: timestep)
        let alphaProdPrev = previousTimestep >= 0 ? schedule.alphaCumprod(atTimestep: previousTimestep) : finalAlphaCumprod
        let betaProd = 1 - alphaProd
        let betaProdPrev = 1 - alphaProdPrev
        var epsilon = modelOutput
        if predictionType == .vPrediction {
            let sqrtAlpha = alphaProd.squareRoot(), sqrtBeta = betaProd.squareRoot()
            epsilon = SchedulerMath.map(modelOutput, sample) { v, x in sqrtAlpha * v + sqrtBeta * x }
        }
        let sampleCoefficient = (alphaProdPrev / alphaProd).squareRoot()
        let denominator = alphaProd * betaProdPrev.squareRoot() + ((alphaProd * betaProd) * alphaProdPrev).squareRoot()
        let difference = alphaProdPrev - alphaProd
        return SchedulerMath.map(sample, epsilon) { x, e in sampleCoefficient * x - (difference * e) / denominator }
    }

    public func addNoise(original: Tensor, noise: Tensor, stepIndex: Int) -> Tensor {
        schedule.addNoise(original: original, noise: noise, timestep: stepTimesteps[stepIndex])
    }

    /// `add_noise` at an explicit training timestep (0 ≤ t < num_train_timesteps).
    public func addNoise(original: Tensor, noise: Tensor, trainTimestep: Int) -> Tensor {
        schedule.addNoise(original: original, noise: noise, timestep: trainTimestep)
    }
}
