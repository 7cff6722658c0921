@testable import AtelierFarmCoordinator
@testable import AtelierFarmProtocol
@testable import AtelierFarmTransport
@testable import AtelierFarmWorker
import Foundation
import XCTest

/// Registrations are bounded, restarts do not grow the worker table, dead workers are pruned,
/// and list_workers pages.
final class CoordinatorWorkerRegistryTests: XCTestCase {
    /// The attack: 8 registrations with 8 MB version strings made list_workers answer
    /// TOO_LARGE for good. Each is refused now (the message names the field, not the value), and
    /// even 8 registrations at every limit leave list_workers well under the message limit.
    func testHugeRegistrationsCannotBreakListWorkers() throws {
        let h = try CoordinatorHarness()
        let huge = String(repeating: "v", count: 8 << 20)
        for i in 0..<8 {
            var r = Atelier_V1_RegisterWorkerRequest()
            r.workerName = "w\(i)"
            r.capabilities.version = huge
            r.capabilities.models = [.with { $0.name = "sd2"; $0.unetInChannels = 4 }]
            let refused = h.send(.registerWorker(r))
            XCTAssertEqual(refused.error.code, .invalidArgument)
            XCTAssertTrue(refused.error.message.contains("capabilities.version"), refused.error.message)
            XCTAssertLessThan(refused.error.message.utf8.count, 200, "the value is not echoed back")
        }
        var tooMany = Atelier_V1_RegisterWorkerRequest()
        tooMany.capabilities.models = (0..<65).map { n in .with { $0.name = "m\(n)" } }
        XCTAssertTrue(h.send(.registerWorker(tooMany)).error.message.contains("at most 64"))
        var longName = Atelier_V1_RegisterWorkerRequest()
        longName.capabilities.models = [.with { $0.name = String(repeating: "n", count: 1 << 20) }]
        let nameRefused = h.send(.registerWorker(longName))
        XCTAssertEqual(nameRefused.error.code, .invalidArgument)
        XCTAssertLessThan(nameRefused.error.message.utf8.count, 200)

        let max = String(repeating: "x", count: 256)
        for i in 0..<8 {
            var r = Atelier_V1_RegisterWorkerRequest()
            r.workerName = String(max.dropLast(2)) + "\(i)" + "x"
            r.capabilities.version = max
            r.capabilities.hostname = max
            r.capabilities.numerics = String(max.prefix(128))
            r.capabilities.models = (0..<64).map { n in
                .with { $0.name = String(max.dropLast(3)) + String(format: "%03d", n); $0.contentHash = String(max.prefix(64))
                        $0.weightsSha256 = String(repeating: "a", count: 64); $0.unetInChannels = 4 }
            }
            XCTAssertFalse(h.send(.registerWorker(r)).hasError)
        }
        var list = Atelier_V1_Request()
        list.protocolVersion = 1
        list.requestID = UUID().uuidString
        list.listWorkers = .init()
        let bytes = FarmWire.respond(to: try list.serializedData(), from: PeerInfo(pipeID: 1, remoteAddress: "test"),
                                     maxReplySize: FarmWire.maxMessageSize) { request, _ in h.coordinator.handle(request, peer: "test") }
        let response = try Atelier_V1_Response(serializedBytes: bytes)
        XCTAssertFalse(response.hasError, response.error.message)
        XCTAssertEqual(response.listWorkers.workers.count, 8)
    }

    /// A worker restarted without its id (same name, same host) takes its old row back, and
    /// workers gone for longer than the retention are pruned: restarts do not grow the table.
    func testRestartsDoNotGrowTheWorkerTable() throws {
        let h = try CoordinatorHarness()
        func register(_ name: String) -> String {
            var r = Atelier_V1_RegisterWorkerRequest()
            r.workerName = name
            r.capabilities.hostname = "box-1"
            r.capabilities.models = [.with { $0.name = "sd2"; $0.unetInChannels = 4 }]
            return h.send(.registerWorker(r)).registerWorker.workerID
        }
        let first = register("steady")
        for _ in 0..<20 {
            h.clock.advance(60)  // the previous process is gone
            XCTAssertEqual(register("steady"), first, "same name and host, old row quiet: the same worker")
        }
        XCTAssertNotEqual(register("steady"), first, "while the old row is alive a second worker of that name is a new one")

        // Restarts under fresh names (host-pid, the default): pruned once past the retention.
        for restart in 0..<50 {
            _ = register("box-1-\(restart)")
            h.clock.advance(120)
        }
        h.clock.advance(3600)
        _ = register("box-1-last")
        try h.coordinator.performMaintenance()
        let rows = try h.coordinator.sqlite.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM workers") ?? 0 }
        XCTAssertEqual(rows, 1, "only the live worker is left")
        XCTAssertEqual(try h.coordinator.sqlite.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM worker_models") ?? 0 }, 1)
    }

    /// A worker that holds a lease is never pruned, however quiet.
    func testWorkerHoldingALeaseIsNotPruned() throws {
        let h = try CoordinatorHarness()
        let worker = h.register("w")
        _ = h.submit(h.batch(count: 1))
        let lease = try XCTUnwrap(h.lease(worker))
        XCTAssertFalse(h.heartbeat(worker, lease).hasError)
        var options = h.options
        options.workerRetention = 1
        // Maintenance of a coordinator with a short retention, before the lease expires.
        h.clock.advance(20)
        let short = try Coordinator(directory: h.directory, options: options, now: { h.clock.now })
        try short.store.pruneWorkers(now: unixMilliseconds(h.clock.now))
        XCTAssertNotNil(try short.sqlite.read { db in try WorkerRow.fetch(db, id: worker) })
        try short.close()
    }

    /// list_workers pages in id order; `atelier workers` follows next_after_worker_id.
    func testListWorkersPaginates() throws {
        let h = try CoordinatorHarness()
        let ids = Set((0..<250).map { h.register("w\($0)") })
        var seen = [String]()
        var after = ""
        var pages = 0
        repeat {
            let page = h.send(.listWorkers(.with { $0.afterWorkerID = after })).listWorkers
            XCTAssertLessThanOrEqual(page.workers.count, 100, "the default page is 100")
            seen += page.workers.map(\.workerID)
            after = page.nextAfterWorkerID
            pages += 1
        } while !after.isEmpty && pages < 10
        XCTAssertEqual(pages, 3)
        XCTAssertEqual(Set(seen), ids)
        XCTAssertEqual(seen, seen.sorted())
        XCTAssertEqual(h.send(.listWorkers(.with { $0.limit = 100_000 })).listWorkers.workers.count, 250)
        XCTAssertEqual(h.send(.listWorkers(.with { $0.limit = 7 })).listWorkers.nextAfterWorkerID, seen[6])
    }
}
