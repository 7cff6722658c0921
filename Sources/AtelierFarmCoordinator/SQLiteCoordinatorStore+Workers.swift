import AtelierFarmProtocol
import Foundation
import GRDB

/// `SQLiteCoordinatorStore`: worker registration, the worker listing and pruning.
extension SQLiteCoordinatorStore {
    public func registerWorker(_ registration: WorkerRegistration, now: Int64, log: LoggedRequest,
                               respond: (String) throws -> Atelier_V1_Response) throws -> Logged<String> {
        let capabilities = registration.capabilities
        let capabilityBytes: Data = try capabilities.serializedBytes()
        let slots = max(registration.slots, 1)
        return try recorded(log, now: now, { db -> String in
            try pruneWorkers(db, now: now)
            var id = registration.workerID
            var known = id.isEmpty ? nil : try WorkerRow.fetch(db, id: id)
            var name = registration.name.isEmpty ? capabilities.hostname : registration.name
            if known == nil, !name.isEmpty {
                // A restarted worker that does not remember its id: the row of the same name on the
                // same host, if that one has gone quiet and holds no lease, is this worker's.
                known = try WorkerRow.fetchOne(db, sql: """
                    SELECT * FROM workers w
                    WHERE w.name = ? AND w.last_seen < ?
                      AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.state = 'leased' AND t.worker_id = w.id)
                    ORDER BY w.last_seen DESC LIMIT 1
                    """, arguments: [name, now - options.aliveWindowMs]).flatMap { row in
                        let caps = try? Atelier_V1_WorkerCapabilities(serializedBytes: row.capabilities)
                        return caps?.hostname == capabilities.hostname ? row : nil
                    }
                if let known { id = known.id }
            }
            if known == nil { id = UUID().uuidString.lowercased() }
            if name.isEmpty { name = "worker-\(id.prefix(8))" }
            if known != nil {
                // Same id: keep the history (counters, failures, blocklist), refresh the rest.
                // Its quarantine and expiry streak stay too: registering again does not clear them.
                try db.execute(sql: """
                    UPDATE workers SET name = ?, capabilities = ?, last_seen = ?, slots = ?, token_name = ?, draining = 0
                    WHERE id = ?
                    """, arguments: [name, capabilityBytes, now, slots, registration.tokenName, id])
            } else {
                try db.execute(sql: """
                    INSERT INTO workers (id, name, capabilities, registered, last_seen, slots, token_name)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [id, name, capabilityBytes, now, now, slots, registration.tokenName])
            }
            try db.execute(sql: "DELETE FROM worker_models WHERE worker_id = ?", arguments: [id])
            for model in capabilities.models {
                try db.execute(sql: """
                    INSERT INTO worker_models (worker_id, model, unet_in_channels, weights_sha256, numerics, default_side)
                    VALUES (?, ?, ?, ?, ?, ?)
                    """, arguments: [id, model.name, Int64(model.unetInChannels), model.weightsSha256.lowercased(),
                                     capabilities.numerics, Int64(model.defaultImageSide)])
            }
            try releaseLeasesOutsidePin(db, workerID: id, now: now)
            return id
        }, respond: respond)
    }

    public func listWorkers(afterWorkerID: String, limit: Int, now nowMs: Int64) throws -> (workers: [Atelier_V1_WorkerStatus], more: Bool) {
        let aliveSince = nowMs - options.aliveWindowMs
        var more = false
        let workers = try read { db -> [Atelier_V1_WorkerStatus] in
            var rows = try WorkerRow.fetchAll(db, sql: "SELECT * FROM workers WHERE id > ? ORDER BY id LIMIT ?",
                                              arguments: [afterWorkerID, limit + 1])
            if rows.count > limit {
                more = true
                rows.removeLast()
            }
            var current = [String: String]()
            var held = [String: Int]()
            for row in try Row.fetchAll(db, sql: """
                SELECT worker_id, id FROM tasks WHERE state = 'leased' AND worker_id IS NOT NULL ORDER BY lease_deadline
                """) {
                if let worker: String = row["worker_id"], let task: String = row["id"] {
                    current[worker] = task
                    held[worker, default: 0] += 1
                }
            }
            let draining = Set(try String.fetchAll(db, sql: "SELECT id FROM workers WHERE draining <> 0"))
            // The step rates, read apart from `WorkerRow` (a column of a later migration).
            var rates = [String: Double]()
            if let first = rows.first?.id, let last = rows.last?.id {
                for row in try Row.fetchAll(db, sql: "SELECT id, steps_per_second FROM workers WHERE id >= ? AND id <= ?",
                                            arguments: [first, last]) {
                    if let id: String = row["id"], let rate: Double = row["steps_per_second"] { rates[id] = rate }
                }
            }
            return rows.map { row in
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
        }
        return (workers, more)
    }

    /// A worker that registers again with other weights or numerics than the jobs of its leases
    /// are pinned to no longer belongs to their group: those leases go back to the queue (not
    /// charged), and its completion will be STALE_LEASE. Keeps a job from mixing weights even
    /// across a worker's restart with new files.
    func releaseLeasesOutsidePin(_ db: Database, workerID: String, now: Int64) throws {
        let tasks = try Row.fetchAll(db, sql: """
            SELECT t.id, t.fencing_token FROM tasks t JOIN jobs j ON j.id = t.job_id
            WHERE t.state = 'leased' AND t.worker_id = ? AND j.weights_sha256 IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM worker_models m
                              WHERE m.worker_id = t.worker_id AND m.model = t.model
                                AND m.weights_sha256 = j.weights_sha256 AND m.numerics = j.numerics)
            """, arguments: [workerID])
        for row in tasks {
            let taskID: String = row["id"] ?? ""
            let token: Int64 = row["fencing_token"] ?? 0
            try db.execute(sql: """
                UPDATE attempts SET ended = ?, outcome = 'released',
                                    error = 'the worker registered again with other weights or numerics than the job is pinned to'
                WHERE fencing_token = ? AND ended IS NULL
                """, arguments: [now, token])
            try db.execute(sql: """
                UPDATE tasks SET state = 'queued', attempts = MAX(attempts - 1, 0), lease_deadline = NULL, worker_id = NULL,
                                 step = 0, total_steps = 0
                WHERE id = ?
                """, arguments: [taskID])
        }
    }

    /// Removes workers not heard from for `workerRetention` that hold no lease (a restarted
    /// worker registers anew; without pruning every restart would add a row for good). Their
    /// blocklist entries go with them.
    func pruneWorkers(_ db: Database, now: Int64) throws {
        let before = now - Int64((max(options.workerRetention, 0) * 1000).rounded())
        let dead = try String.fetchAll(db, sql: """
            SELECT id FROM workers w WHERE w.last_seen < ?
              AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.state = 'leased' AND t.worker_id = w.id)
            LIMIT 1000
            """, arguments: [before])
        for id in dead {
            try db.execute(sql: "DELETE FROM worker_models WHERE worker_id = ?", arguments: [id])
            try db.execute(sql: "DELETE FROM worker_job_failures WHERE worker_id = ?", arguments: [id])
            try db.execute(sql: "DELETE FROM workers WHERE id = ?", arguments: [id])
        }
    }

    public func pruneWorkers(now: Int64) throws {
        try write { db in try pruneWorkers(db, now: now) }
    }

    /// Records that a worker was heard from.
    func touchWorker(_ db: Database, id: String, now: Int64) throws {
        try db.execute(sql: "UPDATE workers SET last_seen = MAX(last_seen, ?) WHERE id = ?", arguments: [now, id])
    }
}
