import Foundation
import GRDB
import SwiftProtobuf

/// Worker registration and the worker listing.
extension Coordinator {
    func registerWorker(_ r: Atelier_V1_RegisterWorkerRequest, request: Atelier_V1_Request,
                        peer: String) throws -> Atelier_V1_Response {
        let capabilities = r.capabilities
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
            throw CoordinatorError.invalid("capabilities.numerics is longer than 128 bytes (say \"fp32/openblas-haswell\")")
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
            var id = r.workerID
            let known = id.isEmpty ? nil : try WorkerRow.fetch(db, id: id)
            if known == nil { id = UUID().uuidString.lowercased() }
            var name = r.workerName.isEmpty ? capabilities.hostname : r.workerName
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
            var body = Atelier_V1_RegisterWorkerResponse()
            body.workerID = id
            body.heartbeatIntervalMs = interval
            return Coordinator.success(.registerWorker(body))
        }.0
    }

    func listWorkers() throws -> Atelier_V1_Response {
        let nowMs = unixMilliseconds(now())
        let aliveSince = nowMs - aliveWindowMs
        let workers = try store.read { db -> [Atelier_V1_WorkerStatus] in
            let rows = try WorkerRow.fetchAll(db, sql: "SELECT * FROM workers ORDER BY registered, id")
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
        return Coordinator.success(.listWorkers(body))
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
