import AtelierFarmProtocol
import Foundation
import GRDB
import SwiftProtobuf

/// Client requests about jobs: job_status, list_jobs, cancel_job, fetch_result.
extension Coordinator {
    static let defaultListLimit = 50
    static let maxListLimit = 1000

    func jobStatus(_ r: Atelier_V1_JobStatusRequest) throws -> Atelier_V1_Response {
        let status = try store.read { db -> Atelier_V1_JobStatus in
            guard let job = try JobRow.fetch(db, id: r.jobID) else { throw Coordinator.noSuchJob(r.jobID) }
            return try Coordinator.status(db, job: job, includeTasks: r.includeTasks)
        }
        var body = Atelier_V1_JobStatusResponse()
        body.job = status
        return Coordinator.success(.jobStatus(body))
    }

    /// The newest jobs first; `limit` 0 means 50, at most 1000.
    func listJobs(_ r: Atelier_V1_ListJobsRequest) throws -> Atelier_V1_Response {
        let limit = r.limit == 0 ? Coordinator.defaultListLimit : min(Int(r.limit), Coordinator.maxListLimit)
        let jobs = try store.read { db -> [Atelier_V1_JobStatus] in
            try JobRow.fetchAll(db, sql: "SELECT \(JobRow.columns) FROM jobs ORDER BY seq DESC LIMIT ?", arguments: [limit])
                .map { try Coordinator.status(db, job: $0, includeTasks: false) }
        }
        var body = Atelier_V1_ListJobsResponse()
        body.jobs = jobs
        return Coordinator.success(.listJobs(body))
    }

    /// Cancels the job's queued and running tasks: queued ones are never handed out, running ones
    /// get `cancel = true` on their next heartbeat and STALE_LEASE if they complete anyway.
    /// Cancelling a finished job changes nothing and reports its state.
    func cancelJob(_ r: Atelier_V1_CancelJobRequest, request: Atelier_V1_Request,
                   peer: String) throws -> Atelier_V1_Response {
        try recorded(request, peer: peer) { db, now in
            guard let job = try JobRow.fetch(db, id: r.jobID) else { throw Coordinator.noSuchJob(r.jobID) }
            if !job.state.isFinished {
                try Coordinator.stopUnfinishedTasks(db, jobID: job.id, now: now)
                try db.execute(sql: "UPDATE jobs SET state = 'cancelled', finished = ? WHERE id = ?", arguments: [now, job.id])
            }
            guard let updated = try JobRow.fetch(db, id: job.id) else { throw Coordinator.noSuchJob(r.jobID) }
            var body = Atelier_V1_CancelJobResponse()
            body.job = try Coordinator.status(db, job: updated, includeTasks: false)
            return Coordinator.success(.cancelJob(body))
        }.0
    }

    /// A result PNG: batch image `index`, or for an upscale index 0, the stitched image.
    func fetchResult(_ r: Atelier_V1_FetchResultRequest) throws -> Atelier_V1_Response {
        let path = try store.read { db -> String in
            guard let job = try JobRow.fetch(db, id: r.jobID) else { throw Coordinator.noSuchJob(r.jobID) }
            let kind: ResultStore.Kind
            switch job.kind {
            case .batch:
                guard Int(r.index) < job.taskCount else {
                    throw CoordinatorError.notFound(
                        "job \(job.id) has \(job.taskCount) image(s), indices 0…\(job.taskCount - 1); there is no image \(r.index)")
                }
                kind = .image
            case .upscale:
                guard r.index == 0 else {
                    throw CoordinatorError.invalid("an upscale job has one result, index 0 (the stitched image); got \(r.index)")
                }
                kind = .upscaled
            }
            if let path = try String.fetchOne(
                db, sql: "SELECT path FROM results WHERE job_id = ? AND kind = ? AND idx = ?",
                arguments: [job.id, kind.rawValue, Int64(r.index)]) {
                return path
            }
            throw try Coordinator.notReady(db, job: job, index: Int(r.index))
        }
        guard let bytes = try results.read(path) else {
            throw CoordinatorError.notFound("the result file \(path) is missing from the coordinator directory")
        }
        var body = Atelier_V1_FetchResultResponse()
        body.png = bytes
        body.fileName = (path as NSString).lastPathComponent
        return Coordinator.success(.fetchResult(body))
    }

    private static func notReady(_ db: Database, job: JobRow, index: Int) throws -> CoordinatorError {
        switch job.kind {
        case .batch:
            let state = try String.fetchOne(db, sql: "SELECT state FROM tasks WHERE job_id = ? AND idx = ?",
                                            arguments: [job.id, index]) ?? "unknown"
            return .notFound("image \(index) of job \(job.id) is not rendered (task \(state), job \(job.state.rawValue))")
        case .upscale:
            let done = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM tasks WHERE job_id = ? AND state = 'done'",
                                        arguments: [job.id]) ?? 0
            return .notFound("job \(job.id) is not stitched yet (\(done) of \(job.taskCount) tiles done, job \(job.state.rawValue))")
        }
    }

    static func noSuchJob(_ id: String) -> CoordinatorError {
        .notFound(id.isEmpty ? "job_id is empty" : "no job \"\(id)\" (list_jobs shows the known ones)")
    }

    /// The protocol view of a job.
    static func status(_ db: Database, job: JobRow, includeTasks: Bool) throws -> Atelier_V1_JobStatus {
        var s = Atelier_V1_JobStatus()
        s.jobID = job.id
        s.state = job.state.proto
        s.kind = job.kind.rawValue
        s.totalTasks = UInt32(clamping: job.taskCount)
        s.doneTasks = UInt32(clamping: try Int.fetchOne(
            db, sql: "SELECT COUNT(*) FROM tasks WHERE job_id = ? AND state = 'done'", arguments: [job.id]) ?? 0)
        s.priority = job.priority
        s.createdUnixMs = job.created
        s.errors = job.errorList
        s.seamRatio = job.seamRatio ?? 0
        s.weightsSha256 = job.weightsSha256 ?? ""
        s.numerics = job.numerics ?? ""
        let resultKind = job.kind == .batch ? ResultStore.Kind.image : .upscaled
        s.resultCount = UInt32(clamping: try Int.fetchOne(
            db, sql: "SELECT COUNT(*) FROM results WHERE job_id = ? AND kind = ?",
            arguments: [job.id, resultKind.rawValue]) ?? 0)
        if includeTasks {
            s.tasks = try TaskRow.fetchAll(db, jobID: job.id).map(\.status)
        }
        return s
    }
}
