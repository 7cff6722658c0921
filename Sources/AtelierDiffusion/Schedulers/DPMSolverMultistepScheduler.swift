import AtelierKernels
import Foundation

/// DPM-Solver / DPM-Solver++ multistep (Lu et al. 2022), reproducing diffusers
/// `DPMSolverMultistepScheduler` (`schedulers/scheduling_dpmsolver_multistep.py`; SD2-SPEC §5.8).
/// "DPM++ 2M" is the default configuration; "DPM++ 2M Karras" adds `use_karras_sigmas`.
///
/// - Timesteps: "linspace" = `linspace(0, T−1, N+1).round()[::-1][:-1]` (integers); σ = σ_train[t]
///   plus a final 0. Karras: σ from the Karras ramp between σ_train[0] and σ_train[T−1]; the UNet gets
///   `round(_sigma_to_t(σ))` while the solver integrates with the unrounded σ.
/// - α_t = 1/√(σ²+1), σ_t = σ·α_t, λ = ln α_t − ln σ_t, all float32 0-d tensors in diffusers.
/// - The model output is converted to x₀ (dpmsolver++) or ε (dpmsolver) and kept for the
///   multistep formula; the first step and (with final σ = 0) the last step are first order. At
///   σ = 0, λ = +∞ and e^{−h} = 0 fall out of IEEE arithmetic, giving x_next = x₀ exactly.
///
/// torch evaluates `sqrt`/`log`/`exp` of these scalars with MKL's VML, which is within an ulp of
/// the correctly rounded value used here but not always equal (for `sqrt`, ~0.6 % of inputs come
/// out 1 ulp low); a step coefficient can therefore differ from diffusers' by an ulp (≈1e-7
/// relative). The parity fixtures are otherwise bit-identical.
public struct DPMSolverMultistepScheduler: Scheduler {
    /// `algorithm_type` values implemented here (the SDE variants are not).
    public enum Algorithm: String, Sendable, CaseIterable {
        case dpmSolverPlusPlus = "dpmsolver++"
        case dpmSolver = "dpmsolver"
    }

    /// `solver_type` for second order.
    public enum SolverType: String, Sendable, CaseIterable {
        case midpoint
        case heun
    }

    public let className = "DPMSolverMultistepScheduler"
    public let order = 1
    public let initNoiseSigma: Float = 1
    public private(set) var timesteps: [Float] = []
    /// σ for each step plus the final σ (count = timesteps.count + 1).
    public private(set) var sigmas: [Float] = []
    public private(set) var numInferenceSteps = 0

    public let predictionType: PredictionType
    public let timestepSpacing: TimestepSpacing
    public let useKarrasSigmas: Bool
    public let solverOrder: Int
    public let algorithm: Algorithm
    public let solverType: SolverType
    let schedule: NoiseSchedule
    private let stepsOffset: Int
    private let lowerOrderFinal: Bool
    private let eulerAtFinal: Bool
    private let finalSigmaIsZero: Bool
    private let lambdaMinClipped: Double
    private let isCosineSchedule: Bool

    /// The converted model outputs of the last `solverOrder` steps, oldest first.
    private var modelOutputs: [Tensor?] = []
    private var lowerOrderCount = 0

    /// Configures like `DPMSolverMultistepScheduler.from_config(config)`; absent keys take its
    /// defaults (β 0.0001→0.02 "linear", order 2, "dpmsolver++", "midpoint", lower_order_final,
    /// final σ "zero", "linspace" spacing).
    public init(config: SchedulerConfig) throws {
        try ConfigValue.requireFalse(config.thresholding, key: "thresholding", reason: "dynamic thresholding is not implemented (it is unsuitable for latent diffusion)")
        try ConfigValue.requireFalse(config.useExponentialSigmas, key: "use_exponential_sigmas", reason: "only Karras σ spacing is implemented")
        try ConfigValue.requireFalse(config.useBetaSigmas, key: "use_beta_sigmas", reason: "only Karras σ spacing is implemented")
        try ConfigValue.requireFalse(config.useLuLambdas, key: "use_lu_lambdas", reason: "only Karras σ spacing is implemented")
        try ConfigValue.requireFalse(config.useFlowSigmas, key: "use_flow_sigmas", reason: "flow-matching σ are not implemented")
        if let variance = config.varianceType {
            throw SchedulerError.unsupportedOption(key: "variance_type", value: "'\(variance)'", reason: "learned-variance models are not supported; remove the key or set it to null")
        }
        let rescale = config.rescaleBetasZeroSnr ?? false
        let betaSchedule: BetaSchedule = try ConfigValue.parse(config.betaSchedule, key: "beta_schedule", default: .linear)
        var schedule = try NoiseSchedule(
            numTrainTimesteps: config.numTrainTimesteps ?? 1000, betaStart: config.betaStart ?? 0.0001,
            betaEnd: config.betaEnd ?? 0.02, schedule: betaSchedule,
            trainedBetas: config.trainedBetas, rescaleZeroTerminalSNR: rescale)
        if rescale { schedule.clampTerminalAlphaCumprodForSigmas() }
        self.schedule = schedule
        isCosineSchedule = betaSchedule == .squaredcosCapV2  // diffusers tests the config key only
        predictionType = try ConfigValue.parse(config.predictionType, key: "prediction_type", default: .epsilon)
        timestepSpacing = try ConfigValue.parse(config.timestepSpacing, key: "timestep_spacing", default: .linspace)
        useKarrasSigmas = config.useKarrasSigmas ?? false
        stepsOffset = config.stepsOffset ?? 0
        lowerOrderFinal = config.lowerOrderFinal ?? true
        eulerAtFinal = config.eulerAtFinal ?? false
        lambdaMinClipped = config.lambdaMinClipped ?? -Double.infinity

        let order = config.solverOrder ?? 2
        guard (1...3).contains(order) else {
            throw SchedulerError.invalidValue(key: "solver_order", value: String(order), valid: ["1", "2", "3"])
        }
        solverOrder = order
        // diffusers rewrites "deis" to "dpmsolver++" and the UniPC solver types to "midpoint".
        var algorithmName = config.algorithmType ?? "dpmsolver++"
        if algorithmName == "deis" { algorithmName = "dpmsolver++" }
        if algorithmName == "sde-dpmsolver++" || algorithmName == "sde-dpmsolver" {
            throw SchedulerError.unsupportedOption(key: "algorithm_type", value: "'\(algorithmName)'", reason: "the SDE variants are not implemented; use 'dpmsolver++' or 'dpmsolver'")
        }
        algorithm = try ConfigValue.parse(algorithmName, key: "algorithm_type", default: .dpmSolverPlusPlus)
        var solverName = config.solverType ?? "midpoint"
        if ["logrho", "bh1", "bh2"].contains(solverName) { solverName = "midpoint" }
        solverType = try ConfigValue.parse(solverName, key: "solver_type", default: .midpoint)
        switch config.finalSigmasType ?? "zero" {
        case "zero": finalSigmaIsZero = true
        case "sigma_min": finalSigmaIsZero = false
        case let other: throw SchedulerError.invalidValue(key: "final_sigmas_type", value: "'\(other)'", valid: ["zero", "sigma_min"])
        }
        if algorithm == .dpmSolver && finalSigmaIsZero {
            throw SchedulerError.unsupportedOption(key: "final_sigmas_type", value: "'zero'", reason: "algorithm_type 'dpmsolver' needs final_sigmas_type 'sigma_min' (as in diffusers)")
        }
    }

    public mutating func setTimesteps(_ steps: Int) throws {
        let trainTimesteps = schedule.numTrainTimesteps
        try TimestepSpacing.validate(steps: steps, trainTimesteps: trainTimesteps)
        let trainSigmas = schedule.trainSigmas
        let lastTimestep = trainTimesteps - clippedTimestepCount()
        var integerTimesteps: [Int]
        switch timestepSpacing {
        case .linspace:
            integerTimesteps = Array(NumPyEmulation.linspace(0, Double(lastTimestep - 1), count: steps + 1)
                .map { Int(NumPyEmulation.round($0)) }.reversed().dropLast())
        case .leading:
            let ratio = lastTimestep / (steps + 1)
            integerTimesteps = Array((0...steps).reversed().map { $0 * ratio }.dropLast()).map { $0 + stepsOffset }
        case .trailing:
            let ratio = Double(trainTimesteps) / Double(steps)
            integerTimesteps = NumPyEmulation.arange(Double(lastTimestep), 0, step: -ratio)
                .map { Int(NumPyEmulation.round($0)) - 1 }
        }
        var stepSigmas: [Double]
        if useKarrasSigmas {
            let logSigmas = SigmaSchedule.logSigmas(trainSigmas)
            // in_sigmas is the flipped table: σ_min = σ_train[0], σ_max = σ_train[T−1].
            stepSigmas = SigmaSchedule.karras(
                sigmaMin: Double(trainSigmas[0]), sigmaMax: Double(trainSigmas[trainSigmas.count - 1]), count: steps)
            let fractional = stepSigmas.map { SigmaSchedule.sigmaToTimestep($0, logSigmas: logSigmas) }
            integerTimesteps = fractional.map { Int(isCosineSchedule ? $0 : NumPyEmulation.round($0)) }
        } else {
            let table = trainSigmas.map(Double.init)
            stepSigmas = integerTimesteps.map { NumPyEmulation.interpolateOnIntegerGrid(Double($0), table) }
        }
        let finalSigma: Double = finalSigmaIsZero ? 0 : Double(trainSigmas[0])
        sigmas = (stepSigmas + [finalSigma]).map { Float($0) }
        timesteps = integerTimesteps.map(Float.init)
        numInferenceSteps = steps
        modelOutputs = Array(repeating: nil, count: solverOrder)
        lowerOrderCount = 0
    }

    /// `searchsorted(flip(λ_train), lambda_min_clipped)`: how many of the noisiest training
    /// timesteps are cut off (0 for the default −∞).
    private func clippedTimestepCount() -> Int {
        guard lambdaMinClipped > -Double.infinity else { return 0 }
        let threshold = Float(lambdaMinClipped)
        let lambdas = schedule.alphasCumprod.map { alphaProd -> Float in
            let alpha = alphaProd.squareRoot(), sigma = (1 - alphaProd).squareRoot()
            return Self.log(alpha) - Self.log(sigma)
        }
        // λ decreases with t; flipped it increases. searchsorted (left) = count of values < threshold.
        return lambdas.reversed().prefix { $0 < threshold }.count
    }

    public func scaleModelInput(_ sample: Tensor, stepIndex: Int) -> Tensor { sample }

    public mutating func step(
        modelOutput: Tensor, stepIndex: Int, sample: Tensor, random: inout TorchRandomSource, noiseWindow: NoiseWindow?
    ) -> Tensor {
        precondition(numInferenceSteps > 0, "call setTimesteps before step")
        let stepCount = timesteps.count
        let isLast = stepIndex == stepCount - 1
        let lowerOrderFinalStep = isLast && (eulerAtFinal || (lowerOrderFinal && stepCount < 15) || finalSigmaIsZero)
        let lowerOrderSecondStep = stepIndex == stepCount - 2 && lowerOrderFinal && stepCount < 15

        let converted = convertModelOutput(modelOutput, sample: sample, stepIndex: stepIndex)
        for i in 0..<(solverOrder - 1) { modelOutputs[i] = modelOutputs[i + 1] }
        modelOutputs[solverOrder - 1] = converted

        let previous: Tensor
        if solverOrder == 1 || lowerOrderCount < 1 || lowerOrderFinalStep {
            previous = firstOrderUpdate(converted, sample: sample, stepIndex: stepIndex)
        } else if solverOrder == 2 || lowerOrderCount < 2 || lowerOrderSecondStep {
            previous = secondOrderUpdate(sample: sample, stepIndex: stepIndex)
        } else {
            previous = thirdOrderUpdate(sample: sample, stepIndex: stepIndex)
        }
        if lowerOrderCount < solverOrder { lowerOrderCount += 1 }
        return previous
    }

    public func addNoise(original: Tensor, noise: Tensor, stepIndex: Int) -> Tensor {
        let (alpha, sigma) = Self.alphaSigma(sigmas[stepIndex])
        return SchedulerMath.map(original, noise) { x, n in alpha * x + sigma * n }
    }

    // MARK: - diffusers' solver pieces (float32 scalar coefficients, element-wise tensors)

    /// `_sigma_to_alpha_sigma_t`: α_t = 1/√(σ²+1) (torch: reciprocal then ·1), σ_t = σ·α_t.
    static func alphaSigma(_ sigma: Float) -> (alpha: Float, sigma: Float) {
        let alpha = 1 / (sigma * sigma + 1).squareRoot()
        return (alpha, sigma * alpha)
    }

    /// λ = ln α − ln σ (+∞ at σ = 0).
    private static func lambda(alpha: Float, sigma: Float) -> Float { log(alpha) - log(sigma) }

    /// Correctly rounded float32 `log`/`exp` (torch uses MKL VML; see the type's note).
    static func log(_ x: Float) -> Float { Float(Foundation.log(Double(x))) }
    static func exp(_ x: Float) -> Float { Float(Foundation.exp(Double(x))) }

    /// `convert_model_output`: x₀ for dpmsolver++, ε for dpmsolver.
    private func convertModelOutput(_ modelOutput: Tensor, sample: Tensor, stepIndex: Int) -> Tensor {
        let (alpha, sigma) = Self.alphaSigma(sigmas[stepIndex])
        switch (algorithm, predictionType) {
        case (.dpmSolverPlusPlus, .epsilon):
            return SchedulerMath.map(sample, modelOutput) { x, e in (x - sigma * e) / alpha }
        case (.dpmSolverPlusPlus, .sample):
            return modelOutput
        case (.dpmSolverPlusPlus, .vPrediction):
            return SchedulerMath.map(sample, modelOutput) { x, v in alpha * x - sigma * v }
        case (.dpmSolver, .epsilon):
            return modelOutput
        case (.dpmSolver, .sample):
            return SchedulerMath.map(sample, modelOutput) { x, x0 in (x - alpha * x0) / sigma }
        case (.dpmSolver, .vPrediction):
            return SchedulerMath.map(sample, modelOutput) { x, v in alpha * v + sigma * x }
        }
    }

    /// `dpm_solver_first_order_update` (DDIM-equivalent step).
    private func firstOrderUpdate(_ m: Tensor, sample: Tensor, stepIndex: Int) -> Tensor {
        let (alphaT, sigmaT) = Self.alphaSigma(sigmas[stepIndex + 1])
        let (alphaS, sigmaS) = Self.alphaSigma(sigmas[stepIndex])
        let h = Self.lambda(alpha: alphaT, sigma: sigmaT) - Self.lambda(alpha: alphaS, sigma: sigmaS)
        switch algorithm {
        case .dpmSolverPlusPlus:
            let a = sigmaT / sigmaS
            let b = alphaT * (Self.exp(-h) - 1.0)
            return SchedulerMath.map(sample, m) { x, x0 in a * x - b * x0 }
        case .dpmSolver:
            let a = alphaT / alphaS
            let b = sigmaT * (Self.exp(h) - 1.0)
            return SchedulerMath.map(sample, m) { x, e in a * x - b * e }
        }
    }

    /// `multistep_dpm_solver_second_order_update`.
    private func secondOrderUpdate(sample: Tensor, stepIndex: Int) -> Tensor {
        guard let m0 = modelOutputs[solverOrder - 1], let m1 = modelOutputs[solverOrder - 2] else {
            preconditionFailure("second-order DPM step without two stored model outputs")
        }
        let (alphaT, sigmaT) = Self.alphaSigma(sigmas[stepIndex + 1])
        let (alphaS0, sigmaS0) = Self.alphaSigma(sigmas[stepIndex])
        let (alphaS1, sigmaS1) = Self.alphaSigma(sigmas[stepIndex - 1])
        let lambdaT = Self.lambda(alpha: alphaT, sigma: sigmaT)
        let lambdaS0 = Self.lambda(alpha: alphaS0, sigma: sigmaS0)
        let lambdaS1 = Self.lambda(alpha: alphaS1, sigma: sigmaS1)
        let h = lambdaT - lambdaS0
        let h0 = lambdaS0 - lambdaS1
        let r0 = h0 / h
        let d1Scale = 1 / r0 * 1.0  // torch: reciprocal(r0) * 1.0
        switch (algorithm, solverType) {
        case (.dpmSolverPlusPlus, .midpoint):
            let a = sigmaT / sigmaS0
            let b = alphaT * (Self.exp(-h) - 1.0)
            let c = 0.5 * b
            return SchedulerMath.map(sample, m0, m1) { x, d0, p1 in
                (a * x - b * d0) - c * (d1Scale * (d0 - p1))
            }
        case (.dpmSolverPlusPlus, .heun):
            let a = sigmaT / sigmaS0
            let b = alphaT * (Self.exp(-h) - 1.0)
            let c = alphaT * ((Self.exp(-h) - 1.0) / h + 1.0)
            return SchedulerMath.map(sample, m0, m1) { x, d0, p1 in
                (a * x - b * d0) + c * (d1Scale * (d0 - p1))
            }
        case (.dpmSolver, .midpoint):
            let a = alphaT / alphaS0
            let b = sigmaT * (Self.exp(h) - 1.0)
            let c = 0.5 * b
            return SchedulerMath.map(sample, m0, m1) { x, d0, p1 in
                (a * x - b * d0) - c * (d1Scale * (d0 - p1))
            }
        case (.dpmSolver, .heun):
            let a = alphaT / alphaS0
            let b = sigmaT * (Self.exp(h) - 1.0)
            let c = sigmaT * ((Self.exp(h) - 1.0) / h - 1.0)
            return SchedulerMath.map(sample, m0, m1) { x, d0, p1 in
                (a * x - b * d0) - c * (d1Scale * (d0 - p1))
            }
        }
    }

    /// `multistep_dpm_solver_third_order_update`.
    private func thirdOrderUpdate(sample: Tensor, stepIndex: Int) -> Tensor {
        guard let m0 = modelOutputs[2], let m1 = modelOutputs[1], let m2 = modelOutputs[0] else {
            preconditionFailure("third-order DPM step without three stored model outputs")
        }
        let (alphaT, sigmaT) = Self.alphaSigma(sigmas[stepIndex + 1])
        let (alphaS0, sigmaS0) = Self.alphaSigma(sigmas[stepIndex])
        let (alphaS1, sigmaS1) = Self.alphaSigma(sigmas[stepIndex - 1])
        let (alphaS2, sigmaS2) = Self.alphaSigma(sigmas[stepIndex - 2])
        let lambdaT = Self.lambda(alpha: alphaT, sigma: sigmaT)
        let lambdaS0 = Self.lambda(alpha: alphaS0, sigma: sigmaS0)
        let lambdaS1 = Self.lambda(alpha: alphaS1, sigma: sigmaS1)
        let lambdaS2 = Self.lambda(alpha: alphaS2, sigma: sigmaS2)
        let h = lambdaT - lambdaS0, h0 = lambdaS0 - lambdaS1, h1 = lambdaS1 - lambdaS2
        let r0 = h0 / h, r1 = h1 / h
        let scale10 = 1 / r0 * 1.0, scale11 = 1 / r1 * 1.0
        let mix = r0 / (r0 + r1)
        let scale2 = 1 / (r0 + r1) * 1.0
        // D1_0 = (1/r0)(m0 − m1), D1_1 = (1/r1)(m1 − m2), D1 = D1_0 + r0/(r0+r1)·(D1_0 − D1_1),
        // D2 = 1/(r0+r1)·(D1_0 − D1_1).
        let a: Float, b: Float, c: Float, d: Float
        switch algorithm {
        case .dpmSolverPlusPlus:
            a = sigmaT / sigmaS0
            b = alphaT * (Self.exp(-h) - 1.0)
            c = alphaT * ((Self.exp(-h) - 1.0) / h + 1.0)
            d = alphaT * ((Self.exp(-h) - 1.0 + h) / (h * h) - 0.5)
            return SchedulerMath.map(sample, m0, m1, m2) { x, p0, p1, p2 in
                let d10 = scale10 * (p0 - p1), d11 = scale11 * (p1 - p2)
                let d1 = d10 + mix * (d10 - d11), d2 = scale2 * (d10 - d11)
                return ((a * x - b * p0) + c * d1) - d * d2
            }
        case .dpmSolver:
            a = alphaT / alphaS0
            b = sigmaT * (Self.exp(h) - 1.0)
            c = sigmaT * ((Self.exp(h) - 1.0) / h - 1.0)
            d = sigmaT * ((Self.exp(h) - 1.0 - h) / (h * h) - 0.5)
            return SchedulerMath.map(sample, m0, m1, m2) { x, p0, p1, p2 in
                let d10 = scale10 * (p0 - p1), d11 = scale11 * (p1 - p2)
                let d1 = d10 + mix * (d10 - d11), d2 = scale2 * (d10 - d11)
                return ((a * x - b * p0) - c * d1) - d * d2
            }
        }
    }
}
