import Foundation

/// A diffusers `scheduler_config.json`, decoded with its own key names.
///
/// Every field is optional: an absent key means "the scheduler class's default", exactly like
/// diffusers, where each class's `__init__` supplies defaults for keys the file lacks (SD2-SPEC
/// §5.1: the official SD2 files predate `timestep_spacing`, so DDIM/PNDM/DDPM fall back to
/// "leading" and Euler/DPM to "linspace"). Unknown keys are ignored, as `from_config` ignores keys
/// the target class does not accept — which is also why switching class keeps the shared keys.
///
/// Values stay strings here so that an unsupported value can be reported with the list of valid
/// ones when a scheduler is built (`SchedulerError`), rather than as an opaque decoding error.
public struct SchedulerConfig: Codable, Sendable, Equatable {
    /// `_class_name`, e.g. "PNDMScheduler"; used by `makeScheduler(name: nil, …)`.
    public var className: String?
    public var numTrainTimesteps: Int?
    public var betaStart: Double?
    public var betaEnd: Double?
    /// "linear", "scaled_linear" or "squaredcos_cap_v2".
    public var betaSchedule: String?
    /// Explicit betas (bypass `beta_start`/`beta_end`), rounded to float32 like `torch.tensor(…)`.
    public var trainedBetas: [Double]?
    /// "epsilon", "v_prediction" or "sample" (which classes accept which: see each scheduler).
    public var predictionType: String?
    public var stepsOffset: Int?
    public var setAlphaToOne: Bool?
    public var clipSample: Bool?
    public var clipSampleRange: Double?
    public var skipPrkSteps: Bool?
    /// "linspace", "leading" or "trailing".
    public var timestepSpacing: String?
    public var useKarrasSigmas: Bool?
    public var solverOrder: Int?
    /// "dpmsolver++" or "dpmsolver" ("deis" is rewritten to "dpmsolver++" as diffusers does).
    public var algorithmType: String?
    /// "midpoint" or "heun" ("logrho", "bh1", "bh2" are rewritten to "midpoint" as diffusers does).
    public var solverType: String?
    public var lowerOrderFinal: Bool?
    public var eulerAtFinal: Bool?
    /// "zero" or "sigma_min".
    public var finalSigmasType: String?
    /// DDPM: "fixed_small", "fixed_small_log", "fixed_large"; DPM: must be absent/null.
    public var varianceType: String?
    /// Dynamic thresholding; only `false` is supported (it is wrong for latent diffusion anyway).
    public var thresholding: Bool?
    /// Euler: "linear" only.
    public var interpolationType: String?
    public var rescaleBetasZeroSnr: Bool?
    /// Euler: "discrete" only.
    public var timestepType: String?
    /// Euler Karras bounds (`sigma_min`/`sigma_max`); nil means "from the schedule".
    public var sigmaMin: Double?
    public var sigmaMax: Double?
    /// DPM: clip λ(t) from below; nil means −∞ (no clipping).
    public var lambdaMinClipped: Double?
    /// Alternative sigma spacings diffusers offers; only `false` is supported.
    public var useExponentialSigmas: Bool?
    public var useBetaSigmas: Bool?
    public var useLuLambdas: Bool?
    public var useFlowSigmas: Bool?
    /// Not a diffusers config key: the DDIM `eta` that diffusers passes to `step()` (default 0).
    public var eta: Double?

    enum CodingKeys: String, CodingKey {
        case className = "_class_name"
        case numTrainTimesteps = "num_train_timesteps"
        case betaStart = "beta_start"
        case betaEnd = "beta_end"
        case betaSchedule = "beta_schedule"
        case trainedBetas = "trained_betas"
        case predictionType = "prediction_type"
        case stepsOffset = "steps_offset"
        case setAlphaToOne = "set_alpha_to_one"
        case clipSample = "clip_sample"
        case clipSampleRange = "clip_sample_range"
        case skipPrkSteps = "skip_prk_steps"
        case timestepSpacing = "timestep_spacing"
        case useKarrasSigmas = "use_karras_sigmas"
        case solverOrder = "solver_order"
        case algorithmType = "algorithm_type"
        case solverType = "solver_type"
        case lowerOrderFinal = "lower_order_final"
        case eulerAtFinal = "euler_at_final"
        case finalSigmasType = "final_sigmas_type"
        case varianceType = "variance_type"
        case thresholding
        case interpolationType = "interpolation_type"
        case rescaleBetasZeroSnr = "rescale_betas_zero_snr"
        case timestepType = "timestep_type"
        case sigmaMin = "sigma_min"
        case sigmaMax = "sigma_max"
        case lambdaMinClipped = "lambda_min_clipped"
        case useExponentialSigmas = "use_exponential_sigmas"
        case useBetaSigmas = "use_beta_sigmas"
        case useLuLambdas = "use_lu_lambdas"
        case useFlowSigmas = "use_flow_sigmas"
        case eta
    }

    public init() {}

    /// Decodes a `scheduler_config.json`. JSON5 is accepted because Python's `json.dump` writes
    /// non-finite floats as bare `Infinity`/`-Infinity`/`NaN` (e.g. DPM's `lambda_min_clipped`).
    public static func decode(from data: Data) throws -> SchedulerConfig {
        let decoder = JSONDecoder()
        decoder.allowsJSON5 = true
        do {
            return try decoder.decode(SchedulerConfig.self, from: data)
        } catch {
            throw SchedulerError.invalidConfigFile(underlying: String(describing: error))
        }
    }

    /// Reads and decodes a `scheduler_config.json` file.
    public static func load(contentsOf url: URL) throws -> SchedulerConfig {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw SchedulerError.invalidConfigFile(underlying: "cannot read \(url.path): \(error.localizedDescription)")
        }
        return try decode(from: data)
    }
}
