import AtelierFarmProtocol
import AtelierFarmTransport
import Foundation
import Logging

/// What the coordinator writes to its log, in one place: one line per state change that matters
/// to an operator (a job accepted or cancelled, a task leased, done, failed or released, a worker
/// registered), each with the ids it is about as metadata (job_id, task_id, worker_id, peer,
/// kind), so JSON logs can be followed per job. Hostile or broken requests (malformed, oversize,
/// wrong version, unauthenticated) and lease expiries are what a misbehaving peer or a flapping
/// farm can produce by the thousand: they go through `noisyLog`, one line per kind per interval
/// with a count of the suppressed ones.
extension Coordinator {
    /// Error codes that mean the peer is broken or hostile rather than a user who mistyped.
    static let hostileCodes: Set<Atelier_V1_ErrorCode> = [.malformed, .unsupportedVersion, .tooLarge, .unauthenticated,
                                                          .permissionDenied]

    /// The job a task id belongs to (`JOBID-INDEX`).
    static func jobID(ofTask taskID: String) -> String {
        guard let dash = taskID.lastIndex(of: "-") else { return "" }
        return String(taskID[..<dash])
    }

    func logOutcome(_ request: Atelier_V1_Request, _ response: Atelier_V1_Response, peer: String) {
        let kind = Coordinator.kindName(request.body)
        var metadata: Logger.Metadata = ["peer": .string(peer), "kind": .string(kind)]
        if response.hasError {
            let code = response.error.code
            if Coordinator.hostileCodes.contains(code) {
                noisyLog.log(logger, .warning, kind: "refused_request.\(code)",
                             "refused a \(kind) request from \(peer): \(response.error.message)", metadata: metadata)
            } else {
                logger.debug("\(kind) refused: \(response.error.message)", metadata: metadata)
            }
            return
        }
        func ids(task taskID: String, worker: String) {
            metadata["task_id"] = .string(taskID)
            metadata["job_id"] = .string(Coordinator.jobID(ofTask: taskID))
            metadata["worker_id"] = .string(worker)
        }
        switch request.body {
        case .submitJob(let r)?:
            metadata["job_id"] = .string(response.submitJob.jobID)
            let model = r.batch.params.model.isEmpty ? r.upscale.params.model : r.batch.params.model
            logger.info("accepted job \(response.submitJob.jobID) (\(response.submitJob.taskCount) task(s), model \(model))",
                        metadata: metadata)
        case .leaseTask(let r)? where response.leaseTask.hasLease:
            ids(task: response.leaseTask.lease.taskID, worker: r.workerID)
            logger.info("leased \(response.leaseTask.lease.taskID) to \(r.workerID) (attempt \(response.leaseTask.lease.attempt))",
                        metadata: metadata)
        case .completeTask(let r)?:
            ids(task: r.taskID, worker: r.workerID)
            logger.info("\(r.taskID) done by \(r.workerID)", metadata: metadata)
        case .failTask(let r)?:
            ids(task: r.taskID, worker: r.workerID)
            logger.warning("\(r.taskID) failed on \(r.workerID): \(r.message)", metadata: metadata)
        case .releaseTask(let r)?:
            ids(task: r.taskID, worker: r.workerID)
            logger.info("\(r.taskID) handed back by \(r.workerID) (\(r.reason))", metadata: metadata)
        case .cancelJob(let r)?:
            metadata["job_id"] = .string(r.jobID)
            logger.info("cancelled job \(r.jobID)", metadata: metadata)
        case .registerWorker(let r)?:
            metadata["worker_id"] = .string(response.registerWorker.workerID)
            let models = r.capabilities.models.map(\.name).joined(separator: ", ")
            logger.info("registered worker \(response.registerWorker.workerID) (\(r.workerName)) serving \(models)",
                        metadata: metadata)
        case .heartbeat(let r)?:
            ids(task: r.taskID, worker: r.workerID)
            logger.trace("heartbeat \(r.taskID) step \(r.step)/\(r.totalSteps)", metadata: metadata)
        default:
            break
        }
    }

    /// Bytes that are not a `Request` at all.
    func logMalformed(bytes: Int, peer: String) {
        logRefusal(.malformed, "the \(bytes)-byte message is not an atelier.v1.Request", peer: peer)
    }

    /// A message the transport answered with an error before it reached `handle` (malformed,
    /// wrong version, reply too large): pass this to `RequestServer.serve(refused:)`.
    public func logRefusal(_ code: Atelier_V1_ErrorCode, _ message: String, peer: String) {
        noisyLog.log(logger, .warning, kind: "refused_request.\(code)", "refused a message from \(peer): \(message)",
                     metadata: ["peer": .string(peer), "kind": "unparsed"])
    }

    /// Leases requeued by maintenance because their worker went silent.
    func logExpiries(_ count: Int) {
        guard count > 0 else { return }
        noisyLog.log(logger, .warning, kind: "lease_expired",
                     "requeued \(count) expired lease(s): their workers stopped heartbeating")
    }
}
