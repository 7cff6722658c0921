import AtelierFarmProtocol
import Foundation
import GRDB

/// `SQLiteCoordinatorStore`: submit_job. The model check, the pin, the queue cap and the inserts
/// run in one write transaction, so concurrent submissions cannot together pass the cap.
extension SQLiteCoordinatorStore {
    public func submit(_ job: NewJob, now: Int64, log: LoggedRequest,
                       respond: (SubmitOutcome) throws -> Atelier_V1_Response) throws -> Logged<SubmitOutcome> {
        let plan = job.plan
        let spec: Data = try job.request.serializedBytes()
        return try recorded(log, now: now, { db -> SubmitOutcome in
            // Scale from zero: no worker has ever served the model, so nothing model-specific can be
            // checked or pinned yet. Accepted with a warning (unless require_worker); the first
            // lease pins it (`grant`).
            let waitsForWorker = try !SQLiteCoordinatorStore.modelIsRegistered(db, model: plan.model) && !job.request.requireWorker
            var pin: (weightsSha256: String?, numerics: String?, defaultSide: Int) = (nil, nil, 0)
            if !waitsForWorker {
                try SQLiteCoordinatorStore.checkModelServed(db, model: plan.model, accepted: plan.acceptedChannels)
                let group = try SQLiteCoordinatorStore.pinnedGroup(db, model: plan.model, accepted: plan.acceptedChannels,
                                                                   aliveSince: now - options.aliveWindowMs)
                pin = (group.weightsSha256, group.numerics, group.defaultSide)
            }

            let unfinished = try Int.fetchOne(
                db, sql: "SELECT COUNT(*) FROM tasks WHERE state IN ('queued', 'leased')") ?? 0
            guard unfinished + plan.tasks.count <= options.maxUnfinishedTasks else {
                throw CoordinatorError.queueFull(unfinished: unfinished, adding: plan.tasks.count,
                                                 limit: options.maxUnfinishedTasks)
            }

            let expected = try Coordinator.expectedResultSize(job.request, defaultSide: pin.defaultSide)
            let jobID = try SQLiteCoordinatorStore.newJobID(db)
            try db.execute(sql: """
                INSERT INTO jobs (id, kind, state, priority, created, spec, max_attempts, task_count, model,
                                  image_width, image_height, tile, overlap, peer, weights_sha256, numerics, default_side,
                                  expected_width, expected_height, expected_exact, pin_pending, owner)
                VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [jobID, plan.kind.rawValue, plan.priority, now, spec, plan.maxAttempts,
                                 plan.tasks.count, plan.model, plan.imageWidth, plan.imageHeight,
                                 plan.tile, plan.overlap, job.peer, pin.weightsSha256, pin.numerics, pin.defaultSide,
                                 expected.width, expected.height, expected.exact, waitsForWorker, job.owner])
            let insert = try db.makeStatement(sql: """
                INSERT INTO tasks (id, job_id, idx, state, spec, model, accepted_channels, work, max_attempts)
                VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?)
                """)
            for task in plan.tasks {
                try insert.execute(arguments: ["\(jobID)-\(task.index)", jobID, task.index, task.spec, plan.model,
                                               plan.acceptedChannels, task.work, plan.maxAttempts])
            }
            return SubmitOutcome(jobID: jobID, taskCount: plan.tasks.count,
                                 warnings: waitsForWorker ? [Coordinator.waitingForWorkerWarning(model: plan.model)] : [])
        }, respond: respond)
    }

    public func pendingPinJobs() throws -> [PendingPinJob] {
        try read { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT j.id AS id, j.model AS model, MAX(t.accepted_channels) AS accepted
                FROM jobs j JOIN tasks t ON t.job_id = j.id
                WHERE j.pin_pending = 1 AND j.state IN ('queued', 'running')
                GROUP BY j.id, j.model ORDER BY j.seq
                """)
            return try rows.map { row in
                let model: String = row["model"] ?? ""
                return PendingPinJob(jobID: row["id"] ?? "", model: model, acceptedChannels: row["accepted"] ?? 0,
                                     registeredChannels: try Int64.fetchAll(
                                        db, sql: "SELECT DISTINCT unet_in_channels FROM worker_models WHERE model = ? ORDER BY 1",
                                        arguments: [model]))
            }
        }
    }

    /// Whether any registered worker (alive or not) has listed `model`.
    static func modelIsRegistered(_ db: Database, model: String) throws -> Bool {
        try Int.fetchOne(db, sql: "SELECT 1 FROM worker_models WHERE model = ? LIMIT 1", arguments: [model]) != nil
    }

    /// UNKNOWN_MODEL unless some registered worker (alive or not: workers come and go, and a job
    /// may wait for one) lists the model with a UNet that fits the job's mode.
    static func checkModelServed(_ db: Database, model: String, accepted: Int64) throws {
        let channels = try Int64.fetchAll(
            db, sql: "SELECT DISTINCT unet_in_channels FROM worker_models WHERE model = ?", arguments: [model])
        if channels.isEmpty {
            let known = try String.fetchAll(db, sql: "SELECT DISTINCT model FROM worker_models ORDER BY model")
            let list = known.isEmpty ? "no worker has registered yet" : "registered models: " + known.joined(separator: ", ")
            throw CoordinatorError(.unknownModel,
                "no registered worker serves model \"\(model)\" (\(list)); start a worker with --model \(model)=PATH")
        }
        guard channels.contains(where: { ChannelRequirement.fits(accepted, unetInChannels: $0) }) else {
            throw CoordinatorError(.unknownModel, ChannelRequirement.mismatch(model: model, channels: channels, accepted: accepted))
        }
    }

    /// The (weights digest, numerics) group a new job is pinned to: of the registered workers
    /// serving `model` with a fitting UNet, the group with the most live workers, ties broken by
    /// digest then numerics, so the choice is deterministic. Only that group's workers lease the
    /// job's tasks, so every image and tile of a job comes from the same files and the same
    /// kernels (two workers registering one NAME with different files never mix in a job).
    static func pinnedGroup(_ db: Database, model: String, accepted: Int64,
                            aliveSince: Int64) throws -> (weightsSha256: String, numerics: String, defaultSide: Int) {
        guard let row = try Row.fetchOne(db, sql: """
            SELECT m.weights_sha256 AS digest, m.numerics AS numerics, MAX(m.default_side) AS side,
                   SUM(CASE WHEN w.last_seen >= ? THEN 1 ELSE 0 END) AS live
            FROM worker_models m JOIN workers w ON w.id = m.worker_id
            WHERE m.model = ? AND \(ChannelRequirement.sqlFits(mask: "?"))
            GROUP BY m.weights_sha256, m.numerics
            ORDER BY live DESC, digest ASC, numerics ASC
            LIMIT 1
            """, arguments: [aliveSince, model, accepted]) else {
            throw CoordinatorError(.unknownModel, "no registered worker serves model \"\(model)\"")
        }
        return (row["digest"] ?? "", row["numerics"] ?? "", row["side"] ?? 0)
    }

    /// 12 hex characters (48 random bits), unique among stored jobs: short enough to type,
    /// and safe as a path component.
    static func newJobID(_ db: Database) throws -> String {
        for _ in 0..<16 {
            let value = UInt64.random(in: 0..<(1 << 48))
            let hex = String(value, radix: 16)
            let id = String(repeating: "0", count: 12 - hex.count) + hex
            if try Int.fetchOne(db, sql: "SELECT 1 FROM jobs WHERE id = ?", arguments: [id]) == nil {
                return id
            }
        }
        throw CoordinatorError.internalError("could not find an unused job id")
    }
}
