import Foundation
import GRDB

/// What happens when an attempt does not produce a result (fail_task, a rejected result, an
/// expired lease): the error is recorded on the attempt, the task and the job; the task is queued
/// again until it has used `max_attempts`, and then it fails, and with it the job (a batch or an
/// upscale with a hole in it is not a result), cancelling the job's other tasks.
extension Coordinator {
    static let maxJobErrors = 1000
    static let maxErrorLength = 4000

    /// - Parameters:
    ///   - outcome: stored on the attempt: "failed", "rejected" or "expired".
    ///   - countAgainstWorker: explicit failures count towards the worker's failure counter and
    ///     the job's blocklist; expiries do not (the worker may simply have been stopped).
    func recordFailedAttempt(_ db: Database, task: TaskRow, outcome: String, message: String,
                             countAgainstWorker: Bool, now: Int64) throws {
        let message = Coordinator.truncated(message)
        let workerID = task.workerId ?? ""
        let workerLabel = try WorkerRow.fetch(db, id: workerID)?.label ?? (workerID.isEmpty ? "no worker" : workerID)
        try db.execute(sql: "UPDATE attempts SET ended = ?, outcome = ?, error = ? WHERE fencing_token = ? AND ended IS NULL",
                       arguments: [now, outcome, message, task.fencingToken])
        try Coordinator.appendJobError(
            db, jobID: task.jobId, "task \(task.idx) attempt \(task.attempts)/\(task.maxAttempts) on \(workerLabel): \(message)")
        if countAgainstWorker, !workerID.isEmpty {
            try db.execute(sql: "UPDATE workers SET failed = failed + 1 WHERE id = ?", arguments: [workerID])
            try db.execute(sql: """
                INSERT INTO worker_job_failures (worker_id, job_id, count) VALUES (?, ?, 1)
                ON CONFLICT (worker_id, job_id) DO UPDATE SET count = count + 1
                """, arguments: [workerID, task.jobId])
        }
        if task.attempts >= task.maxAttempts {
            try db.execute(sql: "UPDATE tasks SET state = 'failed', last_error = ?, lease_deadline = NULL WHERE id = ?",
                           arguments: [message, task.id])
            try failJob(db, jobID: task.jobId,
                        reason: "job failed: task \(task.idx) failed \(task.attempts) time(s), its limit; last error: \(message)",
                        now: now)
        } else {
            try db.execute(sql: """
                UPDATE tasks SET state = 'queued', last_error = ?, lease_deadline = NULL, worker_id = NULL,
                                 step = 0, total_steps = 0
                WHERE id = ?
                """, arguments: [message, task.id])
        }
    }

    /// Marks a job failed (unless it already finished) and cancels its unfinished tasks; their
    /// workers learn it from their next heartbeat.
    func failJob(_ db: Database, jobID: String, reason: String, now: Int64) throws {
        guard let job = try JobRow.fetch(db, id: jobID), !job.state.isFinished else { return }
        try Coordinator.stopUnfinishedTasks(db, jobID: jobID, now: now)
        try Coordinator.appendJobError(db, jobID: jobID, reason)
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
