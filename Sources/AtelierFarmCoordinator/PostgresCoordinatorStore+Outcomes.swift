#if PostgreSQL  // the trait (Package.swift); off, the coordinator builds without postgres-nio
import AtelierFarmProtocol
import Foundation
import PostgresNIO

/// `PostgresCoordinatorStore`: how attempts end (completion, failure, release, expiry) and how a
/// job fails. The policy is `SQLiteCoordinatorStore+Failures`'s; the locks are this store's: a
/// completion locks its job's row and then the task's, so completions of one job are serialised
/// and its last one sees every other.
extension PostgresCoordinatorStore {
    public func completionTarget(_ claim: LeaseClaim) throws -> CompletionTarget {
        try read { db in
            guard let task = try PostgresCoordinatorStore.task(db, id: claim.taskID) else {
                throw CoordinatorError.notFound("no task \"\(claim.taskID)\"")
            }
            _ = try SQLiteCoordinatorStore.checkClaim(task, claim, acceptCancelled: false)
            guard let job = try PostgresCoordinatorStore.job(db, id: task.jobId),
                  let spec = try db.rows("SELECT spec FROM tasks WHERE id = \(task.id)").first else {
                throw CoordinatorError.internalError("task \(task.id) has no job or spec")
            }
            return CompletionTarget(taskIndex: task.idx, jobID: job.id, isUpscale: job.kind == .upscale,
                                    spec: try Atelier_V1_TaskSpec(serializedBytes: try spec["spec"].decode(Data.self)),
                                    expectedWidth: job.expectedWidth, expectedHeight: job.expectedHeight,
                                    expectedExact: job.expectedExact)
        }
    }

    public func complete(_ claim: LeaseClaim, result: StoredResult, file: ResultFileHooks, now: Int64, log: LoggedRequest,
                         respond: (CompletionOutcome) throws -> Atelier_V1_Response) throws -> Logged<CompletionOutcome> {
        try recorded(log, now: now, { db -> CompletionOutcome in
            let current: TaskRow
            let job: JobRow
            do {
                // The job's row first (the order every job-wide change takes), then the task's.
                guard let jobID = try db.rows("SELECT job_id FROM tasks WHERE id = \(claim.taskID)").first?["job_id"].decode(String.self),
                      let locked = try PostgresCoordinatorStore.job(db, id: jobID, lock: true) else {
                    throw CoordinatorError.notFound("no task \"\(claim.taskID)\"")
                }
                job = locked
                current = try PostgresCoordinatorStore.leasedTask(db, claim)
            } catch {
                file.refused()
                throw error
            }
            try file.accepted()
            let kind: ResultStore.Kind = job.kind == .batch ? .image : .tile
            try db.execute("UPDATE tasks SET state = 'done', lease_deadline = NULL, last_error = '', step = total_steps WHERE id = \(current.id)")
            try db.execute("UPDATE attempts SET ended = \(now), outcome = 'done' WHERE fencing_token = \(current.fencingToken)")
            try db.execute("""
                INSERT INTO results (job_id, kind, idx, path, bytes, created)
                VALUES (\(job.id), \(kind.rawValue), \(current.idx), \(result.path), \(result.bytes), \(now))
                ON CONFLICT (job_id, kind, idx) DO UPDATE SET path = excluded.path, bytes = excluded.bytes, created = excluded.created
                """)
            try db.execute("""
                UPDATE workers SET completed = completed + 1, last_seen = GREATEST(last_seen, \(now)), expiry_streak = 0, proven = TRUE
                WHERE id = \(claim.workerID)
                """)
            let remaining = try PostgresCoordinatorStore.int(
                db, "SELECT COUNT(*) FROM tasks WHERE job_id = \(job.id) AND state != 'done'")
            var allTilesIn = false
            if remaining == 0 {
                switch job.kind {
                case .batch:
                    try db.execute("""
                        UPDATE jobs SET state = 'succeeded', finished = \(now) WHERE id = \(job.id) AND state IN ('queued', 'running')
                        """)
                case .upscale:
                    allTilesIn = true
                }
            }
            return CompletionOutcome(jobID: job.id, allTilesIn: allTilesIn)
        }, respond: respond)
    }

    public func fail(_ claim: LeaseClaim, class failure: FailureClass, message: String, now: Int64, log: LoggedRequest,
                     respond: () throws -> Atelier_V1_Response) throws -> Logged<Void> {
        try recorded(log, now: now, { db in
            try lockJob(of: claim.taskID, db)
            let task = try PostgresCoordinatorStore.leasedTask(db, claim)
            try touchWorker(db, id: claim.workerID, now: now)
            var message = message.trimmingCharacters(in: .whitespacesAndNewlines)
            if failure == .failed, let name = try PostgresCoordinatorStore.worker(db, id: claim.workerID)?.name, !name.isEmpty,
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
            let task = try PostgresCoordinatorStore.leasedTask(db, claim)
            try touchWorker(db, id: claim.workerID, now: now)
            let reason = SQLiteCoordinatorStore.truncated(reason.isEmpty ? "released by its worker" : reason)
            try db.execute("""
                UPDATE attempts SET ended = \(now), outcome = 'released', error = \(reason)
                WHERE fencing_token = \(task.fencingToken) AND ended IS NULL
                """)
            try db.execute("""
                UPDATE tasks SET state = 'queued', attempts = GREATEST(attempts - 1, 0), lease_deadline = NULL, worker_id = NULL,
                                 step = 0, total_steps = 0
                WHERE id = \(task.id)
                """)
        }, respond: { _ in try respond() })
    }

    /// Locks the row of the job `taskID` belongs to (before the task's: the one lock order).
    private func lockJob(of taskID: String, _ db: PostgresSession) throws {
        try db.execute("SELECT 1 FROM jobs WHERE id = (SELECT job_id FROM tasks WHERE id = \(taskID)) FOR UPDATE")
    }

    func recordFailedAttempt(_ db: PostgresSession, task: TaskRow, outcome: String, message: String, now: Int64) throws {
        let message = SQLiteCoordinatorStore.truncated(message)
        let workerID = task.workerId ?? ""
        let workerLabel = try PostgresCoordinatorStore.worker(db, id: workerID)?.label ?? (workerID.isEmpty ? "no worker" : workerID)
        try db.execute("""
            UPDATE attempts SET ended = \(now), outcome = \(outcome), error = \(message)
            WHERE fencing_token = \(task.fencingToken) AND ended IS NULL
            """)
        let failures = task.failures + 1
        try appendJobError(db, jobID: task.jobId, "task \(task.idx) attempt \(failures)/\(task.maxAttempts) on \(workerLabel): \(message)")
        if !workerID.isEmpty {
            try db.execute("UPDATE workers SET failed = failed + 1 WHERE id = \(workerID)")
            try db.execute("""
                INSERT INTO worker_job_failures (worker_id, job_id, count) VALUES (\(workerID), \(task.jobId), 1)
                ON CONFLICT (worker_id, job_id) DO UPDATE SET count = worker_job_failures.count + 1
                """)
        }
        let sameElsewhere = try PostgresCoordinatorStore.int(db, """
            SELECT COUNT(DISTINCT worker_id) FROM attempts
            WHERE task_id = \(task.id) AND outcome IN ('failed', 'rejected') AND error = \(message) AND worker_id != \(workerID)
            """)
        if failures >= task.maxAttempts || sameElsewhere > 0 {
            try db.execute("""
                UPDATE tasks SET state = 'failed', failures = \(failures), last_error = \(message), lease_deadline = NULL
                WHERE id = \(task.id)
                """)
            let why = failures >= task.maxAttempts
                ? "failed \(failures) time(s), its limit"
                : "failed with the same error on \(sameElsewhere + 1) different workers (deterministic, not retried)"
            try failJob(db, jobID: task.jobId, reason: "job failed: task \(task.idx) \(why); last error: \(message)", now: now)
        } else {
            try db.execute("""
                UPDATE tasks SET state = 'queued', failures = \(failures), last_error = \(message), lease_deadline = NULL,
                                 worker_id = NULL, step = 0, total_steps = 0
                WHERE id = \(task.id)
                """)
        }
    }

    func recordExpiredLease(_ db: PostgresSession, task: TaskRow, message: String, now: Int64) throws {
        let message = SQLiteCoordinatorStore.truncated(message)
        let workerID = task.workerId ?? ""
        let workerLabel = try PostgresCoordinatorStore.worker(db, id: workerID)?.label ?? (workerID.isEmpty ? "no worker" : workerID)
        try db.execute("""
            UPDATE attempts SET ended = \(now), outcome = 'expired', error = \(message)
            WHERE fencing_token = \(task.fencingToken) AND ended IS NULL
            """)
        let expiries = task.expiries + 1
        let budget = max(options.maxLeaseExpiries, 1)
        try appendJobError(db, jobID: task.jobId, "task \(task.idx) lease expiry \(expiries)/\(budget) on \(workerLabel): \(message)")
        let heartbeated = try db.rows("""
            SELECT 1 FROM attempts WHERE fencing_token = \(task.fencingToken) AND last_heartbeat IS NOT NULL
            """).isEmpty == false
        try noteWorkerExpiry(db, workerID: workerID, counts: !heartbeated, now: now)
        if expiries >= budget {
            try db.execute("""
                UPDATE tasks SET state = 'failed', expiries = \(expiries), last_error = \(message), lease_deadline = NULL
                WHERE id = \(task.id)
                """)
            try failJob(db, jobID: task.jobId,
                        reason: "job failed: task \(task.idx) lost its worker \(expiries) time(s), the limit; last: \(message)", now: now)
        } else {
            let notBefore = now + options.expiryBackoffMs(expiries: expiries)
            let lostBy: String? = workerID.isEmpty ? nil : workerID
            try db.execute("""
                UPDATE tasks SET state = 'queued', expiries = \(expiries), not_before = \(notBefore), lost_by = \(lostBy),
                                 last_error = \(message), lease_deadline = NULL, worker_id = NULL, step = 0, total_steps = 0
                WHERE id = \(task.id)
                """)
        }
    }

    private func noteWorkerExpiry(_ db: PostgresSession, workerID: String, counts: Bool, now: Int64) throws {
        guard !workerID.isEmpty else { return }
        try db.execute("UPDATE workers SET expiries = expiries + 1 WHERE id = \(workerID)")
        guard counts else { return }
        guard let row = try db.rows("""
            UPDATE workers SET expiry_streak = expiry_streak + 1 WHERE id = \(workerID) RETURNING expiry_streak
            """).first else { return }
        let streak = try row["expiry_streak"].decode(Int.self)
        guard streak >= max(options.quarantineAfterExpiries, 1) else { return }
        let doublings = Double(min(streak - max(options.quarantineAfterExpiries, 1), 30))
        let seconds = min(max(options.quarantine, 0) * pow(2, doublings), max(options.quarantineMax, 0))
        let until = now + Int64((seconds * 1000).rounded())
        try db.execute("UPDATE workers SET quarantined_until = GREATEST(quarantined_until, \(until)) WHERE id = \(workerID)")
    }

    func failJob(_ db: PostgresSession, jobID: String, reason: String, now: Int64) throws {
        guard let job = try PostgresCoordinatorStore.job(db, id: jobID, lock: true), !job.state.isFinished else { return }
        try stopUnfinishedTasks(db, jobID: jobID, now: now)
        try appendJobError(db, jobID: jobID, reason)
        try db.execute("UPDATE jobs SET state = 'failed', finished = \(now) WHERE id = \(jobID)")
    }

    func stopUnfinishedTasks(_ db: PostgresSession, jobID: String, now: Int64) throws {
        try db.execute("""
            UPDATE attempts SET ended = \(now), outcome = 'cancelled'
            WHERE ended IS NULL AND task_id IN (SELECT id FROM tasks WHERE job_id = \(jobID) AND state = 'leased')
            """)
        try db.execute("UPDATE tasks SET state = 'cancelled' WHERE job_id = \(jobID) AND state IN ('queued', 'leased')")
    }

    /// Appends to the job's errors (at most `maxJobErrors`), with the job's row locked so two
    /// appends cannot overwrite each other.
    func appendJobError(_ db: PostgresSession, jobID: String, _ message: String) throws {
        guard let job = try PostgresCoordinatorStore.job(db, id: jobID, lock: true) else { return }
        var list = job.errorList
        guard list.count < SQLiteCoordinatorStore.maxJobErrors else { return }
        list.append(SQLiteCoordinatorStore.truncated(message))
        try db.execute("UPDATE jobs SET errors = \(JobRow.encodeErrors(list)) WHERE id = \(jobID)")
    }

    public func failJob(jobID: String, reason: String, now: Int64) throws {
        try write { db in try failJob(db, jobID: jobID, reason: reason, now: now) }
    }

    public func noteJobError(jobID: String, message: String) throws {
        try write { db in
            if try PostgresCoordinatorStore.job(db, id: jobID, lock: true)?.errorList.last != message {
                try appendJobError(db, jobID: jobID, message)
            }
        }
    }
}
#endif
