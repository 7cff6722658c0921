import AtelierFarmProtocol
import Foundation
import GRDB

/// `SQLiteCoordinatorStore`: jobs as clients see them (status, listing, cancel, result paths).
extension SQLiteCoordinatorStore {
    public func jobStatus(jobID: String, includeTasks: Bool) throws -> Atelier_V1_JobStatus {
        try read { db in
            guard let job = try JobRow.fetch(db, id: jobID) else { throw Coordinator.noSuchJob(jobID) }
            return try SQLiteCoordinatorStore.status(db, job: job, includeTasks: includeTasks)
        }
    }

    public func listJobs(limit: Int) throws -> [Atelier_V1_JobStatus] {
        try read { db in
            try JobRow.fetchAll(db, sql: "SELECT \(JobRow.columns) FROM jobs ORDER BY seq DESC LIMIT ?", arguments: [limit])
                .map { try SQLiteCoordinatorStore.status(db, job: $0, includeTasks: false) }
        }
    }

    public func cancel(jobID: String, now: Int64, log: LoggedRequest,
                       respond: (Atelier_V1_JobStatus) throws -> Atelier_V1_Response) throws -> Logged<Atelier_V1_JobStatus> {
        try recorded(log, now: now, { db in
            guard let job = try JobRow.fetch(db, id: jobID) else { throw Coordinator.noSuchJob(jobID) }
            if !job.state.isFinished {
                try SQLiteCoordinatorStore.stopUnfinishedTasks(db, jobID: job.id, now: now)
                try db.execute(sql: "UPDATE jobs SET state = 'cancelled', finished = ? WHERE id = ?", arguments: [now, job.id])
            }
            guard let updated = try JobRow.fetch(db, id: job.id) else { throw Coordinator.noSuchJob(jobID) }
            return try SQLiteCoordinatorStore.status(db, job: updated, includeTasks: false)
        }, respond: respond)
    }

    public func resultPath(jobID: String, index: Int) throws -> String {
        try read { db -> String in
            guard let job = try JobRow.fetch(db, id: jobID) else { throw Coordinator.noSuchJob(jobID) }
            let kind = try Coordinator.resultKind(of: job.kind, index: index, taskCount: job.taskCount, jobID: job.id)
            if let path = try String.fetchOne(
                db, sql: "SELECT path FROM results WHERE job_id = ? AND kind = ? AND idx = ?",
                arguments: [job.id, kind.rawValue, Int64(index)]) {
                return path
            }
            throw try SQLiteCoordinatorStore.notReady(db, job: job, index: index)
        }
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
        s.owner = job.owner
        s.model = job.model
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
