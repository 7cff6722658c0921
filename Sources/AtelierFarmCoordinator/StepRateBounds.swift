/// The step rate a heartbeat may store: finite and in [0, `maxStepsPerSecond`]; anything else is
/// taken as "not known" (0), so a hostile or confused worker cannot poison the farm's sum of rates.
public enum StepRateBounds {
    public static let maxStepsPerSecond = 100_000.0

    public static func sanitized(_ value: Double) -> Double {
        guard value.isFinite, value > 0 else { return 0 }
        return min(value, maxStepsPerSecond)
    }
}
