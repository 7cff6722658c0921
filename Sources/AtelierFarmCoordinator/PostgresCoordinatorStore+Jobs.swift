#if PostgreSQL  // the trait (Package.swift); off, the coordinator builds without postgres-nio
import AtelierFarmProtocol
import Foundation
import PostgresNIO

/// `PostgresCoordinatorStore`: submission (the queue cap under an advisory lock), cancellation,
/// job queries, and what the stitcher reads and records.
extension PostgresCoordinatorStore {
    public func submit(_ job: NewJob, now: Int64, log: LoggedRequest,
                       respond: (SubmitOutcome) throws -> Atelier_V1_Response) throws -> Logged<SubmitOutcome> {
        let plan = job.plan
        let spec: Data = try job.request.serializedBytes()
        return try recorded(log, now: now, { db -> SubmitOutcome in
            // Submissions one at a time: the cap is a count over the whole queue.
            try db.execute("SELECT pg_advisory_xact_lock(1, 1)")
            let fits = PostgresCoordinatorStore.sqlFits(mask: "\(plan.acceptedChannels)")
            let channels = try db.rows("""
                SELECT DISTINCT m.unet_in_channels FROM worker_models m WHERE m.model = \(plan.model)
                """).map { try $0["unet_in_channels"].decode(Int64.self) }
            // Scale from zero (see the SQLite store): accepted unpinned, pinned by the first lease.
            if channels.isEmpty && !job.request.requireWorker {
                return try insertJob(db, job, spec: spec, now: now, pin: nil)
            }
            if channels.isEmpty {
                let known = try db.rows("SELECT DISTINCT model FROM worker_models ORDER BY model").map { try $0["model"].decode(String.self) }
                let list = known.isEmpty ? "no worker has registered yet" : "registered models: " + known.joined(separator: ", ")
                throw CoordinatorError(.unknownModel,
                    "no registered worker serves model \"\(plan.model)\" (\(list)); start a worker with --model \(plan.model)=PATH")
            }
            guard channels.contains(where: { ChannelRequirement.fits(plan.acceptedChannels, unetInChannels: $0) }) else {
                throw CoordinatorError(.unknownModel,
                                       ChannelRequirement.mismatch(model: plan.model, channels: channels, accepted: plan.acceptedChannels))
            }
            let aliveSince = now - options.aliveWindowMs
            guard let pin = try db.rows("""
                SELECT m.weights_sha256 AS digest, m.numerics AS numerics, MAX(m.default_side) AS side,
                       SUM(CASE WHEN w.last_seen >= \(aliveSince) THEN 1 ELSE 0 END) AS live
                FROM worker_models m JOIN workers w ON w.id = m.worker_id
                WHERE m.model = \(plan.model) AND \(unescaped: fits)
                GROUP BY m.weights_sha256, m.numerics
                ORDER BY live DESC, digest ASC, numerics ASC
                LIMIT 1
                """).first else {
                throw CoordinatorError(.unknownModel, "no registered worker serves model \"\(plan.model)\"")
            }
            let digest = try pin["digest"].decode(String.self), numerics = try pin["numerics"].decode(String.self)
            let side = try pin["side"].decode(Int.self)
            return try insertJob(db, job, spec: spec, now: now, pin: (digest, numerics, side))
        }, respond: respond)
    }

    public func pendingPinJobs() throws -> [PendingPinJob] {
        try read { db in
            try db.rows("""
                SELECT j.id AS id, j.model AS model, MAX(t.accepted_channels) AS accepted
                FROM jobs j JOIN tasks t ON t.job_id = j.id
                WHERE j.pin_pending AND j.state IN ('queued', 'running')
                GROUP BY j.id, j.model, j.seq ORDER BY j.seq
                """).map { row in
                let model = try row["model"].decode(String.self)
                return PendingPinJob(
                    jobID: try row["id"].decode(String.self), model: model, acceptedChannels: try row["accepted"].decode(Int64.self),
                    registeredChannels: try db.rows("""
                        SELECT DISTINCT unet_in_channels FROM worker_models WHERE model = \(model) ORDER BY 1
                        """).map { try $0["unet_in_channels"].decode(Int64.self) })
            }
        }
    }

    /// Inserts a job and its tasks under the queue cap; `pin` nil: no worker serves the model yet,
    /// so the job is pinned by its first lease and the submitter warned.
    private func insertJob(_ db: PostgresSession, _ job: NewJob, spec: Data, now: Int64,
                           pin: (digest: String, numerics: String, side: Int)?) throws -> SubmitOutcome {
        let plan = job.plan
        let digest = pin?.digest, numerics = pin?.numerics, side = pin?.side ?? 0
        let pending = pin == nil
        let unfinished = try PostgresCoordinatorStore.int(db, "SELECT COUNT(*) FROM tasks WHERE state IN ('queued', 'leased')")
        guard unfinished + plan.tasks.count <= options.maxUnfinishedTasks else {
            throw CoordinatorError.queueFull(unfinished: unfinished, adding: plan.tasks.count, limit: options.maxUnfinishedTasks)
        }
        let expected = try Coordinator.expectedResultSize(job.request, defaultSide: side)
        var jobID = ""
        for _ in 0..<16 {
            let value = UInt64.random(in: 0..<(1 << 48))
            let hex = String(value, radix: 16)
            let candidate = String(repeating: "0", count: 12 - hex.count) + hex
            let inserted = try db.execute("""
                INSERT INTO jobs (id, kind, state, priority, created, spec, max_attempts, task_count, model,
                                  image_width, image_height, tile, overlap, peer, weights_sha256, numerics, default_side,
                                  expected_width, expected_height, expected_exact, pin_pending, owner)
                VALUES (\(candidate), \(plan.kind.rawValue), 'queued', \(Int64(plan.priority)), \(now), \(spec),
                        \(plan.maxAttempts), \(plan.tasks.count), \(plan.model), \(plan.imageWidth), \(plan.imageHeight),
                        \(plan.tile), \(plan.overlap), \(job.peer), \(digest), \(numerics), \(side),
                        \(expected.width), \(expected.height), \(expected.exact), \(pending), \(job.owner))
                ON CONFLICT (id) DO NOTHING
                """)
            if inserted == 1 {
                jobID = candidate
                break
            }
        }
        guard !jobID.isEmpty else { throw CoordinatorError.internalError("could not find an unused job id") }
        for task in plan.tasks {
            try db.execute("""
                INSERT INTO tasks (id, job_id, idx, state, spec, model, accepted_channels, work, max_attempts)
                VALUES (\("\(jobID)-\(task.index)"), \(jobID), \(task.index), 'queued', \(task.spec), \(plan.model),
                        \(plan.acceptedChannels), \(task.work), \(plan.maxAttempts))
                """)
        }
        return SubmitOutcome(jobID: jobID, taskCount: plan.tasks.count,
                             warnings: pending ? [Coordinator.waitingForWorkerWarning(model: plan.model)] : [])
    }

    public func cancel(jobID: String, now: Int64, log: LoggedRequest,
                       respond: (Atelier_V1_JobStatus) throws -> Atelier_V1_Response) throws -> Logged<Atelier_V1_JobStatus> {
        try recorded(log, now: now, { db in
            guard let job = try PostgresCoordinatorStore.job(db, id: jobID, lock: true) else { throw Coordinator.noSuchJob(jobID) }
            if !job.state.isFinished {
                try stopUnfinishedTasks(db, jobID: job.id, now: now)
                try db.execute("UPDATE jobs SET state = 'cancelled', finished = \(now) WHERE id = \(job.id)")
            }
            guard let updated = try PostgresCoordinatorStore.job(db, id: job.id) else { throw Coordinator.noSuchJob(jobID) }
            return try PostgresCoordinatorStore.status(db, job: updated, includeTasks: false)
        }, respond: respond)
    }

    public func jobStatus(jobID: String, includeTasks: Bool) throws -> Atelier_V1_JobStatus {
        try read { db in
            guard let job = try PostgresCoordinatorStore.job(db, id: jobID) else { throw Coordinator.noSuchJob(jobID) }
            return try PostgresCoordinatorStore.status(db, job: job, includeTasks: includeTasks)
        }
    }

    public func listJobs(limit: Int) throws -> [Atelier_V1_JobStatus] {
        try read { db in
            try db.rows("SELECT \(unescaped: JobRow.columns) FROM jobs ORDER BY seq DESC LIMIT \(limit)")
                .map { try PostgresCoordinatorStore.status(db, job: try PostgresCoordinatorStore.jobRow($0), includeTasks: false) }
        }
    }

    public func resultPath(jobID: String, index: Int) throws -> String {
        try read { db -> String in
            guard let job = try PostgresCoordinatorStore.job(db, id: jobID) else { throw Coordinator.noSuchJob(jobID) }
            let kind = try Coordinator.resultKind(of: job.kind, index: index, taskCount: job.taskCount, jobID: job.id)
            if let row = try db.rows("""
                SELECT path FROM results WHERE job_id = \(job.id) AND kind = \(kind.rawValue) AND idx = \(index)
                """).first {
                return try row["path"].decode(String.self)
            }
            switch job.kind {
            case .batch:
                let state = try db.rows("SELECT state FROM tasks WHERE job_id = \(job.id) AND idx = \(index)")
                    .first?["state"].decode(String.self) ?? "unknown"
                throw CoordinatorError.notFound("image \(index) of job \(job.id) is not rendered (task \(state), job \(job.state.rawValue))")
            case .upscale:
                let done = try PostgresCoordinatorStore.int(db, "SELECT COUNT(*) FROM tasks WHERE job_id = \(job.id) AND state = 'done'")
                throw CoordinatorError.notFound(
                    "job \(job.id) is not stitched yet (\(done) of \(job.taskCount) tiles done, job \(job.state.rawValue))")
            }
        }
    }

    static func status(_ db: PostgresSession, job: JobRow, includeTasks: Bool) throws -> Atelier_V1_JobStatus {
        var s = Atelier_V1_JobStatus()
        s.jobID = job.id
        s.state = job.state.proto
        s.kind = job.kind.rawValue
        s.totalTasks = UInt32(clamping: job.taskCount)
        s.doneTasks = UInt32(clamping: try int(db, "SELECT COUNT(*) FROM tasks WHERE job_id = \(job.id) AND state = 'done'"))
        s.priority = job.priority
        s.createdUnixMs = job.created
        s.errors = job.errorList
        s.seamRatio = job.seamRatio ?? 0
        s.weightsSha256 = job.weightsSha256 ?? ""
        s.numerics = job.numerics ?? ""
        s.owner = job.owner
        s.model = job.model
        let resultKind = job.kind == .batch ? ResultStore.Kind.image : .upscaled
        s.resultCount = UInt32(clamping: try int(
            db, "SELECT COUNT(*) FROM results WHERE job_id = \(job.id) AND kind = \(resultKind.rawValue)"))
        if includeTasks {
            s.tasks = try db.rows("SELECT \(unescaped: TaskRow.columns) FROM tasks WHERE job_id = \(job.id) ORDER BY idx")
                .map { try taskRow($0).status }
        }
        return s
    }

    // MARK: Upscales

    public func upscalesAwaitingStitch() throws -> [String] {
        try read { db in
            try db.rows("""
                SELECT id FROM jobs WHERE kind = 'upscale' AND state = 'running'
                  AND NOT EXISTS (SELECT 1 FROM tasks WHERE tasks.job_id = jobs.id AND tasks.state != 'done')
                ORDER BY seq
                """).map { try $0["id"].decode(String.self) }
        }
    }

    public func stitchInputs(jobID: String) throws -> StitchInputs? {
        try read { db -> StitchInputs? in
            guard let job = try PostgresCoordinatorStore.job(db, id: jobID), job.kind == .upscale, job.state == .running,
                  try PostgresCoordinatorStore.int(db, "SELECT COUNT(*) FROM tasks WHERE job_id = \(jobID) AND state != 'done'") == 0
            else { return nil }
            var paths = [Int: String]()
            for row in try db.rows("SELECT idx, path FROM results WHERE job_id = \(jobID) AND kind = 'tile'") {
                paths[try row["idx"].decode(Int.self)] = try row["path"].decode(String.self)
            }
            return StitchInputs(imageWidth: job.imageWidth, imageHeight: job.imageHeight, tile: job.tile,
                                overlap: job.overlap, tilePaths: paths)
        }
    }

    public func recordStitched(jobID: String, path: String, bytes: Int, seamRatio: Double?, now: Int64) throws {
        try write { db in
            guard try PostgresCoordinatorStore.job(db, id: jobID, lock: true)?.state == .running else { return }
            try db.execute("""
                INSERT INTO results (job_id, kind, idx, path, bytes, created) VALUES (\(jobID), 'upscaled', 0, \(path), \(bytes), \(now))
                ON CONFLICT (job_id, kind, idx) DO UPDATE SET path = excluded.path, bytes = excluded.bytes, created = excluded.created
                """)
            try db.execute("UPDATE jobs SET state = 'succeeded', finished = \(now), seam_ratio = \(seamRatio) WHERE id = \(jobID)")
        }
    }

    public func requeueLostTiles(jobID: String, lost: [(index: Int, reason: String)]) throws {
        try write { db in
            _ = try PostgresCoordinatorStore.job(db, id: jobID, lock: true)
            for tile in lost {
                let message = "the stored result of tile \(tile.index) is unusable (\(tile.reason)); rendering it again"
                try db.execute("""
                    UPDATE tasks SET state = 'queued', last_error = \(message), worker_id = NULL, lease_deadline = NULL
                    WHERE job_id = \(jobID) AND idx = \(tile.index) AND state = 'done'
                    """)
                try db.execute("DELETE FROM results WHERE job_id = \(jobID) AND kind = 'tile' AND idx = \(tile.index)")
                try appendJobError(db, jobID: jobID, message)
            }
        }
    }
}
#endif
