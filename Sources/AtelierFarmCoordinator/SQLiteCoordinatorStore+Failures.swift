import AtelierFarmProtocol
import Foundation
import GRDB

/// `SQLiteCoordinatorStore`: fail_task, release_task and expiries. What happens when an attempt
/// does not produce a result. Two kinds, with separate budgets:
///
/// - **Render failures** (fail_task, a rejected result) say something about the task. They are
///   charged against the job's `max_attempts`; a task that used them all fails, and with it the
///   job (a batch or an upscale with a hole in it is not a result), cancelling its other tasks.
///   The same error on two *different* workers is deterministic (a bad input, a model that cannot
///   render it): the task fails at once instead of burning its remaining attempts.
/// - **Lease expiries** (the worker was killed, stopped or cut off) say nothing about the task.
///   They are not charged as attempts; they have their own, generous budget
///   (`CoordinatorOptions.maxLeaseExpiries`), and the task is requeued with a back-off growing per
///   expiry and preferably handed to another worker than the one that lost it, so one task does
///   not absorb every kill of a flapping farm.
extension SQLiteCoordinatorStore {
    public func fail(_ claim: LeaseClaim, class failure: FailureClass, message: String, now: Int64, log: LoggedRequest,
                     respond: () throws -> Atelier_V1_Response) throws -> Logged<Void> {
        try recorded(log, now: now, { db in
            let task = try SQLiteCoordinatorStore.leasedTask(db, claim)
            try touchWorker(db, id: claim.workerID, now: now)
            var message = message.trimmingCharacters(in: .whitespacesAndNewlines)
            // Workers used to prefix their name; the job error names the worker already, and the
            // bare error is what tells a deterministic failure (same error, different workers).
            if failure == .failed, let name = try WorkerRow.fetch(db, id: claim.workerID)?.name, !name.isEmpty,
               message.hasPrefix(name + ": ") {
                message = String(message.dropFirst(name.count + 2))
            }
            try recordFailedAttempt(db, task: task, outcome: failure.rawValue,
                                    message: message.isEmpty ? "the worker gave no reason" : message, now: now)
        }, respond: { _ in try respond() })
    }

    public func release(_ claim: LeaseClaim, reason: String, now: Int64, log: LoggedRequest,
                        respond: () throws -> Atelier_V1_Response) throws -> Logged<Void> {
        try recorded(log, now: now, { db in
            let task = try SQLiteCoordinatorStore.leasedTask(db, claim)
            try touchWorker(db, id: claim.workerID, now: now)
            let reason = SQLiteCoordinatorStore.truncated(reason.isEmpty ? "released by its worker" : reason)
            try db.execute(sql: "UPDATE attempts SET ended = ?, outcome = 'released', error = ? WHERE fencing_token = ? AND ended IS NULL",
                           arguments: [now, reason, task.fencingToken])
            try db.execute(sql: """
                UPDATE tasks SET state = 'queued', attempts = MAX(attempts - 1, 0), lease_deadline = NULL, worker_id = NULL,
                                 step = 0, total_steps = 0
                WHERE id = ?
                """, arguments: [task.id])
        }, respond: { _ in try respond() })
    }

    public func failJob(jobID: String, reason: String, now: Int64) throws {
        try write { db in try failJob(db, jobID: jobID, reason: reason, now: now) }
    }

    public func noteJobError(jobID: String, message: String) throws {
        try write { db in
            if try JobRow.fetch(db, id: jobID)?.errorList.last != message {
                try SQLiteCoordinatorStore.appendJobError(db, jobID: jobID, message)
            }
        }
    }

    static let maxJobErrors = 1000
    static let maxErrorLength = 4000

    /// A render failure: `outcome` is "failed" (fail_task) or "rejected" (a result that failed
    /// validation). Counts towards the worker's failure counter and the job's blocklist.
    func recordFailedAttempt(_ db: Database, task: TaskRow, outcome: String, message: String, now: Int64) throws {
        let message = SQLiteCoordinatorStore.truncated(message)
        let workerID = task.workerId ?? ""
        let workerLabel = try WorkerRow.fetch(db, id: workerID)?.label ?? (workerID.isEmpty ? "no worker" : workerID)
        try db.execute(sql: "UPDATE attempts SET ended = ?, outcome = ?, error = ? WHERE fencing_token = ? AND ended IS NULL",
                       arguments: [now, outcome, message, task.fencingToken])
        let failures = task.failures + 1
        try SQLiteCoordinatorStore.appendJobError(
            db, jobID: task.jobId, "task \(task.idx) attempt \(failures)/\(task.maxAttempts) on \(workerLabel): \(message)")
        if !workerID.isEmpty {
            try db.execute(sql: "UPDATE workers SET failed = failed + 1 WHERE id = ?", arguments: [workerID])
            try db.execute(sql: """
                INSERT INTO worker_job_failures (worker_id, job_id, count) VALUES (?, ?, 1)
                ON CONFLICT (worker_id, job_id) DO UPDATE SET count = count + 1
                """, arguments: [workerID, task.jobId])
        }
        // Deterministic: another worker already failed this task with exactly this error.
        let sameElsewhere = try Int.fetchOne(db, sql: """
            SELECT COUNT(DISTINCT worker_id) FROM attempts
            WHERE task_id = ? AND outcome IN ('failed', 'rejected') AND error = ? AND worker_id != ?
            """, arguments: [task.id, message, workerID]) ?? 0
        if failures >= task.maxAttempts || sameElsewhere > 0 {
            try db.execute(sql: """
                UPDATE tasks SET state = 'failed', failures = ?, last_error = ?, lease_deadline = NULL WHERE id = ?
                """, arguments: [failures, message, task.id])
            let why = failures >= task.maxAttempts
                ? "failed \(failures) time(s), its limit"
                : "failed with the same error on \(sameElsewhere + 1) different workers (deterministic, not retried)"
            try failJob(db, jobID: task.jobId, reason: "job failed: task \(task.idx) \(why); last error: \(message)", now: now)
        } else {
            try db.execute(sql: """
                UPDATE tasks SET state = 'queued', failures = ?, last_error = ?, lease_deadline = NULL, worker_id = NULL,
                                 step = 0, total_steps = 0
                WHERE id = ?
                """, arguments: [failures, message, task.id])
        }
    }

    /// An expired lease: not an attempt. The task is requeued with a back-off and remembers who
    /// lost it; only when it has expired `maxLeaseExpiries` times does it fail (a task that kills
    /// every worker that touches it must not loop forever).
    func recordExpiredLease(_ db: Database, task: TaskRow, message: String, now: Int64) throws {
        let message = SQLiteCoordinatorStore.truncated(message)
        let workerID = task.workerId ?? ""
        let workerLabel = try WorkerRow.fetch(db, id: workerID)?.label ?? (workerID.isEmpty ? "no worker" : workerID)
        try db.execute(sql: "UPDATE attempts SET ended = ?, outcome = 'expired', error = ? WHERE fencing_token = ? AND ended IS NULL",
                       arguments: [now, message, task.fencingToken])
        let expiries = task.expiries + 1
        let budget = max(options.maxLeaseExpiries, 1)
        try SQLiteCoordinatorStore.appendJobError(
            db, jobID: task.jobId, "task \(task.idx) lease expiry \(expiries)/\(budget) on \(workerLabel): \(message)")
        // Towards quarantine counts a lease its worker never heartbeated: what a peer that leases
        // without working leaves. A worker killed mid-render had heartbeated (Atelier's workers
        // send one as soon as they start), so a farm whose workers are killed and restarted —
        // and take their old row back — is not quarantined for it.
        let heartbeated = try Int64.fetchOne(
            db, sql: "SELECT last_heartbeat FROM attempts WHERE fencing_token = ?", arguments: [task.fencingToken]) != nil
        try noteWorkerExpiry(db, workerID: workerID, counts: !heartbeated, now: now)
        if expiries >= budget {
            try db.execute(sql: """
                UPDATE tasks SET state = 'failed', expiries = ?, last_error = ?, lease_deadline = NULL WHERE id = ?
                """, arguments: [expiries, message, task.id])
            try failJob(db, jobID: task.jobId,
                        reason: "job failed: task \(task.idx) lost its worker \(expiries) time(s), the limit; last: \(message)",
                        now: now)
        } else {
            let notBefore = now + expiryBackoffMs(expiries: expiries)
            try db.execute(sql: """
                UPDATE tasks SET state = 'queued', expiries = ?, not_before = ?, lost_by = ?, last_error = ?,
                                 lease_deadline = NULL, worker_id = NULL, step = 0, total_steps = 0
                WHERE id = ?
                """, arguments: [expiries, notBefore, workerID.isEmpty ? nil : workerID, message, task.id])
        }
    }

    /// 0 after the first expiry (the worker was most likely killed or restarted: another one
    /// takes the task at once), then `expiryBackoff × 2^(expiries-2)`, at most `expiryBackoffMax`,
    /// in ms.
    func expiryBackoffMs(expiries: Int) -> Int64 {
        options.expiryBackoffMs(expiries: expiries)
    }

    /// Counts an expiry against the worker that held the lease; after
    /// `quarantineAfterExpiries` counted ones in a row (no completion between them) it is
    /// quarantined, for a period doubling with every further one.
    func noteWorkerExpiry(_ db: Database, workerID: String, counts: Bool, now: Int64) throws {
        guard !workerID.isEmpty else { return }
        try db.execute(sql: "UPDATE workers SET expiries = expiries + 1 WHERE id = ?", arguments: [workerID])
        guard counts else { return }
        try db.execute(sql: "UPDATE workers SET expiry_streak = expiry_streak + 1 WHERE id = ?", arguments: [workerID])
        guard let streak = try Int.fetchOne(db, sql: "SELECT expiry_streak FROM workers WHERE id = ?", arguments: [workerID]),
              streak >= max(options.quarantineAfterExpiries, 1) else { return }
        let doublings = Double(min(streak - max(options.quarantineAfterExpiries, 1), 30))
        let seconds = min(max(options.quarantine, 0) * pow(2, doublings), max(options.quarantineMax, 0))
        let until = now + Int64((seconds * 1000).rounded())
        try db.execute(sql: "UPDATE workers SET quarantined_until = MAX(quarantined_until, ?) WHERE id = ?",
                       arguments: [until, workerID])
    }

    /// Marks a job failed (unless it already finished) and cancels its unfinished tasks; their
    /// workers learn it from their next heartbeat.
    func failJob(_ db: Database, jobID: String, reason: String, now: Int64) throws {
        guard let job = try JobRow.fetch(db, id: jobID), !job.state.isFinished else { return }
        try SQLiteCoordinatorStore.stopUnfinishedTasks(db, jobID: jobID, now: now)
        try SQLiteCoordinatorStore.appendJobError(db, jobID: jobID, reason)
        try db.execute(sql: "UPDATE jobs SET state = 'failed', finished = ? WHERE id = ?", arguments: [now, jobID])
    }

    /// Cancels a job's queued and leased tasks, closing the leased ones' attempts.
    static func stopUnfinishedTasks(_ db: Database, jobID: String, now: Int64) throws {
        try db.execute(sql: """
            UPDATE attempts SET ended = ?, outcome = 'cancelled'
            WHERE ended IS NULL AND task_id IN (SELECT id FROM tasks WHERE job_id = ? AND state = 'leased')
            """, arguments: [now, jobID])
        try db.execute(sql: "UPDATE tasks SET state = 'cancelled' WHERE job_id = ? AND state IN ('queued', 'leased')",
                       arguments: [jobID])
    }

    static func appendJobError(_ db: Database, jobID: String, _ message: String) throws {
        guard let job = try JobRow.fetch(db, id: jobID) else { return }
        var list = job.errorList
        guard list.count < maxJobErrors else { return }
        list.append(truncated(message))
        try db.execute(sql: "UPDATE jobs SET errors = ? WHERE id = ?", arguments: [JobRow.encodeErrors(list), jobID])
    }

    static func truncated(_ message: String) -> String {
        message.count <= maxErrorLength ? message : String(message.prefix(maxErrorLength)) + "…"
    }
}
