import AtelierFarmProtocol
import Foundation

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
            throw CoordinatorError.invalid("capabilities.numerics is longer than 128 bytes (say \"fp32/atelier-gemm4\")")
        }
        guard capabilities.slots <= options.maxWorkerSlots else {
            throw CoordinatorError.invalid(
                "capabilities.slots is \(capabilities.slots); at most \(options.maxWorkerSlots) leases at once (0 means 1)")
        }
        let slots = max(Int(capabilities.slots), 1)
        guard r.workerName.utf8.count <= 256, r.workerID.utf8.count <= 128 else {
            throw CoordinatorError.invalid("worker_name must be at most 256 bytes and worker_id at most 128")
        }
        let interval = UInt32(clamping: Int((options.effectiveHeartbeatInterval * 1000).rounded()))

        let registration = WorkerRegistration(workerID: r.workerID, name: r.workerName, capabilities: capabilities,
                                              slots: slots, tokenName: callerName(request))
        return try store.registerWorker(registration, now: unixMilliseconds(now()), log: logged(request, peer: peer)) { id in
            var body = Atelier_V1_RegisterWorkerResponse()
            body.workerID = id
            body.heartbeatIntervalMs = interval
            return Coordinator.success(.registerWorker(body))
        }.response
    }

    static let defaultWorkerPage = 100
    static let maxWorkerPage = 1000

    func listWorkers(_ r: Atelier_V1_ListWorkersRequest) throws -> Atelier_V1_Response {
        guard r.afterWorkerID.utf8.count <= 128 else {
            throw CoordinatorError.invalid("after_worker_id is longer than 128 bytes; pass the previous page's next_after_worker_id")
        }
        let limit = r.limit == 0 ? Coordinator.defaultWorkerPage : min(Int(r.limit), Coordinator.maxWorkerPage)
        let page = try store.listWorkers(afterWorkerID: r.afterWorkerID, limit: limit, now: unixMilliseconds(now()))
        var body = Atelier_V1_ListWorkersResponse()
        body.workers = page.workers
        if page.more, let last = page.workers.last { body.nextAfterWorkerID = last.workerID }
        return Coordinator.success(.listWorkers(body))
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
}
