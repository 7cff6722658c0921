/// What the denoising network predicts (`prediction_type`). SD2 768-v and the x4 upscaler use
/// v-prediction, the 512 models ε (SD2-SPEC §5.1).
public enum PredictionType: String, Sendable, CaseIterable {
    case epsilon
    case vPrediction = "v_prediction"
    case sample
}

/// How `set_timesteps(N)` spreads N timesteps over the training range (`timestep_spacing`,
/// SD2-SPEC §5.3; Table 2 of "Common Diffusion Noise Schedules and Sample Steps are Flawed").
public enum TimestepSpacing: String, Sendable, CaseIterable {
    case linspace
    case leading
    case trailing
}

/// The training β schedule (`beta_schedule`).
public enum BetaSchedule: String, Sendable, CaseIterable {
    case linear
    case scaledLinear = "scaled_linear"
    case squaredcosCapV2 = "squaredcos_cap_v2"
}

/// Turns the optional strings of a `SchedulerConfig` into typed options, applying a class's
/// default when a key is absent and listing the valid values when one is wrong.
enum ConfigValue {
    static func parse<T: RawRepresentable & CaseIterable>(
        _ raw: String?, key: String, default defaultValue: T, allowed: [T]? = nil
    ) throws -> T where T.RawValue == String {
        guard let raw else { return defaultValue }
        let accepted = allowed ?? Array(T.allCases)
        guard let value = T(rawValue: raw), accepted.contains(where: { $0.rawValue == value.rawValue }) else {
            throw SchedulerError.invalidValue(key: key, value: "'\(raw)'", valid: accepted.map(\.rawValue))
        }
        return value
    }

    /// Rejects `true` for a feature diffusers has but this implementation deliberately lacks.
    static func requireFalse(_ flag: Bool?, key: String, reason: String) throws {
        if flag == true { throw SchedulerError.unsupportedOption(key: key, value: "true", reason: reason) }
    }
}
