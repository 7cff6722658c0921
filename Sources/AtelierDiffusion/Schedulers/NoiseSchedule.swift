import AtelierKernels
import Foundation

/// The training noise schedule every scheduler starts from: β, ᾱ = cumprod(1 − β) and the
/// derived σ = √((1 − ᾱ)/ᾱ), built with exactly torch's float32 arithmetic so that diffusers'
/// tables are reproduced bit for bit (SD2-SPEC §5.2, §7.7; the `__init__` of every diffusers
/// scheduler in `schedulers/scheduling_*.py`):
///
/// - `torch.linspace(a, b, n, float32)` (ATen `RangeFactoriesKernel.cpp`): step = (b − a)/(n − 1) in
///   float32, element i < n/2 is `a + step·i` and the rest `b − step·(n−1−i)`, each a *single*
///   rounding (GCC fuses the multiply-add; checked against torch 2.13 for all SD2 configs).
/// - `linspace(√β₀, √β₁)²` for "scaled_linear", squared in float32.
/// - `torch.cumprod` on float32 accumulates in double and rounds each output to float32.
/// - σ in float32: ((1 − ᾱ)/ᾱ)^0.5 with each operation rounded.
struct NoiseSchedule: Sendable {
    let numTrainTimesteps: Int
    let betas: [Float]
    /// ᾱ per training timestep (float32).
    private(set) var alphasCumprod: [Float]

    /// Builds β and ᾱ from the config's schedule keys (class defaults applied by the caller).
    init(
        numTrainTimesteps: Int, betaStart: Double, betaEnd: Double, schedule: BetaSchedule,
        trainedBetas: [Double]?, rescaleZeroTerminalSNR: Bool
    ) throws {
        guard numTrainTimesteps >= 1 else {
            throw SchedulerError.invalidValue(key: "num_train_timesteps", value: String(numTrainTimesteps), valid: ["an integer ≥ 1"])
        }
        var betas: [Float]
        if let trainedBetas {
            guard !trainedBetas.isEmpty else {
                throw SchedulerError.invalidValue(key: "trained_betas", value: "[]", valid: ["a non-empty list", "null"])
            }
            betas = trainedBetas.map { Float($0) }
        } else {
            switch schedule {
            case .linear:
                betas = Self.torchLinspace(Float(betaStart), Float(betaEnd), count: numTrainTimesteps)
            case .scaledLinear:
                // Python `beta_start**0.5` is C `pow(x, 0.5)`, then rounded to float32 by torch.
                let start = Float(Foundation.pow(betaStart, 0.5))
                let end = Float(Foundation.pow(betaEnd, 0.5))
                betas = Self.torchLinspace(start, end, count: numTrainTimesteps).map { $0 * $0 }
            case .squaredcosCapV2:
                betas = Self.glideCosineBetas(count: numTrainTimesteps)
            }
        }
        if rescaleZeroTerminalSNR { betas = Self.rescaleZeroTerminalSNR(betas) }
        self.numTrainTimesteps = betas.count
        self.betas = betas
        self.alphasCumprod = Self.torchCumprod(betas.map { 1 - $0 })
    }

    /// diffusers' Euler, Euler-ancestral and DPM schedulers replace ᾱ[T−1] = 0 (zero terminal
    /// SNR) with 2⁻²⁴ so that σ stays finite.
    mutating func clampTerminalAlphaCumprodForSigmas() {
        alphasCumprod[alphasCumprod.count - 1] = Float(bitPattern: 0x3380_0000)  // 2⁻²⁴
    }

    /// ᾱ at an inference timestep, with timesteps past the last training timestep read as the last.
    ///
    /// "leading" spacing adds `steps_offset` after spacing, so 1000 steps with the offset of 1 that
    /// every SD2 pipeline forces ask for t = 1000 of a 1000-entry table (a user config's larger
    /// offset does the same at fewer steps). diffusers indexes `alphas_cumprod[1000]` there and
    /// raises IndexError; the Euler and DPM schedulers of the same diffusers read σ through
    /// `np.interp`, which holds the last table value beyond the end. DDIM, PNDM and DDPM read ᾱ the
    /// same way here, so every step count the CLI documents (1…1000) runs, identically to diffusers
    /// wherever diffusers runs at all. Negative timesteps are the callers' business (they mean
    /// "past the end of the chain" and take `final_alpha_cumprod`).
    func alphaCumprod(atTimestep timestep: Int) -> Float {
        alphasCumprod[Swift.max(0, Swift.min(timestep, alphasCumprod.count - 1))]
    }

    /// σ = ((1 − ᾱ)/ᾱ)^0.5 per training timestep, in float32 (ascending t).
    var trainSigmas: [Float] { alphasCumprod.map { ((1 - $0) / $0).squareRoot() } }

    /// `DDPMScheduler.add_noise` (shared by DDIM and PNDM): √ᾱ[t]·x₀ + √(1 − ᾱ[t])·ε in float32,
    /// with t clamped to the table as `alphaCumprod(atTimestep:)` explains.
    func addNoise(original: Tensor, noise: Tensor, timestep: Int) -> Tensor {
        let alphaProd = alphaCumprod(atTimestep: timestep)
        let sqrtAlphaProd = alphaProd.squareRoot()
        let sqrtOneMinusAlphaProd = (1 - alphaProd).squareRoot()
        return SchedulerMath.map(original, noise) { x, n in sqrtAlphaProd * x + sqrtOneMinusAlphaProd * n }
    }

    // MARK: - torch's float32 constructions

    /// `torch.linspace(start, end, count, dtype=torch.float32)` on CPU.
    static func torchLinspace(_ start: Float, _ end: Float, count: Int) -> [Float] {
        guard count > 1 else { return count == 1 ? [start] : [] }
        let step = (end - start) / Float(count - 1)
        let halfway = count / 2
        return (0..<count).map { i in
            i < halfway ? start.addingProduct(step, Float(i)) : end.addingProduct(-step, Float(count - 1 - i))
        }
    }

    /// `torch.cumprod(x, 0)` for float32 on CPU: double accumulator, float32 outputs.
    static func torchCumprod(_ values: [Float]) -> [Float] {
        var accumulator = 1.0
        return values.map { value in
            accumulator *= Double(value)
            return Float(accumulator)
        }
    }

    /// `betas_for_alpha_bar(n)` with the cosine ᾱ(t) = cos²((t + 0.008)/1.008 · π/2), capped at
    /// 0.999, computed in Python floats (C `cos`/`pow`) and converted to float32.
    static func glideCosineBetas(count: Int) -> [Float] {
        func alphaBar(_ t: Double) -> Double { Foundation.pow(Foundation.cos((t + 0.008) / 1.008 * Double.pi / 2), 2) }
        return (0..<count).map { i in
            let t1 = Double(i) / Double(count)
            let t2 = Double(i + 1) / Double(count)
            return Float(min(1 - alphaBar(t2) / alphaBar(t1), 0.999))
        }
    }

    /// `rescale_zero_terminal_snr(betas)` (arXiv 2305.08891, Algorithm 1) in torch float32.
    /// torch's `alphas_cumprod.sqrt()` is MKL's (not always correctly rounded), so the rescaled
    /// table matches diffusers to a few ulp of ᾱ rather than bit for bit.
    static func rescaleZeroTerminalSNR(_ betas: [Float]) -> [Float] {
        let alphasCumprod = torchCumprod(betas.map { 1 - $0 })
        var sqrtAlphas = alphasCumprod.map { $0.squareRoot() }
        let first = sqrtAlphas[0]
        let last = sqrtAlphas[sqrtAlphas.count - 1]
        let scale = first / (first - last)
        for i in sqrtAlphas.indices { sqrtAlphas[i] = (sqrtAlphas[i] - last) * scale }
        let alphasBar = sqrtAlphas.map { $0 * $0 }
        var alphas = [alphasBar[0]]
        for i in 1..<alphasBar.count { alphas.append(alphasBar[i] / alphasBar[i - 1]) }
        return alphas.map { 1 - $0 }
    }
}
