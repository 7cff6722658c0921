import AtelierFarm
import Foundation
import SwiftProtobuf

/// Arbitrary bytes as a farm request: `Coordinator.handle(serializedRequest:peer:)` on a real
/// coordinator (SQLite in /dev/shm) that has a worker serving `base` (4-channel UNet) and `x4`
/// (7-channel) registered, so submissions get past the model check into planning and storage.
///
/// The state is renewed every `rotateEvery` inputs so the database stays small and the queue
/// never stays full. Checked beyond "no trap": the reply always decodes as a `Response` of
/// protocol version 1, and echoes the request id of a request that decodes.
final class CoordinatorRequestFuzzTarget: FuzzTarget {
    static let rotateEvery = 20_000
    private var coordinator: Coordinator
    private var directory: URL
    private var generation = 0
    private var runs = 0

    init() throws {
        (coordinator, directory) = try Self.fresh(generation: 0)
    }

    deinit {
        try? coordinator.close()
        try? FileManager.default.removeItem(at: directory)
    }

    private static func fresh(generation: Int) throws -> (Coordinator, URL) {
        let dir = scratchDirectory("coordinator-\(generation)")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let coordinator = try Coordinator(directory: dir)
        var register = Atelier_V1_Request()
        register.protocolVersion = 1
        register.requestID = "fuzz-register"
        register.body = .registerWorker(.with {
            $0.workerName = "fuzz-worker"
            $0.workerID = "fuzzworker01"
            $0.capabilities.models = [.with { $0.name = "base"; $0.unetInChannels = 4 },
                                      .with { $0.name = "x4"; $0.unetInChannels = 7 }]
        })
        _ = coordinator.handle(register, peer: "fuzz")
        return (coordinator, dir)
    }

    func run(_ input: UnsafeRawBufferPointer) {
        runs += 1
        if runs % Self.rotateEvery == 0 {
            try? coordinator.close()
            try? FileManager.default.removeItem(at: directory)
            generation += 1
            guard let next = try? Self.fresh(generation: generation) else { fatalError("cannot renew the fuzz coordinator") }
            (coordinator, directory) = next
        }
        let bytes = Data(input)
        let reply = coordinator.handle(serializedRequest: bytes, peer: "fuzz")
        guard let response = try? Atelier_V1_Response(serializedBytes: reply) else {
            fatalError("the coordinator's reply (\(reply.count) bytes) is not a Response")
        }
        precondition(response.protocolVersion == 1, "reply with protocol_version \(response.protocolVersion)")
        if let request = try? Atelier_V1_Request(serializedBytes: bytes) {
            precondition(response.requestID == request.requestID, "reply does not echo the request id")
        }
    }
}
