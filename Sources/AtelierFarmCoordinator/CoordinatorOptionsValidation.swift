import Foundation

extension CoordinatorOptions {
    /// The longest lease TTL: a day. Longer TTLs mean a dead worker's task waits that long, and
    /// the deadline arithmetic (milliseconds in Int64, heartbeat intervals in UInt32 ms) must stay
    /// far from overflow: `--lease-seconds 1e300` used to trap on the first registration.
    public static let leaseTTLRange: ClosedRange<TimeInterval> = 0.001...86_400
    /// Unfinished tasks the queue may hold.
    public static let maxUnfinishedTasksRange: ClosedRange<Int> = 1...1_000_000
    /// Attempts per task (both the default and the per-job limit).
    public static let maxAttemptsRange: ClosedRange<Int> = 1...1000

    /// These options if every value is in range, else an INVALID_ARGUMENT `CoordinatorError`
    /// naming the option and its range. `Coordinator.init` calls it, so no door (the CLI, a
    /// test, an embedding program) can start a coordinator that traps later.
    public func validated() throws -> CoordinatorOptions {
        func fail(_ what: String) -> CoordinatorError { CoordinatorError.invalid("coordinator options: \(what)") }
        guard leaseTTL.isFinite, Self.leaseTTLRange.contains(leaseTTL) else {
            throw fail("the lease TTL (--lease-seconds) must be in 0.001…86400 seconds, got \(leaseTTL)")
        }
        guard leaseSecondsPerStepMegapixel.isFinite, (0...3600).contains(leaseSecondsPerStepMegapixel) else {
            throw fail("leaseSecondsPerStepMegapixel must be in 0…3600, got \(leaseSecondsPerStepMegapixel)")
        }
        if let h = heartbeatInterval, !(h.isFinite && h > 0 && h <= leaseTTL) {
            throw fail("the heartbeat interval must be in (0, leaseTTL = \(leaseTTL)] seconds, got \(h)")
        }
        guard aliveHeartbeats.isFinite, (1...1000).contains(aliveHeartbeats) else {
            throw fail("aliveHeartbeats must be in 1…1000, got \(aliveHeartbeats)")
        }
        guard Self.maxUnfinishedTasksRange.contains(maxUnfinishedTasks) else {
            throw fail("the queue limit (--max-queue) must be in 1…1000000 tasks, got \(maxUnfinishedTasks)")
        }
        guard Self.maxAttemptsRange.contains(maxAttemptsLimit) else {
            throw fail("maxAttemptsLimit must be in 1…1000, got \(maxAttemptsLimit)")
        }
        guard (1...maxAttemptsLimit).contains(defaultMaxAttempts) else {
            throw fail("the default attempts per task (--max-attempts) must be in 1…\(maxAttemptsLimit), got \(defaultMaxAttempts)")
        }
        guard blocklistThreshold >= 1 else { throw fail("blocklistThreshold must be at least 1, got \(blocklistThreshold)") }
        guard requestLogMaxAge.isFinite, requestLogMaxAge > 0, requestLogMaxRows >= 1 else {
            throw fail("the request log must keep a positive age and row count")
        }
        guard maxImageBytes >= 1, maxResultBytes >= 1, maxUpscaleSide >= 1 else {
            throw fail("maxImageBytes, maxResultBytes and maxUpscaleSide must be positive")
        }
        guard maxWatchers >= 0 else { throw fail("maxWatchers must be at least 0, got \(maxWatchers)") }
        return self
    }
}
