import AtelierFarmProtocol
import Foundation

/// lease_task and heartbeat, answered through the store (`CoordinatorStore.leaseNext`,
/// `idleLeaseWait`, `heartbeat`).
///
/// Fencing: every lease gets a token from a durable, strictly increasing counter, stored as the
/// task's current token. Heartbeat, complete and fail must present it; once a lease expires and
/// the task is handed out again (new token) or finishes, the old holder is refused with
/// STALE_LEASE, so a task's result is accepted exactly once.
extension Coordinator {
    func leaseTask(_ r: Atelier_V1_LeaseTaskRequest, request: Atelier_V1_Request,
                   peer: String) throws -> Atelier_V1_Response {
        try refuseLeaseIfDraining(r.workerID)
        let nowMs = unixMilliseconds(now())
        // An idle poll answered from a snapshot, with no write transaction and no request-log row:
        // when the worker was seen within the last heartbeat interval, no lease has expired (a
        // requeue is a write) and there is nothing for it to take, the answer is "retry after" and
        // nothing persistent would change. Otherwise the poll takes the write path (which decides
        // again, atomically). An idle worker therefore costs one write per heartbeat interval (its
        // `last_seen`) instead of one per poll. Not logging the answer is safe: a resend is simply
        // decided afresh, and a grant is always logged.
        let refreshMs = Int64((options.effectiveHeartbeatInterval * 1000).rounded())
        if let retryAfterMs = try store.idleLeaseWait(worker: r.workerID, now: nowMs, refreshMs: refreshMs) {
            var body = Atelier_V1_LeaseTaskResponse()
            body.retryAfterMs = retryAfterMs
            return Coordinator.success(.leaseTask(body))
        }
        return try store.leaseNext(worker: r.workerID, now: nowMs, log: logged(request, peer: peer)) { outcome in
            var body = Atelier_V1_LeaseTaskResponse()
            switch outcome {
            case .wait(let retryAfterMs): body.retryAfterMs = retryAfterMs
            case .lease(let lease): body.lease = lease
            }
            return Coordinator.success(.leaseTask(body))
        }.response
    }

    /// Not kept in the request log: a heartbeat is idempotent by its fencing token (a resend
    /// extends the same lease again), and logging one row per heartbeat of every rendering worker
    /// only fed the log's pruning.
    func heartbeat(_ r: Atelier_V1_HeartbeatRequest, request: Atelier_V1_Request,
                   peer: String) throws -> Atelier_V1_Response {
        let outcome = try store.heartbeat(LeaseClaim(taskID: r.taskID, workerID: r.workerID, token: r.fencingToken),
                                          step: r.step, totalSteps: r.totalSteps,
                                          stepsPerSecond: StepRateBounds.sanitized(r.stepsPerSecond), now: unixMilliseconds(now()))
        var body = Atelier_V1_HeartbeatResponse()
        body.cancel = outcome.cancel
        body.drain = isDraining(r.workerID)
        body.deadlineUnixMs = outcome.deadlineUnixMs
        return Coordinator.success(.heartbeat(body))
    }

    /// Most denoising steps a heartbeat may report (the documented maximum is 1000; this leaves
    /// room for schedulers that count more internal steps).
    static let maxReportedSteps: UInt32 = 100_000

    /// The progress stored from a heartbeat: a total of at most `maxReportedSteps`, and never a
    /// step beyond the total (a total of 0 means "not known yet", so the step is 0 too). Clients
    /// draw progress bars from these numbers; a step past the total once crashed `atelier wait`.
    static func clampedProgress(step: UInt32, total: UInt32) -> (step: Int64, total: Int64) {
        let total = min(total, maxReportedSteps)
        return (Int64(min(step, total)), Int64(total))
    }
}
