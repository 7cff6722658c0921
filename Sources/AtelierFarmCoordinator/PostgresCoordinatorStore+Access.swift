#if PostgreSQL  // the trait (Package.swift); off, the coordinator builds without postgres-nio
import AtelierFarmProtocol
import Foundation
import PostgresNIO

/// `PostgresCoordinatorStore`: what access control reads (the token a worker registered with)
/// and drain_worker.
extension PostgresCoordinatorStore {
    public func workerAccess(workerID: String) throws -> WorkerAccess? {
        try read { db in
            try db.rows("SELECT token_name, draining FROM workers WHERE id = \(workerID)").first.map {
                WorkerAccess(tokenName: try $0["token_name"].decode(String.self), draining: try $0["draining"].decode(Bool.self))
            }
        }
    }

    public func drainWorker(workerID: String, now: Int64) throws -> Atelier_V1_WorkerStatus? {
        let found = try write { db in
            try db.execute("UPDATE workers SET draining = TRUE WHERE id = \(workerID)") > 0
        }
        guard found else { return nil }
        return try listWorkers(afterWorkerID: "", limit: Int.max - 1, now: now).workers.first { $0.workerID == workerID }
    }
}
#endif
