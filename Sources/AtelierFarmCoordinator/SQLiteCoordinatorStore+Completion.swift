import AtelierFarmProtocol
import Foundation
import GRDB

/// `SQLiteCoordinatorStore`: complete_task. Exactly once: the claim is checked inside the write
/// transaction that marks the task done, so of two completions only the current token's wins.
extension SQLiteCoordinatorStore {
    public func completionTarget(_ claim: LeaseClaim) throws -> CompletionTarget {
        try read { db in
            let task = try SQLiteCoordinatorStore.leasedTask(db, claim)
            guard let job = try JobRow.fetch(db, id: task.jobId),
                  let blob = try Data.fetchOne(db, sql: "SELECT spec FROM tasks WHERE id = ?", arguments: [task.id]) else {
                throw CoordinatorError.internalError("task \(task.id) has no job or spec")
            }
            return CompletionTarget(taskIndex: task.idx, jobID: job.id, isUpscale: job.kind == .upscale,
                                    spec: try Atelier_V1_TaskSpec(serializedBytes: blob),
                                    expectedWidth: job.expectedWidth, expectedHeight: job.expectedHeight,
                                    expectedExact: job.expectedExact)
        }
    }

    public func complete(_ claim: LeaseClaim, result: StoredResult, file: ResultFileHooks, now: Int64, log: LoggedRequest,
                         respond: (CompletionOutcome) throws -> Atelier_V1_Response) throws -> Logged<CompletionOutcome> {
        try recorded(log, now: now, { db -> CompletionOutcome in
            let current: TaskRow
            do {
                current = try SQLiteCoordinatorStore.leasedTask(db, claim)
            } catch {
                file.refused()
                throw error
            }
            guard let job = try JobRow.fetch(db, id: current.jobId) else {
                throw CoordinatorError.internalError("task \(current.id) has no job")
            }
            // The file is in place before the transaction that records it commits.
            try file.accepted()
            let kind: ResultStore.Kind = job.kind == .batch ? .image : .tile
            try db.execute(sql: "UPDATE tasks SET state = 'done', lease_deadline = NULL, last_error = '', step = total_steps WHERE id = ?",
                           arguments: [current.id])
            try db.execute(sql: "UPDATE attempts SET ended = ?, outcome = 'done' WHERE fencing_token = ?",
                           arguments: [now, current.fencingToken])
            try db.execute(sql: """
                INSERT INTO results (job_id, kind, idx, path, bytes, created) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (job_id, kind, idx) DO UPDATE SET path = excluded.path, bytes = excluded.bytes,
                                                              created = excluded.created
                """, arguments: [job.id, kind.rawValue, current.idx, result.path, result.bytes, now])
            // A completion proves the worker works: its expiry streak (towards quarantine) restarts.
            try db.execute(sql: """
                UPDATE workers SET completed = completed + 1, last_seen = MAX(last_seen, ?), expiry_streak = 0, proven = 1
                WHERE id = ?
                """, arguments: [now, claim.workerID])
            let remaining = try Int.fetchOne(
                db, sql: "SELECT COUNT(*) FROM tasks WHERE job_id = ? AND state != 'done'", arguments: [job.id]) ?? 0
            var allTilesIn = false
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
            return CompletionOutcome(jobID: job.id, allTilesIn: allTilesIn)
        }, respond: respond)
    }
}
