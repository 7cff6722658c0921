import AtelierFarmProtocol
import AtelierImaging
import AtelierRequests
import Foundation
import GRDB
import SwiftProtobuf

/// complete_task and fail_task.
///
/// Exactly once: a result is accepted only with the task's current token while the task is
/// leased, checked inside the write transaction that marks it done. A late completion after the
/// lease was requeued, a second completion after success, or a completion of a cancelled task is
/// refused with STALE_LEASE and its PNG discarded; a *resend* of the accepted request (same
/// request_id) gets the stored success instead.
extension Coordinator {
    func completeTask(_ r: Atelier_V1_CompleteTaskRequest, request: Atelier_V1_Request,
                      peer: String) throws -> Atelier_V1_Response {
        // Cheap check on a snapshot first: stale completions cost no decoding and no disk writes.
        // (The authoritative check is repeated in the transaction.)
        let (task, job, spec) = try store.read { db -> (TaskRow, JobRow, Atelier_V1_TaskSpec) in
            let task = try Coordinator.leasedTask(db, taskID: r.taskID, workerID: r.workerID, token: r.fencingToken)
            guard let job = try JobRow.fetch(db, id: task.jobId),
                  let blob = try Data.fetchOne(db, sql: "SELECT spec FROM tasks WHERE id = ?", arguments: [task.id]) else {
                throw CoordinatorError.internalError("task \(task.id) has no job or spec")
            }
            return (task, job, try Atelier_V1_TaskSpec(serializedBytes: blob))
        }

        if let rejection = validateResult(r.resultPng, spec: spec, job: job) {
            // A bad result is a failed attempt (the worker is told why, and the task is retried).
            return try recorded(request, peer: peer) { db, now in
                let current = try Coordinator.leasedTask(db, taskID: r.taskID, workerID: r.workerID, token: r.fencingToken)
                try touchWorker(db, id: r.workerID, now: now)
                try recordFailedAttempt(db, task: current, outcome: "rejected",
                                        message: "result rejected: \(rejection.message)", now: now)
                return Coordinator.failure(rejection)
            }.0
        }

        let kind: ResultStore.Kind = job.kind == .batch ? .image : .tile
        let path = ResultStore.relativePath(jobID: job.id, kind: kind, index: task.idx)
        let staged = try results.stage(r.resultPng, at: path)
        defer { results.discard(staged) }  // nothing left to remove once committed
        // Into place before the transaction when the name is free (see `ResultStore`), so the
        // writer is not held over the rename and its directory fsync.
        let placement = results.placeIfAbsent(staged)
        completionWillCommit?()

        var allTilesIn = false
        let (response, ran) = try recorded(request, peer: peer) { db, now in
            let current: TaskRow
            do {
                current = try Coordinator.leasedTask(db, taskID: r.taskID, workerID: r.workerID, token: r.fencingToken)
            } catch {
                // Refused after all (the lease was lost or the job cancelled since the snapshot):
                // take back the file placed above, unless a recorded result replaced it.
                if case .placed(let inode) = placement { results.unplace(staged, inode: inode) }
                throw error
            }
            // Either way the file is in place before the transaction that records it commits.
            if placement == .deferred { try results.commit(staged) }
            try db.execute(sql: "UPDATE tasks SET state = 'done', lease_deadline = NULL, last_error = '' WHERE id = ?",
                           arguments: [current.id])
            try db.execute(sql: "UPDATE attempts SET ended = ?, outcome = 'done' WHERE fencing_token = ?",
                           arguments: [now, current.fencingToken])
            try db.execute(sql: """
                INSERT OR REPLACE INTO results (job_id, kind, idx, path, bytes, created) VALUES (?, ?, ?, ?, ?, ?)
                """, arguments: [job.id, kind.rawValue, current.idx, path, staged.bytes, now])
            // A completion proves the worker works: its expiry streak (towards quarantine) restarts.
            try db.execute(sql: """
                UPDATE workers SET completed = completed + 1, last_seen = MAX(last_seen, ?), expiry_streak = 0, proven = 1
                WHERE id = ?
                """, arguments: [now, r.workerID])
            let remaining = try Int.fetchOne(
                db, sql: "SELECT COUNT(*) FROM tasks WHERE job_id = ? AND state != 'done'", arguments: [job.id]) ?? 0
            if remaining == 0 {
                switch job.kind {
                case .batch:
                    try db.execute(sql: """
                        UPDATE jobs SET state = 'succeeded', finished = ? WHERE id = ? AND state IN ('queued', 'running')
                        """, arguments: [now, job.id])
                case .upscale:
                    allTilesIn = true  // stitched after the commit, off the request path
                }
            }
            return Coordinator.success(.completeTask(Atelier_V1_CompleteTaskResponse()))
        }
        if ran && allTilesIn {
            // The worker is answered now; the job turns succeeded when the stitch is written.
            stitchInBackground(job.id)
        }
        return response
    }

    func failTask(_ r: Atelier_V1_FailTaskRequest, request: Atelier_V1_Request,
                  peer: String) throws -> Atelier_V1_Response {
        try recorded(request, peer: peer) { db, now in
            let task = try Coordinator.leasedTask(db, taskID: r.taskID, workerID: r.workerID, token: r.fencingToken)
            try touchWorker(db, id: r.workerID, now: now)
            var message = r.message.trimmingCharacters(in: .whitespacesAndNewlines)
            // Workers used to prefix their name; the job error names the worker already, and the
            // bare error is what tells a deterministic failure (same error, different workers).
            if let name = try WorkerRow.fetch(db, id: r.workerID)?.name, !name.isEmpty, message.hasPrefix(name + ": ") {
                message = String(message.dropFirst(name.count + 2))
            }
            try recordFailedAttempt(db, task: task, outcome: "failed",
                                    message: message.isEmpty ? "the worker gave no reason" : message, now: now)
            return Coordinator.success(.failTask(Atelier_V1_FailTaskResponse()))
        }.0
    }

    /// Why a result cannot be accepted, or nil. The size the PNG *declares* (its IHDR header) is
    /// checked first, before a single pixel is decoded: a 782 KB PNG can declare 16384×16384 and
    /// would make the decoder allocate gigabytes. An upscaled tile must be exactly 4× its tile
    /// (the stitcher needs that); a batch image must have the size fixed at submit
    /// (`expectedResultSize`: exact, or at most). Only then must the PNG decode.
    func validateResult(_ png: Data, spec: Atelier_V1_TaskSpec, job: JobRow) -> CoordinatorError? {
        guard !png.isEmpty else { return .invalid("result_png is empty") }
        guard png.count <= options.maxResultBytes else {
            return .tooLarge("result_png is \(png.count >> 20) MiB, over the limit of \(options.maxResultBytes >> 20) MiB")
        }
        let header: ImageSize
        do {
            header = try PNGHeader.declaredSize(png, source: "result_png")
        } catch {
            return .invalid("result_png: \(error)")
        }
        let declared = "\(header.width)x\(header.height)"
        switch spec.kind {
        case .upscaleTile(let tile)?:
            let w = Int(tile.tile.width) * 4, h = Int(tile.tile.height) * 4
            guard header.width == w, header.height == h else {
                return .invalid("an upscaled tile must be \(w)x\(h) (4x its \(tile.tile.width)x\(tile.tile.height) tile), "
                                + "the PNG declares \(declared)")
            }
        case .image?:
            // Jobs from before the size was fixed at submit: at most the largest size a job may ask for.
            let (w, h) = job.expectedWidth > 0 ? (job.expectedWidth, job.expectedHeight) : (4096, 4096)
            if job.expectedExact {
                guard header.width == w, header.height == h else {
                    return .invalid("the image must be \(w)x\(h), the PNG declares \(declared)")
                }
            } else {
                guard header.width <= w, header.height <= h else {
                    return .invalid("the image may be at most \(w)x\(h), the PNG declares \(declared)")
                }
            }
        case nil:
            return .invalid("the task has no kind; cannot check its result")
        }
        do {
            let decoded = try PNGCodec.decode([UInt8](png), source: "result_png")
            guard decoded.width == header.width, decoded.height == header.height else {
                return .invalid("result_png decodes to \(decoded.width)x\(decoded.height) but declares \(declared)")
            }
        } catch {
            return .invalid("\(error)")
        }
        return nil
    }
}
