import AtelierFarmProtocol
import Foundation
import GRDB

/// `SQLiteCoordinatorStore`: the read-only snapshots behind the metrics endpoint and the status page.
extension SQLiteCoordinatorStore {
    public func metricsSnapshot(finishedAfter cursor: FinishedJobCursor, limit: Int) throws -> StoreMetrics {
        try read { db in
            var m = StoreMetrics()
            m.queue = try Row.fetchAll(db, sql: """
                SELECT state, model, COUNT(*) AS n FROM tasks WHERE state IN ('queued', 'leased')
                GROUP BY state, model ORDER BY model, state
                """).map { StoreMetrics.QueueDepth(state: $0["state"], model: $0["model"], count: $0["n"]) }
            for row in try Row.fetchAll(db, sql: "SELECT outcome, COUNT(*) AS n FROM attempts GROUP BY outcome") {
                m.attemptOutcomes[row["outcome"]] = row["n"]
            }
            m.retries = try Int.fetchOne(db, sql: "SELECT COUNT(*) - COUNT(DISTINCT task_id) FROM attempts") ?? 0
            m.imagesCompleted = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM results WHERE kind IN ('image', 'upscaled')") ?? 0
            for row in try Row.fetchAll(db, sql: "SELECT state, COUNT(*) AS n FROM jobs GROUP BY state") {
                m.jobsByState[row["state"]] = row["n"]
            }
            m.finished = try Row.fetchAll(db, sql: """
                SELECT id, state, created, finished FROM jobs
                WHERE finished IS NOT NULL AND (finished > ? OR (finished = ? AND id > ?))
                ORDER BY finished, id LIMIT ?
                """, arguments: [cursor.finishedUnixMs, cursor.finishedUnixMs, cursor.jobID, max(limit, 0)]).map {
                StoreMetrics.FinishedJob(jobID: $0["id"], state: $0["state"], createdUnixMs: $0["created"],
                                         finishedUnixMs: $0["finished"])
            }
            return m
        }
    }

    public func jobRequests(jobIDs: [String]) throws -> [String: Atelier_V1_SubmitJobRequest] {
        guard !jobIDs.isEmpty else { return [:] }
        return try read { db in
            var found = [String: Atelier_V1_SubmitJobRequest]()
            for id in jobIDs {
                if let spec = try Data.fetchOne(db, sql: "SELECT spec FROM jobs WHERE id = ?", arguments: [id]),
                   let request = try? Atelier_V1_SubmitJobRequest(serializedBytes: spec) {
                    found[id] = request
                }
            }
            return found
        }
    }
}
