import Foundation
import XCTest
@testable import AtelierFarmCoordinator
@testable import AtelierFarmProtocol
@testable import AtelierFarmTransport
@testable import AtelierFarmWorker

/// The typed layer: envelope rules (version, request ids, error replies) over real sockets.
final class TransportFarmProtocolTests: XCTestCase {
    typealias Support = TransportTestSupport

    private func farmServer(options: RequestServerOptions = .init(),
                            handler: @escaping FarmRequestHandler) throws -> RequestServer {
        let server = try RequestServer(listeningOn: "tcp://127.0.0.1:0", options: options)
        try server.serve(handler: handler)
        return server
    }

    private func listJobs(_ limit: UInt32) -> Atelier_V1_Request {
        var request = Atelier_V1_Request()
        request.listJobs.limit = limit
        return request
    }

    /// Answers list_jobs with `limit` empty jobs, so replies are recognisable.
    private static let answerListJobs: FarmRequestHandler = { request, _ in
        var response = Atelier_V1_Response()
        response.listJobs.jobs = (0..<Int(request.listJobs.limit)).map { i in
            var job = Atelier_V1_JobStatus()
            job.jobID = "job-\(i)"
            return job
        }
        return response
    }

    func testFarmCallFillsVersionAndRequestIdAndChecksTheEcho() throws {
        let seen = TransportRecorder<Atelier_V1_Request>()
        let server = try farmServer { request, peer in
            seen.append(request)
            return Self.answerListJobs(request, peer)
        }
        defer { server.close() }
        let client = try FarmClient(address: server.address)
        defer { client.close() }

        let response = try client.call(listJobs(2))
        let request = try XCTUnwrap(seen.all.first)
        XCTAssertEqual(request.protocolVersion, 1)
        XCTAssertNotNil(UUID(uuidString: request.requestID), request.requestID)
        XCTAssertEqual(response.requestID, request.requestID)
        XCTAssertEqual(response.protocolVersion, 1)
        XCTAssertFalse(response.hasError)
        XCTAssertEqual(response.listJobs.jobs.map(\.jobID), ["job-0", "job-1"])

        var mine = listJobs(1)
        mine.requestID = "my-own-id"
        XCTAssertEqual(try client.call(mine).requestID, "my-own-id")
    }

    func testAsyncFarmCallRoundTrips() async throws {
        let server = try farmServer(handler: Self.answerListJobs)
        defer { server.close() }
        let client = try FarmClient(address: server.address)
        defer { client.close() }
        let response = try await client.call(listJobs(3), timeout: .seconds(5))
        XCTAssertEqual(response.listJobs.jobs.count, 3)
    }

    func testMalformedBodyGetsMalformedErrorAndServerKeepsServing() throws {
        let calls = TransportRecorder<String>()
        let server = try farmServer { request, peer in
            calls.append(request.requestID)
            return Self.answerListJobs(request, peer)
        }
        defer { server.close() }
        let raw = try RequestClient(dialing: server.address)
        defer { raw.close() }

        for garbage in [Data([0xFF, 0xFF, 0xFF, 0xFF]), Data("GET / HTTP/1.1\r\n\r\n".utf8), Data([0x12, 0x05, 0x61])] {
            let reply = try raw.request(garbage, timeout: .seconds(5))
            let response = try Atelier_V1_Response(serializedBytes: reply)
            XCTAssertEqual(response.error.code, .malformed, "\(Array(garbage))")
            XCTAssertEqual(response.requestID, "")
            XCTAssertEqual(response.protocolVersion, 1)
            XCTAssertNil(response.body)
        }
        XCTAssertTrue(calls.all.isEmpty, "the handler never sees unparseable input")

        let client = FarmClient(transport: raw)
        XCTAssertEqual(try client.call(listJobs(1)).listJobs.jobs.count, 1)
        XCTAssertEqual(calls.all.count, 1)
    }

    func testWrongProtocolVersionIsRefused() throws {
        let calls = TransportRecorder<String>()
        let server = try farmServer { request, peer in
            calls.append(request.requestID)
            return Self.answerListJobs(request, peer)
        }
        defer { server.close() }
        let client = try FarmClient(address: server.address)
        defer { client.close() }

        var future = listJobs(1)
        future.protocolVersion = 2
        future.requestID = "from-the-future"
        let response = try client.call(future)
        XCTAssertEqual(response.error.code, .unsupportedVersion)
        XCTAssertEqual(response.requestID, "from-the-future")
        XCTAssertTrue(response.error.message.contains("2"), response.error.message)
        XCTAssertNil(response.body)

        // Version 0 (unset) sent raw, bypassing FarmClient.prepare, is refused too.
        var unset = listJobs(1)
        unset.requestID = "no-version"
        let reply = try client.transport.request(try unset.serializedData(), timeout: .seconds(5))
        XCTAssertEqual(try Atelier_V1_Response(serializedBytes: reply).error.code, .unsupportedVersion)
        XCTAssertTrue(calls.all.isEmpty)
    }

    func testResentRequestReachesHandlerAgainWithSameRequestId() throws {
        // nng resends a request whose reply is late (REQ resend time, here 200 ms) with the same
        // nng request id; the REP side sees each copy as a new request. The transport must
        // deliver them (the coordinator dedupes by request_id) and the client must get exactly
        // one reply.
        let seen = TransportRecorder<String>()
        let server = try farmServer(options: .init(contexts: 8)) { request, peer in
            seen.append(request.requestID)
            if request.requestID == "slow-1" { Thread.sleep(forTimeInterval: 0.7) }
            return Self.answerListJobs(request, peer)
        }
        defer { server.close() }
        let client = try FarmClient(address: server.address,
                                    options: .init(resendTime: .milliseconds(200)))
        defer { client.close() }

        var slow = listJobs(1)
        slow.requestID = "slow-1"
        let start = ContinuousClock.now
        let first = try client.call(slow, timeout: .seconds(5))
        let elapsed = Support.seconds(since: start)
        XCTAssertEqual(first.requestID, "slow-1")
        let copies = seen.all.filter { $0 == "slow-1" }.count
        print("700 ms handler, 200 ms resend: handler saw 'slow-1' \(copies) times; reply after \(elapsed) s")
        XCTAssertGreaterThanOrEqual(copies, 2)

        // The late replies of the copies are dropped by REQ: the next call gets its own reply.
        for i in 0..<3 {
            var next = listJobs(UInt32(i + 2))
            next.requestID = "next-\(i)"
            let response = try client.call(next, timeout: .seconds(5))
            XCTAssertEqual(response.requestID, "next-\(i)")
            XCTAssertEqual(response.listJobs.jobs.count, i + 2)
        }
        Thread.sleep(forTimeInterval: 0.8)  // let the duplicates' handlers finish before close
    }

    func testOversizeResponseBecomesTooLargeError() throws {
        let server = try farmServer(options: .init(maxMessageSize: 1 << 20)) { request, _ in
            var response = Atelier_V1_Response()
            response.fetchResult.png = Data(count: Int(request.fetchResult.index))
            return response
        }
        defer { server.close() }
        let client = try FarmClient(address: server.address)
        defer { client.close() }
        var fetch = Atelier_V1_Request()
        fetch.fetchResult.index = 2 << 20
        let response = try client.call(fetch, timeout: .seconds(5))
        XCTAssertEqual(response.error.code, .tooLarge)
        XCTAssertFalse(response.requestID.isEmpty)
        fetch.fetchResult.index = 1000
        XCTAssertEqual(try client.call(fetch, timeout: .seconds(5)).fetchResult.png.count, 1000)

        // A coordinator that accepts bigger requests still never answers over the protocol's
        // 64 MiB, which is what clients accept.
        let roomy = try farmServer(options: .init(maxMessageSize: 128 << 20)) { request, _ in
            var response = Atelier_V1_Response()
            response.fetchResult.png = Data(count: Int(request.fetchResult.index))
            return response
        }
        defer { roomy.close() }
        let roomyClient = try FarmClient(address: roomy.address)
        defer { roomyClient.close() }
        fetch.fetchResult.index = UInt32(FarmWire.maxMessageSize + 1)
        XCTAssertEqual(try roomyClient.call(fetch, timeout: .seconds(10)).error.code, .tooLarge)
    }

    func testReplyForAnotherRequestIdIsRejected() throws {
        let server = try farmServer { _, _ in
            var response = Atelier_V1_Response()
            response.requestID = "somebody-else"
            return response
        }
        defer { server.close() }
        let client = try FarmClient(address: server.address)
        defer { client.close() }
        XCTAssertThrowsError(try client.call(listJobs(1))) { error in
            guard case .unexpectedReply? = error as? TransportError else { return XCTFail("\(error)") }
        }

        let raw = try Support.server { _, _ in Data("not protobuf at all".utf8) }
        defer { raw.close() }
        let rawClient = try FarmClient(address: raw.address)
        defer { rawClient.close() }
        XCTAssertThrowsError(try rawClient.call(listJobs(1))) { error in
            guard case .unexpectedReply? = error as? TransportError else { return XCTFail("\(error)") }
        }
    }

    func testFarmWireWithoutSockets() throws {
        let peer = PeerInfo(pipeID: 7, remoteAddress: "10.0.0.2:4000")
        var request = FarmClient.prepare(listJobs(1))
        request.requestID = "r1"
        let reply = FarmWire.respond(to: try request.serializedData(), from: peer, maxReplySize: 1 << 20) { req, who in
            XCTAssertEqual(who, peer)
            return Self.answerListJobs(req, who)
        }
        let response = try Atelier_V1_Response(serializedBytes: reply)
        XCTAssertEqual(response.requestID, "r1")
        XCTAssertEqual(response.listJobs.jobs.count, 1)

        let empty = FarmWire.respond(to: Data(), from: peer, maxReplySize: 1 << 20) { _, _ in
            XCTFail("an empty body is version 0")
            return Atelier_V1_Response()
        }
        XCTAssertEqual(try Atelier_V1_Response(serializedBytes: empty).error.code, .unsupportedVersion)
    }

    func testFarmAddressResolutionPrefersFlagThenEnvironment() {
        let env = ["ATELIER_COORDINATOR": "tcp://10.0.0.5:7733"]
        XCTAssertEqual(FarmAddress.resolve(flag: "tcp://192.168.1.2:9000", environment: env), "tcp://192.168.1.2:9000")
        XCTAssertEqual(FarmAddress.resolve(flag: nil, environment: env), "tcp://10.0.0.5:7733")
        XCTAssertEqual(FarmAddress.resolve(flag: "", environment: env), "tcp://10.0.0.5:7733")
        XCTAssertEqual(FarmAddress.resolve(flag: nil, environment: [:]), "tcp://127.0.0.1:7733")
        XCTAssertEqual(FarmAddress.resolve(flag: nil, environment: ["ATELIER_COORDINATOR": " "]), "tcp://127.0.0.1:7733")
        XCTAssertEqual(FarmAddress.resolve(flag: "10.0.0.9:7733", environment: [:]), "tcp://10.0.0.9:7733")
        XCTAssertEqual(FarmAddress.normalize("ipc:///run/atelier.sock"), "ipc:///run/atelier.sock")
    }

    /// Active/standby coordinators: a comma-separated list, each element normalised.
    func testFarmAddressListIsNormalisedElementByElement() {
        XCTAssertEqual(FarmAddress.resolve(flag: "10.0.0.1:7733, tcp://10.0.0.2:7733", environment: [:]),
                       "tcp://10.0.0.1:7733,tcp://10.0.0.2:7733")
    }

    func testErrorDescriptionsAreActionable() {
        XCTAssertEqual(TransportError.timeout(address: "tcp://127.0.0.1:7733", after: .seconds(5), droppedConnections: 0).description,
                       "no answer from tcp://127.0.0.1:7733 within 5 s — is `atelier coordinator` running there?")
        XCTAssertTrue(TransportError.timeout(address: "tcp://h:1", after: .milliseconds(1500), droppedConnections: 2)
            .description.contains("within 1.5 s"))
        XCTAssertEqual(TransportError.addressInUse(address: "tcp://0.0.0.0:7733").description,
                       "another coordinator is already listening on tcp://0.0.0.0:7733")
        XCTAssertTrue(TransportError.nng(operation: "dialing x", code: 6).description.contains("refused"),
                      TransportError.nng(operation: "dialing x", code: 6).description)
        XCTAssertTrue(TransportError.messageTooLarge(size: 10, limit: 5).description.contains("10 bytes"))
    }
}
