import AtelierFarmProtocol
import Foundation
import GRDB

/// `SQLiteCoordinatorStore`: what access control reads (the token a worker registered with) and
/// drain_worker.
extension SQLiteCoordinatorStore {
    public func workerAccess(workerID: String) throws -> WorkerAccess? {
        try read { db in
            try Row.fetchOne(db, sql: "SELECT token_name, draining FROM workers WHERE id = ?", arguments: [workerID])
                .map { WorkerAccess(tokenName: $0["token_name"] ?? "", draining: ($0["draining"] as Int64? ?? 0) != 0) }
        }
    }

    public func drainWorker(workerID: String, now: Int64) throws -> Atelier_V1_WorkerStatus? {
        let found = try write { db -> Bool in
            try db.execute(sql: "UPDATE workers SET draining = 1 WHERE id = ?", arguments: [workerID])
            return db.changesCount > 0
        }
        guard found else { return nil }
        return try listWorkers(afterWorkerID: "", limit: Int.max - 1, now: now).workers.first { $0.workerID == workerID }
    }
}
