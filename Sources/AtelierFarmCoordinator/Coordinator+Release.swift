import AtelierFarmProtocol
import Foundation
import GRDB

/// release_task: a worker that is stopping hands its lease back. The task is queued again at
/// once (no waiting for the lease to expire) and the attempt is not charged: nothing went wrong
/// with the task, so a farm whose workers are restarted often never fails a job for it.
extension Coordinator {
    func releaseTask(_ r: Atelier_V1_ReleaseTaskRequest, request: Atelier_V1_Request,
                     peer: String) throws -> Atelier_V1_Response {
        try recorded(request, peer: peer) { db, now in
            let task = try Coordinator.leasedTask(db, taskID: r.taskID, workerID: r.workerID, token: r.fencingToken)
            try touchWorker(db, id: r.workerID, now: now)
            let reason = Coordinator.truncated(r.reason.isEmpty ? "released by its worker" : r.reason)
            try db.execute(sql: "UPDATE attempts SET ended = ?, outcome = 'released', error = ? WHERE fencing_token = ? AND ended IS NULL",
                           arguments: [now, reason, task.fencingToken])
            try db.execute(sql: """
                UPDATE tasks SET state = 'queued', attempts = MAX(attempts - 1, 0), lease_deadline = NULL, worker_id = NULL,
                                 step = 0, total_steps = 0
                WHERE id = ?
                """, arguments: [task.id])
            return Coordinator.success(.releaseTask(Atelier_V1_ReleaseTaskResponse()))
        }.0
    }
}
