#if PostgreSQL  // the trait (Package.swift); off, the coordinator builds without postgres-nio
import AtelierFarmProtocol
import Foundation
import PostgresNIO

/// `PostgresCoordinatorStore`: worker registration, listing and pruning (the policy of
/// `SQLiteCoordinatorStore+Workers`). Registrations are serialised on an advisory lock: taking
/// back a quiet worker's row by name must not hand one row to two restarted workers.
extension PostgresCoordinatorStore {
    public func registerWorker(_ registration: WorkerRegistration, now: Int64, log: LoggedRequest,
                               respond: (String) throws -> Atelier_V1_Response) throws -> Logged<String> {
        let capabilities = registration.capabilities
        let capabilityBytes: Data = try capabilities.serializedBytes()
        let slots = max(registration.slots, 1)
        return try recorded(log, now: now, { db -> String in
            try db.execute("SELECT pg_advisory_xact_lock(1, 2)")
            try pruneWorkers(db, now: now)
            var id = registration.workerID
            var known = id.isEmpty ? nil : try PostgresCoordinatorStore.worker(db, id: id, lock: true)
            var name = registration.name.isEmpty ? capabilities.hostname : registration.name
            if known == nil, !name.isEmpty {
                let quietSince = now - options.aliveWindowMs
                known = try db.rows("""
                    SELECT \(unescaped: PostgresCoordinatorStore.workerColumns.split(separator: ",").map { "w." + $0.trimmingCharacters(in: .whitespacesAndNewlines) }.joined(separator: ", "))
                    FROM workers w
                    WHERE w.name = \(name) AND w.last_seen < \(quietSince)
                      AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.state = 'leased' AND t.worker_id = w.id)
                    ORDER BY w.last_seen DESC LIMIT 1
                    """).first.map(PostgresCoordinatorStore.workerRow).flatMap { row in
                        let caps = try? Atelier_V1_WorkerCapabilities(serializedBytes: row.capabilities)
                        return caps?.hostname == capabilities.hostname ? row : nil
                    }
                if let known { id = known.id }
            }
            if known == nil { id = UUID().uuidString.lowercased() }
            if name.isEmpty { name = "worker-\(id.prefix(8))" }
            if known != nil {
                try db.execute("""
                    UPDATE workers SET name = \(name), capabilities = \(capabilityBytes), last_seen = \(now), slots = \(slots),
                                       token_name = \(registration.tokenName), draining = FALSE
                    WHERE id = \(id)
                    """)
            } else {
                try db.execute("""
                    INSERT INTO workers (id, name, capabilities, registered, last_seen, slots, token_name)
                    VALUES (\(id), \(name), \(capabilityBytes), \(now), \(now), \(slots), \(registration.tokenName))
                    """)
            }
            try db.execute("DELETE FROM worker_models WHERE worker_id = \(id)")
            for model in capabilities.models {
                try db.execute("""
                    INSERT INTO worker_models (worker_id, model, unet_in_channels, weights_sha256, numerics, default_side)
                    VALUES (\(id), \(model.name), \(Int64(model.unetInChannels)), \(model.weightsSha256.lowercased()),
                            \(capabilities.numerics), \(Int64(model.defaultImageSide)))
                    """)
            }
            try releaseLeasesOutsidePin(db, workerID: id, now: now)
            return id
        }, respond: respond)
    }

    private func releaseLeasesOutsidePin(_ db: PostgresSession, workerID: String, now: Int64) throws {
        let tasks = try db.rows("""
            SELECT t.id, t.fencing_token FROM tasks t JOIN jobs j ON j.id = t.job_id
            WHERE t.state = 'leased' AND t.worker_id = \(workerID) AND j.weights_sha256 IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM worker_models m
                              WHERE m.worker_id = t.worker_id AND m.model = t.model
                                AND m.weights_sha256 = j.weights_sha256 AND m.numerics = j.numerics)
            FOR UPDATE OF t
            """)
        for row in tasks {
            let taskID = try row["id"].decode(String.self)
            let token = try row["fencing_token"].decode(Int64.self)
            try db.execute("""
                UPDATE attempts SET ended = \(now), outcome = 'released',
                                    error = 'the worker registered again with other weights or numerics than the job is pinned to'
                WHERE fencing_token = \(token) AND ended IS NULL
                """)
            try db.execute("""
                UPDATE tasks SET state = 'queued', attempts = GREATEST(attempts - 1, 0), lease_deadline = NULL, worker_id = NULL,
                                 step = 0, total_steps = 0
                WHERE id = \(taskID)
                """)
        }
    }

    public func listWorkers(afterWorkerID: String, limit: Int, now nowMs: Int64) throws -> (workers: [Atelier_V1_WorkerStatus], more: Bool) {
        let aliveSince = nowMs - options.aliveWindowMs
        return try read { db in
            var rows = try db.rows("""
                SELECT \(unescaped: PostgresCoordinatorStore.workerColumns) FROM workers WHERE id > \(afterWorkerID)
                ORDER BY id LIMIT \(limit + 1)
                """).map(PostgresCoordinatorStore.workerRow)
            var more = false
            if rows.count > limit {
                more = true
                rows.removeLast()
            }
            var current = [String: String]()
            var held = [String: Int]()
            for row in try db.rows("""
                SELECT worker_id, id FROM tasks WHERE state = 'leased' AND worker_id IS NOT NULL ORDER BY lease_deadline
                """) {
                let worker = try row["worker_id"].decode(String.self)
                current[worker] = try row["id"].decode(String.self)
                held[worker, default: 0] += 1
            }
            let draining = Set(try db.rows("SELECT id FROM workers WHERE draining").map { try $0["id"].decode(String.self) })
            // The step rates, read apart from `WorkerRow` (a column of a later migration).
            var rates = [String: Double]()
            if let first = rows.first?.id, let last = rows.last?.id {
                for row in try db.rows("SELECT id, steps_per_second FROM workers WHERE id >= \(first) AND id <= \(last)") {
                    rates[try row["id"].decode(String.self)] = try row["steps_per_second"].decode(Double.self)
                }
            }
            let workers = rows.map { row in
                var status = Atelier_V1_WorkerStatus()
                status.stepsPerSecond = rates[row.id] ?? 0
                status.draining = draining.contains(row.id)
                status.workerID = row.id
                status.name = row.name
                status.capabilities = (try? Atelier_V1_WorkerCapabilities(serializedBytes: row.capabilities)) ?? .init()
                status.lastSeenUnixMs = row.lastSeen
                status.alive = row.lastSeen >= aliveSince
                status.currentTaskID = current[row.id] ?? ""
                status.completed = UInt32(clamping: row.completed)
                status.failed = UInt32(clamping: row.failed)
                status.quarantinedUntilUnixMs = row.quarantinedUntil > nowMs ? row.quarantinedUntil : 0
                status.leases = UInt32(clamping: held[row.id] ?? 0)
                status.leaseExpiries = UInt32(clamping: row.expiries)
                return status
            }
            return (workers, more)
        }
    }

    func pruneWorkers(_ db: PostgresSession, now: Int64) throws {
        let before = now - Int64((max(options.workerRetention, 0) * 1000).rounded())
        try db.execute("""
            DELETE FROM workers w WHERE w.id IN (
                SELECT id FROM workers x WHERE x.last_seen < \(before)
                  AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.state = 'leased' AND t.worker_id = x.id)
                LIMIT 1000)
            """)
        try db.execute("DELETE FROM worker_job_failures f WHERE NOT EXISTS (SELECT 1 FROM workers w WHERE w.id = f.worker_id)")
    }

    public func pruneWorkers(now: Int64) throws {
        try write { db in try pruneWorkers(db, now: now) }
    }
}
#endif
