#if PostgreSQL  // the trait (Package.swift); off, the coordinator builds without postgres-nio
import AtelierFarmProtocol
import Foundation
import PostgresNIO

/// `PostgresCoordinatorStore`: leasing, heartbeats and expiry. The same policy as the SQLite store
/// (`SQLiteCoordinatorStore+Leasing`), made safe for concurrent transactions by row locks: the
/// worker's row, then candidate tasks taken with `FOR UPDATE OF t SKIP LOCKED`.
extension PostgresCoordinatorStore {
    public func leaseNext(worker workerID: String, now: Int64, log: LoggedRequest,
                          respond: (LeaseOutcome) throws -> Atelier_V1_Response) throws -> Logged<LeaseOutcome> {
        try recorded(log, now: now, { db -> LeaseOutcome in
            // The worker's row first: its own concurrent polls queue here, so its slots hold.
            guard !workerID.isEmpty, let worker = try PostgresCoordinatorStore.worker(db, id: workerID, lock: true) else {
                throw CoordinatorError(.unknownWorker,
                    "worker \"\(workerID)\" is not registered (the coordinator may have been reset); send register_worker again")
            }
            try touchWorker(db, id: workerID, now: now)
            try requeueExpiredLeases(db, now: now)
            if let wait = try waitReason(db, worker: worker, now: now) { return .wait(retryAfterMs: wait) }
            guard let task = try nextTask(db, for: worker, now: now, lock: true),
                  try pinOnFirstLease(db, task: task, workerID: workerID) else {
                return .wait(retryAfterMs: options.retryAfterMs)
            }
            return .lease(try grant(db, task: task, to: workerID, now: now))
        }, respond: respond)
    }

    /// Quarantine or full slots: how long to wait; nil when the worker may take a task.
    private func waitReason(_ db: PostgresSession, worker: WorkerRow, now: Int64) throws -> UInt32? {
        if worker.quarantinedUntil > now {
            return UInt32(clamping: max(min(worker.quarantinedUntil - now, 60_000), Int64(options.retryAfterMs)))
        }
        let held = try PostgresCoordinatorStore.int(
            db, "SELECT COUNT(*) FROM tasks WHERE state = 'leased' AND worker_id = \(worker.id)")
        return held < max(worker.slots, 1) ? nil : options.retryAfterMs
    }

    public func idleLeaseWait(worker workerID: String, now: Int64, refreshMs: Int64) throws -> UInt32? {
        try read { db -> UInt32? in
            guard !workerID.isEmpty, let worker = try PostgresCoordinatorStore.worker(db, id: workerID),
                  worker.lastSeen >= now - refreshMs, worker.lastSeen <= now else { return nil }
            let expired = try db.rows("SELECT 1 FROM tasks WHERE state = 'leased' AND lease_deadline < \(now) LIMIT 1")
            guard expired.isEmpty else { return nil }
            if let wait = try waitReason(db, worker: worker, now: now) { return wait }
            return try nextTask(db, for: worker, now: now, lock: false) == nil ? options.retryAfterMs : nil
        }
    }

    public func heartbeat(_ claim: LeaseClaim, step: UInt32, totalSteps: UInt32, stepsPerSecond: Double,
                          now: Int64) throws -> HeartbeatOutcome {
        try write { db in
            let task = try PostgresCoordinatorStore.leasedTask(db, claim, acceptCancelled: true)
            let rate = StepRateBounds.sanitized(stepsPerSecond)
            try db.execute("""
                UPDATE workers SET last_seen = GREATEST(last_seen, \(now)), proven = TRUE, steps_per_second = \(rate)
                WHERE id = \(claim.workerID)
                """)
            try db.execute("UPDATE attempts SET last_heartbeat = \(now) WHERE fencing_token = \(task.fencingToken)")
            if task.state == .cancelled { return HeartbeatOutcome(cancel: true, deadlineUnixMs: now) }
            let deadline = now + options.leaseTTLMs
            let progress = Coordinator.clampedProgress(step: step, total: totalSteps)
            try db.execute("""
                UPDATE tasks SET lease_deadline = \(deadline), step = \(progress.step), total_steps = \(progress.total)
                WHERE id = \(task.id)
                """)
            return HeartbeatOutcome(cancel: false, deadlineUnixMs: deadline)
        }
    }

    public func expireLeases(now: Int64) throws -> Int {
        try write { db in try requeueExpiredLeases(db, now: now) }
    }

    /// Locks and checks a claim (see `SQLiteCoordinatorStore.leasedTask`, same refusals).
    static func leasedTask(_ db: PostgresSession, _ claim: LeaseClaim, acceptCancelled: Bool = false) throws -> TaskRow {
        guard let task = try task(db, id: claim.taskID, lock: true) else {
            throw CoordinatorError.notFound("no task \"\(claim.taskID)\"")
        }
        return try SQLiteCoordinatorStore.checkClaim(task, claim, acceptCancelled: acceptCancelled)
    }

    /// Requeues (or fails, past their budget) the leases whose deadline passed; leases another
    /// transaction is working on are skipped (it will decide them).
    @discardableResult
    func requeueExpiredLeases(_ db: PostgresSession, now: Int64) throws -> Int {
        let expired = try db.rows("""
            SELECT \(unescaped: TaskRow.columns) FROM tasks WHERE state = 'leased' AND lease_deadline < \(now)
            ORDER BY lease_deadline FOR UPDATE SKIP LOCKED
            """).map(PostgresCoordinatorStore.taskRow)
        for task in expired {
            let late = Double(now - (task.leaseDeadline ?? now)) / 1000
            try recordExpiredLease(db, task: task,
                                   message: String(format: "lease expired (no heartbeat; deadline passed %.1f s ago)", late), now: now)
        }
        return expired.count
    }

    /// The next task `worker` may take (the policy of `SQLiteCoordinatorStore.nextTask`). With
    /// `lock`, candidates are locked with SKIP LOCKED: a task another leaser is deciding on is
    /// not even seen, so two leasers can never pick the same one.
    private func nextTask(_ db: PostgresSession, for worker: WorkerRow, now: Int64, lock: Bool) throws -> TaskRow? {
        var offset = 0
        let page = 64
        var skippedJobs = [String: Bool]()
        while true {
            let candidates = try db.rows("""
                SELECT \(unescaped: TaskRow.columns.split(separator: ",").map { "t." + $0.trimmingCharacters(in: .whitespacesAndNewlines) }.joined(separator: ", ")),
                       COALESCE(f.count, 0) AS blocked
                FROM tasks t
                JOIN jobs j ON j.id = t.job_id
                LEFT JOIN worker_job_failures f ON f.worker_id = \(worker.id) AND f.job_id = t.job_id
                WHERE t.state = 'queued' AND j.state IN ('queued', 'running') AND t.not_before <= \(now)
                  AND EXISTS (SELECT 1 FROM worker_models m
                              WHERE m.worker_id = \(worker.id) AND m.model = t.model
                                AND \(unescaped: PostgresCoordinatorStore.sqlFits(mask: "t.accepted_channels"))
                                AND \(unescaped: PostgresCoordinatorStore.sqlMatchesPin(job: "j")))
                ORDER BY j.priority DESC, j.seq ASC, t.idx ASC
                LIMIT \(page) OFFSET \(offset)
                \(unescaped: lock ? "FOR UPDATE OF t SKIP LOCKED" : "")
                """)
            for row in candidates {
                let task = try PostgresCoordinatorStore.taskRow(row)
                let failures = try row["blocked"].decode(Int.self)
                if task.lostBy == worker.id,
                   try anotherWorkerCouldTake(db, task: task, besides: worker.id, now: now, provenOnly: true) {
                    continue
                }
                if task.expiries > 0, !worker.proven,
                   try anotherWorkerCouldTake(db, task: task, besides: worker.id, alsoBesides: task.lostBy ?? "",
                                              now: now, provenOnly: true) {
                    continue
                }
                if failures >= options.blocklistThreshold {
                    let skip: Bool
                    if let known = skippedJobs[task.jobId] {
                        skip = known
                    } else {
                        skip = try anotherWorkerCouldTake(db, task: task, besides: worker.id, now: now)
                        skippedJobs[task.jobId] = skip
                    }
                    if skip { continue }
                }
                return task
            }
            guard candidates.count == page else { return nil }
            offset += page
        }
    }

    private func anotherWorkerCouldTake(_ db: PostgresSession, task: TaskRow, besides workerID: String, alsoBesides: String = "",
                                        now: Int64, provenOnly: Bool = false) throws -> Bool {
        let aliveSince = now - options.aliveWindowMs
        return try !db.rows("""
            SELECT 1 FROM workers w JOIN worker_models m ON m.worker_id = w.id JOIN jobs j ON j.id = \(task.jobId)
            WHERE w.id != \(workerID) AND w.id != \(alsoBesides) AND w.last_seen >= \(aliveSince)
              AND w.quarantined_until <= \(now) AND (w.proven OR NOT \(provenOnly)) AND m.model = \(task.model)
              AND \(unescaped: PostgresCoordinatorStore.sqlFits(mask: "\(task.acceptedChannels)"))
              AND \(unescaped: PostgresCoordinatorStore.sqlMatchesPin(job: "j"))
              AND COALESCE((SELECT count FROM worker_job_failures f WHERE f.worker_id = w.id AND f.job_id = \(task.jobId)), 0)
                  < \(options.blocklistThreshold)
            LIMIT 1
            """).isEmpty
    }

    /// Scale from zero (see the SQLite store's `pinOnFirstLease`): pins a job accepted before any
    /// worker served its model to the leasing worker's group. The job row is locked first, so of
    /// two first leases of one job in concurrent transactions the second sees the first's pin;
    /// false when that pin is not this worker's group (it then waits and asks again).
    private func pinOnFirstLease(_ db: PostgresSession, task: TaskRow, workerID: String) throws -> Bool {
        // Locked only while unpinned: leases of a pinned job must not queue behind each other.
        guard let peek = try db.rows("SELECT pin_pending FROM jobs WHERE id = \(task.jobId)").first else { return false }
        let lock = try peek["pin_pending"].decode(Bool.self) ? "FOR UPDATE" : ""
        guard let job = try db.rows("""
            SELECT pin_pending, weights_sha256, numerics, spec FROM jobs WHERE id = \(task.jobId) \(unescaped: lock)
            """).first else { return false }
        let fits = PostgresCoordinatorStore.sqlFits(mask: "\(task.acceptedChannels)")
        guard try job["pin_pending"].decode(Bool.self) else {
            guard let digest = try job["weights_sha256"].decode(String?.self) else { return true }  // unpinned (old job)
            let numerics = try job["numerics"].decode(String?.self) ?? ""
            return try !db.rows("""
                SELECT 1 FROM worker_models m WHERE m.worker_id = \(workerID) AND m.model = \(task.model)
                  AND m.weights_sha256 = \(digest) AND m.numerics = \(numerics) AND \(unescaped: fits)
                """).isEmpty
        }
        guard let model = try db.rows("""
            SELECT weights_sha256, numerics, default_side FROM worker_models m
            WHERE m.worker_id = \(workerID) AND m.model = \(task.model) AND \(unescaped: fits)
            ORDER BY weights_sha256, numerics LIMIT 1
            """).first else { return false }
        let side = try model["default_side"].decode(Int.self)
        let expected = try Coordinator.firstLeasePin(jobSpec: try job["spec"].decode(Data.self), defaultSide: side)
        try db.execute("""
            UPDATE jobs SET weights_sha256 = \(try model["weights_sha256"].decode(String.self)),
                            numerics = \(try model["numerics"].decode(String.self)), default_side = \(side),
                            expected_width = \(expected.width), expected_height = \(expected.height),
                            expected_exact = \(expected.exact), pin_pending = FALSE
            WHERE id = \(task.jobId)
            """)
        return true
    }

    private func grant(_ db: PostgresSession, task: TaskRow, to workerID: String, now: Int64) throws -> Atelier_V1_Lease {
        guard let tokenRow = try db.rows("SELECT nextval('atelier_fencing_token') AS token").first else {
            throw CoordinatorError.internalError("the fencing token sequence gave no value")
        }
        let token = try tokenRow["token"].decode(Int64.self)
        let estimate = max(task.work, 0) * max(options.leaseSecondsPerStepMegapixel, 0) * 1000
        let deadline = now + options.leaseTTLMs + Int64(min(estimate, 7 * 24 * 3600 * 1000))
        try db.execute("""
            UPDATE tasks SET state = 'leased', attempts = attempts + 1, fencing_token = \(token), lease_deadline = \(deadline),
                             worker_id = \(workerID), step = 0, total_steps = 0
            WHERE id = \(task.id)
            """)
        try db.execute("""
            INSERT INTO attempts (task_id, fencing_token, worker_id, started) VALUES (\(task.id), \(token), \(workerID), \(now))
            """)
        try db.execute("UPDATE jobs SET state = 'running' WHERE id = \(task.jobId) AND state = 'queued'")
        guard let specRow = try db.rows("SELECT spec FROM tasks WHERE id = \(task.id)").first else {
            throw CoordinatorError.internalError("task \(task.id) has no spec")
        }
        var spec = try Atelier_V1_TaskSpec(serializedBytes: try specRow["spec"].decode(Data.self))
        if let jobRow = try db.rows("SELECT spec FROM jobs WHERE id = \(task.jobId)").first {
            JobSplitter.hydrate(&spec, from: try Atelier_V1_SubmitJobRequest(serializedBytes: try jobRow["spec"].decode(Data.self)))
        }
        var lease = Atelier_V1_Lease()
        lease.taskID = task.id
        lease.jobID = task.jobId
        lease.fencingToken = UInt64(bitPattern: token)
        lease.deadlineUnixMs = deadline
        lease.attempt = UInt32(clamping: task.attempts + 1)
        lease.task = spec
        return lease
    }

    func touchWorker(_ db: PostgresSession, id: String, now: Int64) throws {
        try db.execute("UPDATE workers SET last_seen = GREATEST(last_seen, \(now)) WHERE id = \(id)")
    }
}
#endif
