import Foundation

/// The denoising rate a worker reports with its heartbeats (`HeartbeatRequest.steps_per_second`):
/// steps finished since the render's first reported step, over the time since then. Measured from
/// the first step, not from the lease, so loading weights and encoding the prompt (which take no
/// steps) do not drag the rate down; 0 until a second step has been seen.
struct StepRateMeter: Sendable {
    private var first: (step: Int, at: TimeInterval)?
    private var latest: (step: Int, at: TimeInterval)?

    /// Records that `step` steps are done at `time` (seconds on any monotonic clock).
    mutating func record(step: Int, at time: TimeInterval) {
        guard step > 0 else { return }
        if let l = latest, step < l.step { first = nil }  // a new render restarted the count
        if first == nil { first = (step, time) }
        latest = (step, time)
    }

    /// Steps per second so far (0 when not known yet).
    var stepsPerSecond: Double {
        guard let f = first, let l = latest, l.step > f.step, l.at > f.at else { return 0 }
        return Double(l.step - f.step) / (l.at - f.at)
    }
}
