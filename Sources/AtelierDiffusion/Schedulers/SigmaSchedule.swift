import Foundation

/// σ-space helpers shared by the Euler and DPM-Solver schedulers, in diffusers' NumPy float64
/// arithmetic (`_convert_to_karras`, `_sigma_to_t` in `scheduling_euler_discrete.py` and
/// `scheduling_dpmsolver_multistep.py`; SD2-SPEC §5.6, §5.8).
enum SigmaSchedule {
    /// Karras et al. (2022) ρ = 7 spacing between σ_max and σ_min:
    /// `(σmax^(1/ρ) + ramp·(σmin^(1/ρ) − σmax^(1/ρ)))^ρ`, ramp = linspace(0, 1, N).
    /// Python `**` and `np.power` both call C `pow`.
    static func karras(sigmaMin: Double, sigmaMax: Double, count: Int) -> [Double] {
        let rho = 7.0
        let ramp = NumPyEmulation.linspace(0, 1, count: count)
        let minInvRho = Foundation.pow(sigmaMin, 1 / rho)
        let maxInvRho = Foundation.pow(sigmaMax, 1 / rho)
        let span = minInvRho - maxInvRho
        return ramp.map { Foundation.pow(maxInvRho + $0 * span, rho) }
    }

    /// `np.log(sigmas)` of the float32 training σ table, with NumPy's own float32 SIMD log
    /// (not correctly rounded; see `NumPyEmulation.logFloat32`).
    static func logSigmas(_ trainSigmas: [Float]) -> [Float] {
        trainSigmas.map(NumPyEmulation.logFloat32)
    }

    /// `_sigma_to_t`: the fractional training timestep whose σ is `sigma`, by linear
    /// interpolation in log σ between the two bracketing table entries.
    static func sigmaToTimestep(_ sigma: Double, logSigmas: [Float]) -> Double {
        let logSigma = Foundation.log(max(sigma, 1e-10))
        // low_idx = argmax(cumsum(dists >= 0)) = the last index with log σᵢ ≤ log σ (0 if none),
        // clipped to len − 2.
        var lowIndex = 0
        for i in logSigmas.indices where logSigma - Double(logSigmas[i]) >= 0 { lowIndex = i }
        lowIndex = min(lowIndex, logSigmas.count - 2)
        let highIndex = lowIndex + 1
        let low = logSigmas[lowIndex]
        let high = logSigmas[highIndex]
        // (low − log σ) is float64; (low − high) is float32 − float32 in NumPy.
        var w = (Double(low) - logSigma) / Double(low - high)
        w = min(max(w, 0), 1)
        return (1 - w) * Double(lowIndex) + w * Double(highIndex)
    }
}
