import AtelierFarmProtocol
import Foundation
import GRDB

/// `SQLiteCoordinatorStore`: leasing, heartbeats, and the expiry of leases whose worker went quiet.
///
/// Exclusive leasing rests on SQLite's single writer: `leaseNext` reads the candidates and grants
/// one in the same write transaction, and no other transaction writes in between.
///
/// Fencing: every lease gets a token from a durable, strictly increasing counter, stored as the
/// task's current token. Heartbeat, complete and fail must present it; once a lease expires and
/// the task is handed out again (new token) or finishes, the old holder is refused with
/// STALE_LEASE, so a task's result is accepted exactly once.
extension SQLiteCoordinatorStore {
    public func leaseNext(worker workerID: String, now: Int64, log: LoggedRequest,
                          respond: (LeaseOutcome) throws -> Atelier_V1_Response) throws -> Logged<LeaseOutcome> {
        try recorded(log, now: now, { db -> LeaseOutcome in
            guard !workerID.isEmpty, let worker = try WorkerRow.fetch(db, id: workerID) else {
                throw CoordinatorError(.unknownWorker,
                    "worker \"\(workerID)\" is not registered (the coordinator may have been reset); send register_worker again")
            }
            try touchWorker(db, id: workerID, now: now)
            try requeueExpiredLeases(db, now: now)
            switch try leaseDecision(db, worker: worker, now: now) {
            case .wait(let retryAfterMs):
                return .wait(retryAfterMs: retryAfterMs)
            case .take(let task):
                return .lease(try grant(db, task: task, to: workerID, now: now))
            }
        }, respond: respond)
    }

    /// What a lease poll gets: a task, or how long to wait.
    private enum LeaseDecision {
        case wait(retryAfterMs: UInt32)
        case take(TaskRow)
    }

    private func leaseDecision(_ db: Database, worker: WorkerRow, now: Int64) throws -> LeaseDecision {
        // Quarantined (its leases kept expiring): nothing until the period is over.
        let quarantine = try Int64.fetchOne(db, sql: "SELECT quarantined_until FROM workers WHERE id = ?",
                                            arguments: [worker.id]) ?? 0
        if quarantine > now {
            return .wait(retryAfterMs: UInt32(clamping: max(min(quarantine - now, 60_000), Int64(options.retryAfterMs))))
        }
        // At most its declared slots at once: a peer that leases in a loop cannot hoard tasks.
        let held = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM tasks WHERE state = 'leased' AND worker_id = ?",
                                    arguments: [worker.id]) ?? 0
        guard held < max(worker.slots, 1), let task = try nextTask(db, for: worker, now: now) else {
            return .wait(retryAfterMs: options.retryAfterMs)
        }
        return .take(task)
    }

    public func idleLeaseWait(worker workerID: String, now: Int64, refreshMs: Int64) throws -> UInt32? {
        try read { db -> UInt32? in
            guard !workerID.isEmpty, let worker = try WorkerRow.fetch(db, id: workerID),
                  worker.lastSeen >= now - refreshMs, worker.lastSeen <= now else { return nil }
            let expired = try Int.fetchOne(
                db, sql: "SELECT 1 FROM tasks WHERE state = 'leased' AND lease_deadline < ? LIMIT 1", arguments: [now])
            guard expired == nil, case .wait(let retryAfterMs) = try leaseDecision(db, worker: worker, now: now) else {
                return nil
            }
            return retryAfterMs
        }
    }

    public func heartbeat(_ claim: LeaseClaim, step: UInt32, totalSteps: UInt32, stepsPerSecond: Double,
                          now: Int64) throws -> HeartbeatOutcome {
        try write { db in
            let task = try SQLiteCoordinatorStore.leasedTask(db, claim, acceptCancelled: true)
            try db.execute(sql: "UPDATE workers SET last_seen = MAX(last_seen, ?), proven = 1, steps_per_second = ? WHERE id = ?",
                           arguments: [now, StepRateBounds.sanitized(stepsPerSecond), claim.workerID])
            try db.execute(sql: "UPDATE attempts SET last_heartbeat = ? WHERE fencing_token = ?",
                           arguments: [now, task.fencingToken])
            if task.state == .cancelled {
                return HeartbeatOutcome(cancel: true, deadlineUnixMs: now)
            }
            // now + TTL, even when that is earlier than the first deadline: a fresh lease's deadline
            // includes the work estimate only to cover the time before the first heartbeat. Once a
            // worker heartbeats (from a timer thread, every TTL/3, whatever the render is doing),
            // liveness keeps the lease, and a worker killed mid-render loses it within one TTL.
            let deadline = now + leaseTTLMs
            let progress = Coordinator.clampedProgress(step: step, total: totalSteps)
            try db.execute(sql: "UPDATE tasks SET lease_deadline = ?, step = ?, total_steps = ? WHERE id = ?",
                           arguments: [deadline, progress.step, progress.total, task.id])
            return HeartbeatOutcome(cancel: false, deadlineUnixMs: deadline)
        }
    }

    public func expireLeases(now: Int64) throws -> Int {
        try write { db in try requeueExpiredLeases(db, now: now) }
    }

    var leaseTTLMs: Int64 { Int64((options.leaseTTL * 1000).rounded()) }

    /// Loads a task and checks that `token` is its current lease held by `workerID`; otherwise
    /// STALE_LEASE (or NOT_FOUND for an unknown task). Cancelled tasks pass only when
    /// `acceptCancelled` (heartbeats, which must learn about the cancellation).
    static func leasedTask(_ db: Database, _ claim: LeaseClaim, acceptCancelled: Bool = false) throws -> TaskRow {
        guard let task = try TaskRow.fetch(db, id: claim.taskID) else {
            throw CoordinatorError.notFound("no task \"\(claim.taskID)\"")
        }
        return try checkClaim(task, claim, acceptCancelled: acceptCancelled)
    }

    /// `task` if `claim` is its current lease held by the claiming worker; otherwise STALE_LEASE
    /// saying why. Shared by every store, so a worker hears the same words from each.
    static func checkClaim(_ task: TaskRow, _ claim: LeaseClaim, acceptCancelled: Bool) throws -> TaskRow {
        let (taskID, workerID, token) = (claim.taskID, claim.workerID, claim.token)
        guard token != 0, token == task.token else {
            throw CoordinatorError.stale(
                "fencing token \(token) is not the current lease of task \(taskID) (current: \(task.token)); "
                + "the lease expired and the task was handed out again. Drop the work")
        }
        guard task.workerId == workerID else {
            throw CoordinatorError.stale("task \(taskID) is not leased to worker \"\(workerID)\"; drop the work")
        }
        switch task.state {
        case .leased:
            return task
        case .cancelled where acceptCancelled:
            return task
        case .cancelled:
            throw CoordinatorError.stale("task \(taskID) was cancelled (its job was cancelled or failed); drop the work")
        case .done:
            throw CoordinatorError.stale("task \(taskID) is already complete; drop the work")
        case .failed:
            throw CoordinatorError.stale("task \(taskID) has failed for good; drop the work")
        case .queued:
            throw CoordinatorError.stale("the lease of task \(taskID) expired and it was queued again; drop the work")
        }
    }

    /// Puts every lease whose deadline has passed back in the queue, with a back-off, without
    /// charging an attempt (or fails its task once its expiry budget is used up: a task that keeps
    /// killing its workers must not loop forever). See `recordExpiredLease`.
    @discardableResult
    func requeueExpiredLeases(_ db: Database, now: Int64) throws -> Int {
        let expired = try TaskRow.fetchAll(
            db, sql: "SELECT \(TaskRow.columns) FROM tasks WHERE state = 'leased' AND lease_deadline < ? ORDER BY lease_deadline",
            arguments: [now])
        for task in expired {
            let late = Double(now - (task.leaseDeadline ?? now)) / 1000
            try recordExpiredLease(
                db, task: task,
                message: String(format: "lease expired (no heartbeat; deadline passed %.1f s ago)", late), now: now)
        }
        return expired.count
    }

    /// A queued task `workerID` may take: highest job priority first, then the oldest job, then
    /// the lowest index; only tasks whose model the worker has, with a fitting UNet, and whose
    /// expiry back-off (`not_before`) has passed.
    ///
    /// The blocklist is soft: a job whose tasks this worker failed `blocklistThreshold` times is
    /// skipped only while another live worker could take the task instead. Otherwise (a farm of
    /// one, or every capable worker blocklisted) the task would wait forever; letting it run
    /// means it either succeeds or exhausts its attempts and fails the job with its errors.
    ///
    /// A task that has lost a lease before goes preferably to a *proven* worker (one that has
    /// heartbeated or completed something): peers that register and lease without ever working
    /// then only ever hold fresh tasks, once each, and cannot starve a job.
    private func nextTask(_ db: Database, for worker: WorkerRow, now: Int64) throws -> TaskRow? {
        let workerID = worker.id
        let candidates = try Row.fetchCursor(db, sql: """
            SELECT t.id, COALESCE(f.count, 0) AS failures
            FROM tasks t
            JOIN jobs j ON j.id = t.job_id
            LEFT JOIN worker_job_failures f ON f.worker_id = ? AND f.job_id = t.job_id
            WHERE t.state = 'queued' AND j.state IN ('queued', 'running') AND t.not_before <= ?
              AND EXISTS (SELECT 1 FROM worker_models m
                          WHERE m.worker_id = ? AND m.model = t.model
                            AND \(ChannelRequirement.sqlFits(mask: "t.accepted_channels"))
                            AND \(SQLiteCoordinatorStore.sqlMatchesPin(job: "j")))
            ORDER BY j.priority DESC, j.seq ASC, t.idx ASC
            """, arguments: [workerID, now, workerID])
        var skippedJobs = [String: Bool]()
        while let row = try candidates.next() {
            let taskID: String = row["id"] ?? ""
            let failures: Int = row["failures"] ?? 0
            guard let task = try TaskRow.fetch(db, id: taskID) else { continue }
            // The worker that lost this task's last lease takes other work first, if someone else
            // could take this one: a crash-looping worker must not keep taking the same task.
            // Only *proven* workers count as "someone else" here, and the one that lost the task is
            // never someone else for the others: so two workers can never both step aside.
            if task.lostBy == workerID,
               try anotherWorkerCouldTake(db, task: task, besides: workerID, now: now, provenOnly: true) {
                continue
            }
            if task.expiries > 0, !worker.proven,
               try anotherWorkerCouldTake(db, task: task, besides: workerID, alsoBesides: task.lostBy ?? "",
                                          now: now, provenOnly: true) {
                continue
            }
            if failures >= options.blocklistThreshold {
                let skip: Bool
                if let known = skippedJobs[task.jobId] {
                    skip = known
                } else {
                    skip = try anotherWorkerCouldTake(db, task: task, besides: workerID, now: now)
                    skippedJobs[task.jobId] = skip
                }
                if skip { continue }
            }
            return task
        }
        return nil
    }

    /// Scale from zero: a job accepted before any worker served its model takes the group of the
    /// worker that leases it first (the model row that made the task a candidate: same name, a
    /// fitting UNet), and the result size that group's default side implies. One writer at a
    /// time in SQLite, so two first leases cannot pin one job differently.
    private func pinOnFirstLease(_ db: Database, task: TaskRow, workerID: String) throws {
        guard let job = try Row.fetchOne(db, sql: "SELECT spec FROM jobs WHERE id = ? AND pin_pending = 1",
                                         arguments: [task.jobId]) else { return }
        guard let model = try Row.fetchOne(db, sql: """
            SELECT weights_sha256, numerics, default_side FROM worker_models m
            WHERE m.worker_id = ? AND m.model = ? AND \(ChannelRequirement.sqlFits(mask: "?"))
            ORDER BY weights_sha256, numerics LIMIT 1
            """, arguments: [workerID, task.model, task.acceptedChannels]) else {
            throw CoordinatorError.internalError("worker \(workerID) leased \(task.id) without a fitting model row")
        }
        let side: Int = model["default_side"] ?? 0
        let spec: Data = job["spec"] ?? Data()
        let expected = try Coordinator.firstLeasePin(jobSpec: spec, defaultSide: side)
        try db.execute(sql: """
            UPDATE jobs SET weights_sha256 = ?, numerics = ?, default_side = ?, expected_width = ?, expected_height = ?,
                            expected_exact = ?, pin_pending = 0
            WHERE id = ?
            """, arguments: [model["weights_sha256"] as String? ?? "", model["numerics"] as String? ?? "", side,
                             expected.width, expected.height, expected.exact, task.jobId])
    }

    /// SQL: the worker model `m` belongs to the group job `job` is pinned to (jobs from before
    /// pinning have none and match any).
    static func sqlMatchesPin(job: String) -> String {
        "(\(job).weights_sha256 IS NULL OR (m.weights_sha256 = \(job).weights_sha256 AND m.numerics = \(job).numerics))"
    }

    /// Whether a live, unquarantined worker other than `workerID` (and, with `provenOnly`, one
    /// that has proved it works) could run `task` and is not blocklisted for its job.
    private func anotherWorkerCouldTake(_ db: Database, task: TaskRow, besides workerID: String, alsoBesides: String = "",
                                        now: Int64, provenOnly: Bool = false) throws -> Bool {
        try Int.fetchOne(db, sql: """
            SELECT 1 FROM workers w JOIN worker_models m ON m.worker_id = w.id JOIN jobs j ON j.id = ?
            WHERE w.id != ? AND w.id != ? AND w.last_seen >= ? AND w.quarantined_until <= ? AND w.proven >= ? AND m.model = ?
              AND \(ChannelRequirement.sqlFits(mask: "?")) AND \(SQLiteCoordinatorStore.sqlMatchesPin(job: "j"))
              AND COALESCE((SELECT count FROM worker_job_failures f WHERE f.worker_id = w.id AND f.job_id = ?), 0) < ?
            LIMIT 1
            """, arguments: [task.jobId, workerID, alsoBesides, now - options.aliveWindowMs, now, provenOnly ? 1 : 0, task.model, task.acceptedChannels,
                             task.jobId, options.blocklistThreshold]) != nil
    }

    /// Leases `task` to `workerID`: a new token, one more attempt, a deadline of TTL plus the
    /// work estimate (steps × output megapixels × `leaseSecondsPerStepMegapixel`).
    private func grant(_ db: Database, task: TaskRow, to workerID: String, now: Int64) throws -> Atelier_V1_Lease {
        let token = try nextFencingToken(db)
        let estimate = max(task.work, 0) * max(options.leaseSecondsPerStepMegapixel, 0) * 1000
        let deadline = now + leaseTTLMs + Int64(min(estimate, 7 * 24 * 3600 * 1000))
        try db.execute(sql: """
            UPDATE tasks SET state = 'leased', attempts = attempts + 1, fencing_token = ?, lease_deadline = ?,
                             worker_id = ?, step = 0, total_steps = 0
            WHERE id = ?
            """, arguments: [Int64(bitPattern: token), deadline, workerID, task.id])
        try db.execute(sql: "INSERT INTO attempts (task_id, fencing_token, worker_id, started) VALUES (?, ?, ?, ?)",
                       arguments: [task.id, Int64(bitPattern: token), workerID, now])
        try db.execute(sql: "UPDATE jobs SET state = 'running' WHERE id = ? AND state = 'queued'", arguments: [task.jobId])
        try pinOnFirstLease(db, task: task, workerID: workerID)

        guard let blob = try Data.fetchOne(db, sql: "SELECT spec FROM tasks WHERE id = ?", arguments: [task.id]) else {
            throw CoordinatorError.internalError("task \(task.id) has no spec")
        }
        var spec = try Atelier_V1_TaskSpec(serializedBytes: blob)
        if let jobBlob = try Data.fetchOne(db, sql: "SELECT spec FROM jobs WHERE id = ?", arguments: [task.jobId]) {
            JobSplitter.hydrate(&spec, from: try Atelier_V1_SubmitJobRequest(serializedBytes: jobBlob))
        }
        var lease = Atelier_V1_Lease()
        lease.taskID = task.id
        lease.jobID = task.jobId
        lease.fencingToken = token
        lease.deadlineUnixMs = deadline
        lease.attempt = UInt32(clamping: task.attempts + 1)
        lease.task = spec
        return lease
    }
}
