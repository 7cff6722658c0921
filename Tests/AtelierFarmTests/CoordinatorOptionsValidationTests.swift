@testable import AtelierFarmCoordinator
@testable import AtelierFarmProtocol
@testable import AtelierFarmTransport
@testable import AtelierFarmWorker
import Foundation
import XCTest

/// A coordinator cannot be built with options that would trap later (issue 9, item 10):
/// `--lease-seconds 1e300` used to die on the first registration converting the heartbeat
/// interval to milliseconds.
final class CoordinatorOptionsValidationTests: XCTestCase {
    func testOutOfRangeOptionsAreRefusedAtConstructionAndSaneOnesServe() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("atelier-options-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let edits: [(String, (inout CoordinatorOptions) -> Void)] = [
            ("lease 1e300", { $0.leaseTTL = 1e300 }),
            ("lease NaN", { $0.leaseTTL = .nan }),
            ("lease 0", { $0.leaseTTL = 0 }),
            ("heartbeat over the TTL", { $0.heartbeatInterval = 31 }),
            ("queue 0", { $0.maxUnfinishedTasks = 0 }),
            ("attempts 0", { $0.defaultMaxAttempts = 0 }),
            ("attempts over the limit", { $0.defaultMaxAttempts = 101 }),
        ]
        for (name, edit) in edits {
            var options = CoordinatorOptions()
            edit(&options)
            XCTAssertThrowsError(try Coordinator(directory: dir, options: options), name) { error in
                XCTAssertEqual((error as? CoordinatorError)?.code, .invalidArgument, name)
            }
        }
        var options = CoordinatorOptions()
        options.leaseTTL = 86_400
        let coordinator = try Coordinator(directory: dir, options: options)
        var request = Atelier_V1_Request()
        request.protocolVersion = 1
        request.requestID = "r"
        request.body = .registerWorker(.with { $0.workerName = "w" })
        let response = coordinator.handle(request, peer: "p")
        XCTAssertFalse(response.hasError, response.error.message)
        XCTAssertEqual(response.registerWorker.heartbeatIntervalMs, 28_800_000)
        try coordinator.close()
    }
}
