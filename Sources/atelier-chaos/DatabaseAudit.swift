import Foundation
import GRDB

/// What the coordinator's database says after a run, read with the coordinator stopped:
/// SQLite's own integrity check, and how many times each task was accepted as done (the
/// `attempts` table keeps one row per lease with its outcome), which is how a duplicate
/// acceptance would show even if only one result file survived.
struct DatabaseAudit {
    var integrity: String
    /// Tasks with more than one accepted completion, summed as (completions − 1).
    var extraCompletions: Int
    /// task id → leases granted, for the table's "attempts" figures.
    var attemptsPerTask: [String: Int]
    /// Leases whose outcome was each kind (done, expired, failed, rejected, …).
    var outcomes: [String: Int]

    static func read(databaseAt url: URL) throws -> DatabaseAudit {
        var configuration = Configuration()
        configuration.readonly = true
        let queue = try DatabaseQueue(path: url.path, configuration: configuration)
        defer { try? queue.close() }
        return try queue.read { db in
            let rows = try String.fetchAll(db, sql: "PRAGMA integrity_check")
            let integrity = rows.joined(separator: "; ")
            let extra = try Int.fetchOne(db, sql: """
                SELECT COALESCE(SUM(n - 1), 0) FROM (SELECT COUNT(*) AS n FROM attempts WHERE outcome = 'done' GROUP BY task_id) WHERE n > 1
                """) ?? 0
            var perTask = [String: Int]()
            for row in try Row.fetchAll(db, sql: "SELECT task_id, COUNT(*) AS n FROM attempts GROUP BY task_id") {
                perTask[row["task_id"]] = row["n"]
            }
            var outcomes = [String: Int]()
            for row in try Row.fetchAll(db, sql: "SELECT outcome, COUNT(*) AS n FROM attempts GROUP BY outcome") {
                outcomes[row["outcome"]] = row["n"]
            }
            return DatabaseAudit(integrity: integrity, extraCompletions: extra, attemptsPerTask: perTask, outcomes: outcomes)
        }
    }
}
