import AtelierFarmProtocol

/// The state a worker is counted under in `atelier_workers{state}` and shown in on the status
/// page, from its `WorkerStatus`: `lost` (not heard from within the liveness window),
/// `quarantined` (its leases kept expiring), `draining` (takes no new leases), `busy` (holds a
/// lease) or `idle`.
enum FarmWorkerState: String, CaseIterable, Sendable {
    case idle, busy, draining, quarantined, lost

    init(_ worker: Atelier_V1_WorkerStatus) {
        if !worker.alive {
            self = .lost
        } else if worker.quarantinedUntilUnixMs > 0 {
            self = .quarantined
        } else if worker.draining {
            self = .draining
        } else if worker.leases > 0 {
            self = .busy
        } else {
            self = .idle
        }
    }

    /// Whether its step rate is current (it is rendering now): only those count in the farm's steps/s.
    var isRendering: Bool { self == .busy || self == .draining || self == .quarantined }
}
