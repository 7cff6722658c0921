import AtelierFarmProtocol
import Foundation
import GRDB
import SwiftProtobuf

/// Worker registration and the worker listing.
extension Coordinator {
    func registerWorker(_ r: Atelier_V1_RegisterWorkerRequest, request: Atelier_V1_Request,
                        peer: String) throws -> Atelier_V1_Response {
        let capabilities = r.capabilities
        try Coordinator.checkRegistrationBounds(r)
        var seen = Set<String>()
        for (i, model) in capabilities.models.enumerated() {
            guard !model.name.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw CoordinatorError.invalid("capabilities.models[\(i)].name is empty: every model needs the NAME of --model NAME=PATH")
            }
            guard model.name.utf8.count <= 256 else {
                throw CoordinatorError.invalid("capabilities.models[\(i)].name is longer than 256 bytes")
            }
            guard seen.insert(model.name).inserted else {
                throw CoordinatorError.invalid("capabilities.models lists \"\(model.name)\" twice; model names must be unique per worker")
            }
            guard model.weightsSha256.isEmpty
                    || (model.weightsSha256.utf8.count == 64 && model.weightsSha256.allSatisfy(\.isHexDigit)) else {
                throw CoordinatorError.invalid(
                    "capabilities.models[\(i)].weights_sha256 must be 64 hex digits (the SHA-256 of the model's files) or empty")
            }
            guard model.defaultImageSide <= 4096 else {
                throw CoordinatorError.invalid(
                    "capabilities.models[\(i)].default_image_side is \(model.defaultImageSide); at most 4096 (0 if unknown)")
            }
            guard model.unetInChannels <= 64 else {
                throw CoordinatorError.invalid(
                    "capabilities.models[\(i)].unet_in_channels is \(model.unetInChannels); expected 4, 5, 7 or 9 (or 0 if unknown)")
            }
        }
        guard capabilities.numerics.utf8.count <= 128 else {
            throw CoordinatorError.invalid("capabilities.numerics is longer than 128 bytes (say \"fp32/atelier-gemm1\")")
        }
        guard capabilities.slots <= options.maxWorkerSlots else {
            throw CoordinatorError.invalid(
                "capabilities.slots is \(capabilities.slots); at most \(options.maxWorkerSlots) leases at once (0 means 1)")
        }
        let slots = max(Int(capabilities.slots), 1)
        guard r.workerName.utf8.count <= 256, r.workerID.utf8.count <= 128 else {
            throw CoordinatorError.invalid("worker_name must be at most 256 bytes and worker_id at most 128")
        }
        let capabilityBytes: Data = try capabilities.serializedBytes()
        let interval = UInt32(clamping: Int((options.effectiveHeartbeatInterval * 1000).rounded()))

        return try recorded(request, peer: peer) { db, now in
            try pruneWorkers(db, now: now)
            var id = r.workerID
            var known = id.isEmpty ? nil : try WorkerRow.fetch(db, id: id)
            var name = r.workerName.isEmpty ? capabilities.hostname : r.workerName
            if known == nil, !name.isEmpty {
                // A restarted worker that does not remember its id: the row of the same name on the
                // same host, if that one has gone quiet and holds no lease, is this worker's.
                known = try WorkerRow.fetchOne(db, sql: """
                    SELECT * FROM workers w
                    WHERE w.name = ? AND w.last_seen < ?
                      AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.state = 'leased' AND t.worker_id = w.id)
                    ORDER BY w.last_seen DESC LIMIT 1
                    """, arguments: [name, now - aliveWindowMs]).flatMap { row in
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
                try db.execute(sql: "UPDATE workers SET name = ?, capabilities = ?, last_seen = ?, slots = ? WHERE id = ?",
                               arguments: [name, capabilityBytes, now, slots, id])
            } else {
                try db.execute(sql: """
                    INSERT INTO workers (id, name, capabilities, registered, last_seen, slots) VALUES (?, ?, ?, ?, ?, ?)
                    """, arguments: [id, name, capabilityBytes, now, now, slots])
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
            var body = Atelier_V1_RegisterWorkerResponse()
            body.workerID = id
            body.heartbeatIntervalMs = interval
            return Coordinator.success(.registerWorker(body))
        }.0
    }

    static let defaultWorkerPage = 100
    static let maxWorkerPage = 1000

    /// One page of workers in id order (keyset pagination: `after_worker_id` is the last id of
    /// the previous page). Every field of a registration is bounded, so even a full page of the
    /// largest registrations stays far below the 64 MiB message limit.
    func listWorkers(_ r: Atelier_V1_ListWorkersRequest) throws -> Atelier_V1_Response {
        guard r.afterWorkerID.utf8.count <= 128 else {
            throw CoordinatorError.invalid("after_worker_id is longer than 128 bytes; pass the previous page's next_after_worker_id")
        }
        let limit = r.limit == 0 ? Coordinator.defaultWorkerPage : min(Int(r.limit), Coordinator.maxWorkerPage)
        let nowMs = unixMilliseconds(now())
        let aliveSince = nowMs - aliveWindowMs
        var more = false
        let workers = try store.read { db -> [Atelier_V1_WorkerStatus] in
            var rows = try WorkerRow.fetchAll(db, sql: "SELECT * FROM workers WHERE id > ? ORDER BY id LIMIT ?",
                                              arguments: [r.afterWorkerID, limit + 1])
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
            return rows.map { row in
                var status = Atelier_V1_WorkerStatus()
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
        var body = Atelier_V1_ListWorkersResponse()
        body.workers = workers
        if more, let last = workers.last { body.nextAfterWorkerID = last.workerID }
        return Coordinator.success(.listWorkers(body))
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

    static let maxModelsPerWorker = 64
    static let maxWorkerTextBytes = 256

    /// Every field of a registration is bounded, so no registration can make a listing too large
    /// (8 registrations with 8 MB version strings once made list_workers fail for good). The
    /// messages name the field and the limit and never echo the value.
    static func checkRegistrationBounds(_ r: Atelier_V1_RegisterWorkerRequest) throws {
        let c = r.capabilities
        let text: [(String, String, Int)] = [
            ("worker_name", r.workerName, maxWorkerTextBytes), ("worker_id", r.workerID, 128),
            ("capabilities.version", c.version, maxWorkerTextBytes), ("capabilities.hostname", c.hostname, maxWorkerTextBytes),
            ("capabilities.numerics", c.numerics, 128),
        ]
        for (field, value, limit) in text where value.utf8.count > limit {
            throw CoordinatorError.invalid("\(field) is \(value.utf8.count) bytes; at most \(limit) are allowed")
        }
        guard c.models.count <= maxModelsPerWorker else {
            throw CoordinatorError.invalid(
                "capabilities.models lists \(c.models.count) models; at most \(maxModelsPerWorker) per worker")
        }
        for (i, model) in c.models.enumerated() {
            if model.name.utf8.count > maxWorkerTextBytes {
                throw CoordinatorError.invalid(
                    "capabilities.models[\(i)].name is \(model.name.utf8.count) bytes; at most \(maxWorkerTextBytes)")
            }
            if model.contentHash.utf8.count > 64 {
                throw CoordinatorError.invalid(
                    "capabilities.models[\(i)].content_hash is \(model.contentHash.utf8.count) bytes; at most 64")
            }
        }
        guard c.unknownFields.data.count <= 4096, r.unknownFields.data.count <= 4096,
              c.models.allSatisfy({ $0.unknownFields.data.count <= 1024 }) else {
            throw CoordinatorError.invalid("the registration carries too many unknown fields (a newer worker?); at most 4 KiB")
        }
    }

    /// A worker counts as alive while its last request is at most this old.
    var aliveWindowMs: Int64 {
        Int64((options.effectiveHeartbeatInterval * options.aliveHeartbeats * 1000).rounded())
    }

    /// Records that a worker was heard from.
    func touchWorker(_ db: Database, id: String, now: Int64) throws {
        try db.execute(sql: "UPDATE workers SET last_seen = MAX(last_seen, ?) WHERE id = ?", arguments: [now, id])
    }
}
