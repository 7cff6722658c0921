#if PostgreSQL  // the trait (Package.swift); off, the coordinator builds without postgres-nio
import AtelierFarmProtocol
import Foundation
import PostgresNIO

/// `PostgresCoordinatorStore`: the read-only snapshots behind the metrics endpoint and the status
/// page (the same queries as `SQLiteCoordinatorStore+Metrics`).
extension PostgresCoordinatorStore {
    public func metricsSnapshot(finishedAfter cursor: FinishedJobCursor, limit: Int) throws -> StoreMetrics {
        try read { db in
            var m = StoreMetrics()
            m.queue = try db.rows("""
                SELECT state, model, COUNT(*) AS n FROM tasks WHERE state IN ('queued', 'leased')
                GROUP BY state, model ORDER BY model, state
                """).map {
                StoreMetrics.QueueDepth(state: try $0["state"].decode(String.self), model: try $0["model"].decode(String.self),
                                        count: try $0["n"].decode(Int.self))
            }
            for row in try db.rows("SELECT outcome, COUNT(*) AS n FROM attempts GROUP BY outcome") {
                m.attemptOutcomes[try row["outcome"].decode(String.self)] = try row["n"].decode(Int.self)
            }
            m.retries = try PostgresCoordinatorStore.int(db, "SELECT COUNT(*) - COUNT(DISTINCT task_id) FROM attempts")
            m.imagesCompleted = try PostgresCoordinatorStore.int(db, "SELECT COUNT(*) FROM results WHERE kind IN ('image', 'upscaled')")
            for row in try db.rows("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state") {
                m.jobsByState[try row["state"].decode(String.self)] = try row["n"].decode(Int.self)
            }
            let after = cursor.finishedUnixMs, afterID = cursor.jobID, limit = max(limit, 0)
            m.finished = try db.rows("""
                SELECT id, state, created, finished FROM jobs
                WHERE finished IS NOT NULL AND (finished > \(after) OR (finished = \(after) AND id > \(afterID)))
                ORDER BY finished, id LIMIT \(limit)
                """).map {
                StoreMetrics.FinishedJob(jobID: try $0["id"].decode(String.self), state: try $0["state"].decode(String.self),
                                         createdUnixMs: try $0["created"].decode(Int64.self),
                                         finishedUnixMs: try $0["finished"].decode(Int64.self))
            }
            return m
        }
    }

    public func jobRequests(jobIDs: [String]) throws -> [String: Atelier_V1_SubmitJobRequest] {
        guard !jobIDs.isEmpty else { return [:] }
        return try read { db in
            var found = [String: Atelier_V1_SubmitJobRequest]()
            for id in jobIDs {
                if let row = try db.rows("SELECT spec FROM jobs WHERE id = \(id)").first,
                   let request = try? Atelier_V1_SubmitJobRequest(serializedBytes: try row["spec"].decode(Data.self)) {
                    found[id] = request
                }
            }
            return found
        }
    }
}
#endif
