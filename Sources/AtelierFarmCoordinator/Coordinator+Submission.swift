import AtelierFarmProtocol
import AtelierImaging
import AtelierRequests
import Foundation
import GRDB
import SwiftProtobuf

/// submit_job: validate and split outside the lock, then check the model and the queue cap and
/// insert the job and its tasks in one transaction.
extension Coordinator {
    func submitJob(_ r: Atelier_V1_SubmitJobRequest, request: Atelier_V1_Request,
                   peer: String) throws -> Atelier_V1_Response {
        let plan = try JobSplitter.plan(r, options: options)
        let spec: Data = try r.serializedBytes()
        return try recorded(request, peer: peer) { db, now in
            try Coordinator.checkModelServed(db, model: plan.model, accepted: plan.acceptedChannels)
            let pin = try Coordinator.pinnedGroup(db, model: plan.model, accepted: plan.acceptedChannels,
                                                  aliveSince: now - aliveWindowMs)

            let unfinished = try Int.fetchOne(
                db, sql: "SELECT COUNT(*) FROM tasks WHERE state IN ('queued', 'leased')") ?? 0
            guard unfinished + plan.tasks.count <= options.maxUnfinishedTasks else {
                throw CoordinatorError(.queueFull,
                    "the queue holds \(unfinished) unfinished tasks; this job adds \(plan.tasks.count), over the limit of "
                    + "\(options.maxUnfinishedTasks). Retry when some have finished, or submit a smaller job")
            }

            let expected = try Coordinator.expectedResultSize(r, defaultSide: pin.defaultSide)
            let jobID = try Coordinator.newJobID(db)
            try db.execute(sql: """
                INSERT INTO jobs (id, kind, state, priority, created, spec, max_attempts, task_count, model,
                                  image_width, image_height, tile, overlap, peer, weights_sha256, numerics, default_side)
                VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [jobID, plan.kind.rawValue, plan.priority, now, spec, plan.maxAttempts,
                                 plan.tasks.count, plan.model, plan.imageWidth, plan.imageHeight,
                                 plan.tile, plan.overlap, peer, pin.weightsSha256, pin.numerics, pin.defaultSide])
            let insert = try db.makeStatement(sql: """
                INSERT INTO tasks (id, job_id, idx, state, spec, model, accepted_channels, work, max_attempts)
                VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?)
                """)
            for task in plan.tasks {
                try insert.execute(arguments: ["\(jobID)-\(task.index)", jobID, task.index, task.spec, plan.model,
                                               plan.acceptedChannels, task.work, plan.maxAttempts])
            }
            try db.execute(sql: "UPDATE jobs SET expected_width = ?, expected_height = ?, expected_exact = ? WHERE id = ?",
                           arguments: [expected.width, expected.height, expected.exact, jobID])
            var body = Atelier_V1_SubmitJobResponse()
            body.jobID = jobID
            body.taskCount = UInt32(plan.tasks.count)
            return Coordinator.success(.submitJob(body))
        }.0
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
            let have = channels.map(String.init).joined(separator: ", ")
            throw CoordinatorError(.unknownModel,
                "model \"\(model)\" is registered with unet_in_channels \(have), but \(ChannelRequirement.modeName(accepted)) "
                + "needs a UNet with \(ChannelRequirement.describe(accepted)) input channels; choose a matching model")
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

    /// The size every image of a batch must have, as the pipeline decides it:
    /// - explicit `width`×`height`: exactly that;
    /// - img2img / depth2img without a size: the init image's size rounded down to the VAE's
    ///   factor, so at most the init image's size (read from its PNG header);
    /// - txt2img / inpainting without a size: the pinned group's `default_image_side`, exactly;
    /// - otherwise (workers that do not report their side): at most 4096×4096, the largest size
    ///   a job may ask for.
    /// Upscale tiles are checked against their tile instead (exactly 4×).
    static func expectedResultSize(_ r: Atelier_V1_SubmitJobRequest,
                                   defaultSide: Int) throws -> (width: Int, height: Int, exact: Bool) {
        guard case .batch(let batch)? = r.job else { return (0, 0, false) }
        let p = batch.params
        let limit = 4096
        if p.width != 0, p.height != 0 { return (Int(p.width), Int(p.height), true) }
        if !p.initImagePng.isEmpty, p.maskPng.isEmpty {
            let header = try FarmRequestValidation.declaredSize(p.initImagePng, .initImage)
            return (p.width != 0 ? Int(p.width) : min(header.width, limit),
                    p.height != 0 ? Int(p.height) : min(header.height, limit), false)
        }
        if defaultSide > 0 {
            return (p.width != 0 ? Int(p.width) : defaultSide, p.height != 0 ? Int(p.height) : defaultSide, true)
        }
        return (p.width != 0 ? Int(p.width) : limit, p.height != 0 ? Int(p.height) : limit, false)
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
