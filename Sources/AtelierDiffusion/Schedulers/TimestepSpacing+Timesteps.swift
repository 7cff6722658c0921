/// The integer timestep lists of diffusers' `set_timesteps`, per spacing (SD2-SPEC §5.3), in NumPy
/// float64 arithmetic where diffusers uses it (`np.linspace(...).round()` rounds half to even).
extension TimestepSpacing {
    /// DDIM/DDPM (and, reversed, PNDM): N descending integer timesteps.
    /// - linspace: `linspace(0, T−1, N).round()[::-1]`
    /// - leading: `(arange(N)·(T // N))[::-1] + steps_offset`
    /// - trailing: `round(arange(T, 0, −T/N)) − 1`
    func descendingTimesteps(steps: Int, trainTimesteps: Int, stepsOffset: Int) -> [Int] {
        switch self {
        case .linspace:
            return NumPyEmulation.linspace(0, Double(trainTimesteps - 1), count: steps)
                .map { Int(NumPyEmulation.round($0)) }.reversed()
        case .leading:
            let ratio = trainTimesteps / steps
            return (0..<steps).reversed().map { $0 * ratio + stepsOffset }
        case .trailing:
            let ratio = Double(trainTimesteps) / Double(steps)
            return NumPyEmulation.arange(Double(trainTimesteps), 0, step: -ratio)
                .map { Int(NumPyEmulation.round($0)) - 1 }
        }
    }

    /// Validates a step count the way DDIM/DDPM do (`num_inference_steps` ≤ `num_train_timesteps`),
    /// applied to every scheduler because larger counts produce repeated or negative timesteps.
    static func validate(steps: Int, trainTimesteps: Int) throws {
        guard steps >= 1 else { throw SchedulerError.invalidStepCount(steps, reason: "at least 1 step is needed") }
        guard steps <= trainTimesteps else {
            throw SchedulerError.invalidStepCount(steps, reason: "the model was trained with \(trainTimesteps) timesteps, so at most \(trainTimesteps) steps are possible")
        }
    }
}

extension TimestepSpacing {
    /// The fractional float32 timesteps of the Euler family (`EulerDiscreteScheduler` and
    /// `EulerAncestralDiscreteScheduler.set_timesteps`, which share this code in diffusers too).
    func eulerTimesteps(steps: Int, trainTimesteps: Int, stepsOffset: Int) -> [Float] {
        switch self {
        case .linspace:
            return NumPyEmulation.linspace(0, Double(trainTimesteps - 1), count: steps).map { Float($0) }.reversed()
        case .leading:
            let ratio = trainTimesteps / steps
            return (0..<steps).reversed().map { Float($0 * ratio) + Float(stepsOffset) }
        case .trailing:
            let ratio = Double(trainTimesteps) / Double(steps)
            return NumPyEmulation.arange(Double(trainTimesteps), 0, step: -ratio).map { Float(NumPyEmulation.round($0)) - 1 }
        }
    }

    /// `init_noise_sigma` of the Euler family: σ_max for linspace/trailing, √(σ_max²+1) for leading
    /// (14.6146 vs 14.6488 for SD2; SD2-SPEC §7.6).
    func eulerInitNoiseSigma(maxSigma: Float) -> Float {
        switch self {
        case .linspace, .trailing: return maxSigma
        case .leading: return (maxSigma * maxSigma + 1).squareRoot()
        }
    }
}
