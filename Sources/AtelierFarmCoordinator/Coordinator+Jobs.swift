import AtelierFarmProtocol
import Foundation
import SwiftProtobuf

/// Client requests about jobs: job_status, list_jobs, cancel_job, fetch_result.
extension Coordinator {
    static let defaultListLimit = 50
    static let maxListLimit = 1000

    func jobStatus(_ r: Atelier_V1_JobStatusRequest) throws -> Atelier_V1_Response {
        var body = Atelier_V1_JobStatusResponse()
        body.job = try store.jobStatus(jobID: r.jobID, includeTasks: r.includeTasks)
        return Coordinator.success(.jobStatus(body))
    }

    /// The newest jobs first; `limit` 0 means 50, at most 1000.
    func listJobs(_ r: Atelier_V1_ListJobsRequest) throws -> Atelier_V1_Response {
        let limit = r.limit == 0 ? Coordinator.defaultListLimit : min(Int(r.limit), Coordinator.maxListLimit)
        var body = Atelier_V1_ListJobsResponse()
        body.jobs = try store.listJobs(limit: limit)
        return Coordinator.success(.listJobs(body))
    }

    /// Cancels the job's queued and running tasks: queued ones are never handed out, running ones
    /// get `cancel = true` on their next heartbeat and STALE_LEASE if they complete anyway.
    /// Cancelling a finished job changes nothing and reports its state.
    func cancelJob(_ r: Atelier_V1_CancelJobRequest, request: Atelier_V1_Request,
                   peer: String) throws -> Atelier_V1_Response {
        try store.cancel(jobID: r.jobID, now: unixMilliseconds(now()), log: logged(request, peer: peer)) { status in
            var body = Atelier_V1_CancelJobResponse()
            body.job = status
            return Coordinator.success(.cancelJob(body))
        }.response
    }

    /// A result PNG: batch image `index`, or for an upscale index 0, the stitched image.
    func fetchResult(_ r: Atelier_V1_FetchResultRequest) throws -> Atelier_V1_Response {
        let path = try store.resultPath(jobID: r.jobID, index: Int(r.index))
        guard let bytes = try results.read(path) else {
            throw CoordinatorError.notFound("the result file \(path) is missing from the coordinator directory")
        }
        var body = Atelier_V1_FetchResultResponse()
        body.png = bytes
        body.fileName = (path as NSString).lastPathComponent
        return Coordinator.success(.fetchResult(body))
    }

    /// Which stored result `index` of a job names (batch image, or the stitched upscale at 0);
    /// NOT_FOUND / INVALID for an index the job does not have. Shared by every store.
    static func resultKind(of kind: JobKind, index: Int, taskCount: Int, jobID: String) throws -> ResultStore.Kind {
        switch kind {
        case .batch:
            guard index >= 0, index < taskCount else {
                throw CoordinatorError.notFound(
                    "job \(jobID) has \(taskCount) image(s), indices 0…\(taskCount - 1); there is no image \(index)")
            }
            return .image
        case .upscale:
            guard index == 0 else {
                throw CoordinatorError.invalid("an upscale job has one result, index 0 (the stitched image); got \(index)")
            }
            return .upscaled
        }
    }

    static func noSuchJob(_ id: String) -> CoordinatorError {
        .notFound(id.isEmpty ? "job_id is empty" : "no job \"\(id)\" (list_jobs shows the known ones)")
    }
}
