import AtelierFarmProtocol
import Foundation

/// release_task: a worker that is stopping hands its lease back. The task is queued again at
/// once (no waiting for the lease to expire) and the attempt is not charged: nothing went wrong
/// with the task, so a farm whose workers are restarted often never fails a job for it.
extension Coordinator {
    func releaseTask(_ r: Atelier_V1_ReleaseTaskRequest, request: Atelier_V1_Request,
                     peer: String) throws -> Atelier_V1_Response {
        try store.release(LeaseClaim(taskID: r.taskID, workerID: r.workerID, token: r.fencingToken), reason: r.reason,
                          now: unixMilliseconds(now()), log: logged(request, peer: peer)) {
            Coordinator.success(.releaseTask(Atelier_V1_ReleaseTaskResponse()))
        }.response
    }
}
