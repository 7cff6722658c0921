@testable import AtelierFarmCoordinator
@testable import AtelierFarmObservability
import AtelierFarmProtocol
@testable import AtelierFarmWorker
import Foundation
import XCTest

/// The HTTP side's parts that need no browser: escaping, the step-rate meter, addresses, and the
/// server's access rules (a real Hummingbird server on a loopback port, an in-process coordinator).
final class ObservabilityUnitTests: XCTestCase {
    func testHTMLEscapingNeutralisesMarkupInPromptsAndAttributes() {
        XCTAssertEqual(HTMLText.escape(#"<script>alert("x")</script> & 'y'"#),
                       "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;")
        XCTAssertEqual(HTMLText.escape("a\u{0}b\u{1B}c\nd"), "abc\nd", "control characters are dropped")
        XCTAssertEqual(HTMLText.escape("déjà vu — 東京"), "déjà vu — 東京")
    }

    func testStepRateIsMeasuredFromTheFirstStep() {
        var meter = StepRateMeter()
        XCTAssertEqual(meter.stepsPerSecond, 0, "unknown before any step")
        meter.record(step: 1, at: 100)  // loading and encoding before step 1 do not count
        XCTAssertEqual(meter.stepsPerSecond, 0, "unknown after one step")
        meter.record(step: 5, at: 102)
        XCTAssertEqual(meter.stepsPerSecond, 2, accuracy: 1e-9)
        meter.record(step: 1, at: 200)  // a new render
        meter.record(step: 3, at: 201)
        XCTAssertEqual(meter.stepsPerSecond, 2, accuracy: 1e-9)
    }

    func testHTTPAddressesAreParsedOrRefusedWithTheReason() throws {
        XCTAssertEqual(try HTTPBindAddress(parsing: "127.0.0.1:9733"), HTTPBindAddress(host: "127.0.0.1", port: 9733))
        XCTAssertEqual(try HTTPBindAddress(parsing: "[::1]:80"), HTTPBindAddress(host: "::1", port: 80))
        for bad in ["9733", ":9733", "host:", "host:70000", "host:-1", "a b:80", "h/x:80"] {
            XCTAssertThrowsError(try HTTPBindAddress(parsing: bad), bad) { error in
                XCTAssertTrue("\(error)".hasPrefix("--http"), "\(error)")
            }
        }
    }

    func testEndpointIsReadOnlyAndRefusesRequestsWithoutAnAcceptedToken() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("atelier-http-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: directory) }
        let coordinator = try Coordinator(directory: directory)
        defer { try? coordinator.close() }
        let server = ObservabilityServer(coordinator: coordinator, address: HTTPBindAddress(host: "127.0.0.1", port: 0),
                                         authorize: { $0 == "s3cret" })
        let bound = try server.start()
        defer { server.close() }
        XCTAssertNotEqual(bound.port, 0, "the real port is reported")
        let base = "http://127.0.0.1:\(bound.port)"
        for path in ["/", "/metrics", "/jobs/abc/thumb/0.png"] {
            let open = try HTTPFetch.get(base + path)
            XCTAssertEqual(open.status, 401, path)
            XCTAssertEqual(open.headers["www-authenticate"], "Basic realm=\"atelier\", charset=\"UTF-8\"",
                           "\(path): a browser asks for the token by itself")
            XCTAssertEqual(try HTTPFetch.get(base + path, bearer: "wrong").status, 401, path)
        }
        XCTAssertEqual(try HTTPFetch.get(base + "/", bearer: "s3cret").status, 200)
        // What a browser sends after the Basic challenge: any user name, the token as password.
        let basic = { (pair: String) in "Basic " + Data(pair.utf8).base64EncodedString() }
        XCTAssertEqual(try HTTPFetch.get(base + "/", authorization: basic("alice:s3cret")).status, 200)
        XCTAssertEqual(try HTTPFetch.get(base + "/", authorization: basic("alice:wrong")).status, 401)
        XCTAssertEqual(try HTTPFetch.get(base + "/", authorization: "Basic !!notbase64").status, 401)
        let metrics = try HTTPFetch.get(base + "/metrics", bearer: "s3cret")
        XCTAssertEqual(metrics.status, 200)
        XCTAssertTrue(metrics.text.contains("# TYPE atelier_leases_held gauge"), metrics.text)
        XCTAssertEqual(try HTTPFetch.get(base + "/jobs/abc/thumb/0.png", bearer: "s3cret").status, 404, "no such job")
        XCTAssertEqual(try HTTPFetch.get(base + "/jobs/abc/thumb/x.png", bearer: "s3cret").status, 400)
        // No route changes anything: a POST to any of them is not served.
        XCTAssertGreaterThanOrEqual(try HTTPFetch.post(base + "/", bearer: "s3cret").status, 400)
    }

    func testRequestLatencyIsRecordedByKind() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("atelier-http-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: directory) }
        let coordinator = try Coordinator(directory: directory)
        defer { try? coordinator.close() }
        let server = ObservabilityServer(coordinator: coordinator, address: HTTPBindAddress(host: "127.0.0.1", port: 0))
        let bound = try server.start()
        defer { server.close() }
        var request = Atelier_V1_Request()
        request.protocolVersion = 1
        request.requestID = UUID().uuidString
        request.listWorkers = .init()
        _ = coordinator.handle(request, peer: "test")
        let text = try HTTPFetch.get("http://127.0.0.1:\(bound.port)/metrics").text
        XCTAssertTrue(text.contains(#"atelier_request_duration_seconds_count{kind="list_workers"} 1"#), text)
    }
}

/// The install hint the HTTP process tests give when promtool or Chromium is missing.
final class ExternalToolTests: XCTestCase {
    func testMissingToolFailsWithItsInstallHint() throws {
        let variable = "ATELIER_SKIP_NO_SUCH_TOOL_\(UUID().uuidString.prefix(8))"
        XCTAssertThrowsError(try ExternalTool.require(["atelier-no-such-tool"], install: "apt-get install nothing",
                                                      skipVariable: variable)) { error in
            XCTAssertFalse(error is XCTSkip, "a missing tool fails unless its skip variable is set")
            XCTAssertTrue("\(error)".contains("apt-get install nothing") && "\(error)".contains(variable), "\(error)")
        }
    }
}

/// The metrics' label values are bounded (they come from workers).
final class FarmMetricsLabelTests: XCTestCase {
    func testLabelValuesAreCutAndTheirNumberCapped() {
        var known = Set<String>()
        XCTAssertEqual(FarmMetrics.bounded(String(repeating: "m", count: 500), known: &known).count, FarmMetrics.maxLabelLength)
        for i in 0..<(FarmMetrics.maxLabelValues * 2) { _ = FarmMetrics.bounded("model-\(i)", known: &known) }
        XCTAssertEqual(known.count, FarmMetrics.maxLabelValues)
        XCTAssertEqual(FarmMetrics.bounded("one-more", known: &known), "_other")
        XCTAssertEqual(FarmMetrics.bounded("model-0", known: &known), "model-0", "a known value keeps its series")
    }
}
