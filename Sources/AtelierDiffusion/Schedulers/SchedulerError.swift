/// Why a scheduler could not be built or configured. Messages name the offending key or value and
/// what would be accepted, so a user can fix their `scheduler_config.json` or command line.
public enum SchedulerError: Error, Equatable, CustomStringConvertible {
    /// `makeScheduler(name:)` got a name it does not know.
    case unknownSchedulerName(String, valid: [String])
    /// `_class_name` (used when no name is given) is missing or not a supported class.
    case unsupportedClassName(String?, valid: [String])
    /// A config key holds a value this implementation does not accept.
    case invalidValue(key: String, value: String, valid: [String])
    /// A config key holds a value diffusers accepts but this implementation does not implement.
    case unsupportedOption(key: String, value: String, reason: String)
    /// `setTimesteps` got a step count outside 1...num_train_timesteps (or similar).
    case invalidStepCount(Int, reason: String)
    /// The JSON could not be read or decoded.
    case invalidConfigFile(underlying: String)

    public var description: String {
        switch self {
        case let .unknownSchedulerName(name, valid):
            return "unknown scheduler '\(name)'; valid names: \(valid.joined(separator: ", "))"
        case let .unsupportedClassName(name, valid):
            let shown = name.map { "'\($0)'" } ?? "missing (_class_name absent)"
            return "scheduler class \(shown) is not supported; supported _class_name values: \(valid.joined(separator: ", ")) — or pass a scheduler name"
        case let .invalidValue(key, value, valid):
            return "scheduler config '\(key)' = \(value) is not valid; expected one of: \(valid.joined(separator: ", "))"
        case let .unsupportedOption(key, value, reason):
            return "scheduler config '\(key)' = \(value) is not supported: \(reason)"
        case let .invalidStepCount(count, reason):
            return "cannot use \(count) inference steps: \(reason)"
        case let .invalidConfigFile(underlying):
            return "could not read scheduler config: \(underlying)"
        }
    }
}
