@testable import AtelierFarmCoordinator
@testable import AtelierFarmProtocol
@testable import AtelierFarmTransport
import Foundation
import Logging
import XCTest

/// Structured logs (issue 11, item 4): JSON lines that parse and carry the ids a line is about,
/// and rate limiting of what peers can cause by the thousand.
final class StructuredLogTests: XCTestCase {
    /// Collects lines written by a `FarmLogHandler`.
    final class Lines: @unchecked Sendable {
        private let lock = NSLock()
        private var all: [String] = []
        var lines: [String] { lock.lock(); defer { lock.unlock() }; return all }
        func append(_ text: String) { lock.lock(); all += text.split(separator: "\n").map(String.init); lock.unlock() }
        var sink: FarmLogSink { FarmLogSink { [self] in append($0) } }
    }

    func jsonLogger(_ lines: Lines, level: Logger.Level = .info) -> Logger {
        Logger(label: "atelier.coordinator") { label in FarmLogHandler(label: label, format: .json, level: level, sink: lines.sink) }
    }

    /// A job's life through the coordinator: every line is one JSON object with timestamp, level,
    /// message and metadata, and the lines about a task carry its job, task and worker ids.
    func testCoordinatorJSONLinesParseAndCarryJobTaskAndWorkerIDs() throws {
        let h = try CoordinatorHarness()
        let lines = Lines()
        h.coordinator.logger = jsonLogger(lines)
        let worker = h.register("w1")
        let jobID = h.submit(h.batch(count: 1))
        let lease = try XCTUnwrap(h.lease(worker))
        XCTAssertFalse(h.complete(worker, lease).hasError)

        let objects = try lines.lines.map { line -> [String: Any] in
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8))
            return try XCTUnwrap(object as? [String: Any], "not a JSON object: \(line)")
        }
        XCTAssertGreaterThanOrEqual(objects.count, 4, "register, submit, lease, complete: \(lines.lines)")
        for object in objects {
            XCTAssertNotNil(object["timestamp"] as? String)
            XCTAssertNotNil(object["level"] as? String)
            XCTAssertNotNil(object["message"] as? String)
            XCTAssertNotNil(object["metadata"] as? [String: Any])
        }
        let metadata = objects.compactMap { $0["metadata"] as? [String: String] }
        XCTAssertTrue(metadata.contains { $0["kind"] == "submit_job" && $0["job_id"] == jobID }, "\(metadata)")
        for kind in ["lease_task", "complete_task"] {
            XCTAssertTrue(metadata.contains {
                $0["kind"] == kind && $0["job_id"] == jobID && $0["task_id"] == lease.taskID && $0["worker_id"] == worker
            }, "\(kind) line with the job, task and worker ids: \(metadata)")
        }
        XCTAssertTrue(metadata.contains { $0["kind"] == "register_worker" && $0["worker_id"] == worker })
    }

    /// A thousand malformed messages in a row: one line, and once the interval has passed the
    /// next line says how many were suppressed (clock injected: no sleeping).
    func testABurstOfHostileRequestsIsLoggedOnceAndCountedWhenTheIntervalPasses() throws {
        let clock = TestClock()
        let limiter = LogRateLimiter(interval: 10, now: { clock.now })
        let lines = Lines()
        let logger = jsonLogger(lines)
        for _ in 0..<1000 {
            limiter.log(logger, .warning, kind: "refused_request.malformed", "refused bytes", metadata: ["peer": "tcp://10.0.0.9:1"])
        }
        XCTAssertEqual(lines.lines.count, 1, "\(lines.lines.prefix(3))")
        limiter.log(logger, .warning, kind: "lease_expired", "another kind is not held back")
        XCTAssertEqual(lines.lines.count, 2)
        clock.advance(10)
        limiter.log(logger, .warning, kind: "refused_request.malformed", "refused bytes")
        XCTAssertEqual(lines.lines.count, 3)
        let last = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(lines.lines[2].utf8)) as? [String: Any])
        XCTAssertEqual((last["metadata"] as? [String: String])?["suppressed"], "999")
        XCTAssertTrue((last["message"] as? String)?.contains("suppressed 999 similar") ?? false, "\(last)")
    }

    /// The same through the coordinator's own door: garbage bytes and a wrong protocol version.
    func testTheCoordinatorRateLimitsMalformedAndWrongVersionRequests() throws {
        let h = try CoordinatorHarness()
        let lines = Lines()
        h.coordinator.logger = jsonLogger(lines)
        for i in 0..<200 { _ = h.coordinator.handle(serializedRequest: Data([0xFF, 0xFF, UInt8(i & 0x7F)]), peer: "tcp://10.0.0.9:1") }
        var wrong = Atelier_V1_Request()
        wrong.protocolVersion = 7
        wrong.requestID = "x"
        wrong.listJobs = .init()
        for _ in 0..<200 { _ = h.coordinator.handle(wrong, peer: "tcp://10.0.0.9:2") }
        let events = lines.lines.compactMap { line in
            ((try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any])?["metadata"] as? [String: String]
        }.compactMap { $0["event"] }
        XCTAssertEqual(events.sorted(), ["refused_request.malformed", "refused_request.unsupportedVersion"], "\(lines.lines)")
    }

    func testTextLinesQuoteValuesWithSpaces() {
        let line = FarmLogHandler.textLine(timestamp: Date(timeIntervalSince1970: 0), level: .info, message: "hello",
                                           metadata: ["peer": "tcp://1.2.3.4:5", "reason": "worker is stopping"])
        XCTAssertEqual(line, #"1970-01-01T00:00:00.000Z info hello peer=tcp://1.2.3.4:5 reason="worker is stopping""#)
    }
}
