import Foundation
import XCTest
@testable import AtelierFarmCoordinator
@testable import AtelierFarmProtocol
@testable import AtelierFarmTransport
@testable import AtelierFarmWorker

/// Shared by the Transport*Tests files: real sockets on 127.0.0.1, a fresh port per test.
enum TransportTestSupport {
    /// A port nothing listens on right now: bind port 0 through nng, read
    /// `NNG_OPT_TCP_BOUND_PORT`, close.
    static func freePort() throws -> Int {
        let probe = try RequestServer(listeningOn: "tcp://127.0.0.1:0", options: .init(contexts: 1))
        defer { probe.close() }
        return try XCTUnwrap(probe.boundPort)
    }

    static func url(_ port: Int) -> String { "tcp://127.0.0.1:\(port)" }

    /// A started server on a free loopback port.
    static func server(options: RequestServerOptions = .init(), handler: @escaping RequestHandler) throws -> RequestServer {
        let server = try RequestServer(listeningOn: "tcp://127.0.0.1:0", options: options)
        try server.start(handler: handler)
        return server
    }

    static func seconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
    }

    static func runInBackground<T>(_ body: @escaping @Sendable () -> T) -> Future<T> {
        let future = Future<T>()
        let thread = Thread { future.fulfill(body()) }
        thread.start()
        return future
    }

    /// A value produced on another thread.
    final class Future<T>: @unchecked Sendable {
        private let done = DispatchSemaphore(value: 0)
        private var value: T?
        func fulfill(_ value: T) { self.value = value; done.signal() }
        func wait(seconds: Double) -> T? {
            guard done.wait(timeout: .now() + seconds) == .success else { return nil }
            return value
        }
    }
}

/// A thread-safe log for handlers.
final class TransportRecorder<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [T] = []
    private var active = 0
    private(set) var maxActive = 0
    func append(_ item: T) { lock.lock(); items.append(item); lock.unlock() }
    var all: [T] { lock.lock(); defer { lock.unlock() }; return items }
    /// - Returns: how many are inside now, this one included.
    @discardableResult
    func enter() -> Int { lock.lock(); defer { lock.unlock() }; active += 1; maxActive = max(maxActive, active); return active }
    func leave() { lock.lock(); active -= 1; lock.unlock() }
}

final class TransportRequestReplyTests: XCTestCase {
    typealias Support = TransportTestSupport

    func testRequestRoundTripsAndPeerInfoCarriesRemoteAddress() throws {
        let peers = TransportRecorder<PeerInfo>()
        let server = try Support.server { body, peer in
            peers.append(peer)
            return Data("echo:".utf8) + body
        }
        defer { server.close() }
        let client = try RequestClient(dialing: server.address)
        defer { client.close() }

        let reply = try client.request(Data("hello".utf8), timeout: .seconds(30))
        XCTAssertEqual(String(decoding: reply, as: UTF8.self), "echo:hello")
        let second = try client.request(Data(), timeout: .seconds(30))
        XCTAssertEqual(String(decoding: second, as: UTF8.self), "echo:")

        let seen = peers.all
        XCTAssertEqual(seen.count, 2)
        XCTAssertGreaterThan(seen[0].pipeID, 0)
        XCTAssertEqual(seen[0].pipeID, seen[1].pipeID, "one connection carries both requests")
        XCTAssertTrue(seen[0].remoteAddress.hasPrefix("127.0.0.1:"), seen[0].remoteAddress)
        XCTAssertNotEqual(seen[0].remoteAddress, "127.0.0.1:\(server.boundPort!)", "the client's port, not ours")
        XCTAssertTrue(client.isConnected)
        XCTAssertEqual(server.connectedPeers, 1)
    }

    /// All 8 handlers are inside at once: that, not a wall-clock bound, is the proof of
    /// concurrency (CI machines stall for seconds at times, so the timeouts here are generous
    /// and the elapsed time is only printed).
    func testRequestsAreAnsweredConcurrentlyByAllContexts() throws {
        let recorder = TransportRecorder<Int>()
        let release = DispatchSemaphore(value: 0)
        let server = try Support.server(options: .init(contexts: 8)) { body, _ in
            if body == Data([0]) { return body }  // the connection check
            // Hold every handler until all 8 are in (or 30 s pass): a server that served them
            // one at a time would never get there.
            if recorder.enter() == 8 { for _ in 0..<8 { release.signal() } }
            _ = release.wait(timeout: .now() + 30)
            recorder.leave()
            return body
        }
        defer { server.close() }
        // No timed resends: a held request must not reach a handler twice.
        let client = try RequestClient(dialing: server.address, options: .init(resendTime: nil))
        defer { client.close() }
        _ = try client.request(Data([0]), timeout: .seconds(30))  // connected

        let start = ContinuousClock.now
        let futures = (1...8).map { i in
            Support.runInBackground { Result { try client.request(Data([UInt8(i)]), timeout: .seconds(60)) } }
        }
        for (i, future) in futures.enumerated() {
            let reply = try XCTUnwrap(future.wait(seconds: 90)).get()
            XCTAssertEqual(reply, Data([UInt8(i + 1)]), "each caller gets its own reply")
        }
        print("8 requests held until all 8 handlers were in: \(Support.seconds(since: start)) s; max in handler at once: \(recorder.maxActive)")
        XCTAssertEqual(recorder.maxActive, 8)
    }

    func testManyConcurrentCallersEachGetTheirOwnReplies() throws {
        let server = try Support.server(options: .init(contexts: 4)) { body, peer in body + Data("@\(peer.pipeID)".utf8) }
        defer { server.close() }
        let clients = try (0..<2).map { _ in try RequestClient(dialing: server.address) }
        defer { clients.forEach { $0.close() } }
        let start = ContinuousClock.now
        let futures = (0..<8).map { caller in
            Support.runInBackground { () -> Int in
                var good = 0
                for i in 0..<250 {
                    let body = Data("\(caller)-\(i)".utf8)
                    if let reply = try? clients[caller % 2].request(body, timeout: .seconds(30)),
                       reply.starts(with: body + Data("@".utf8)) { good += 1 }
                }
                return good
            }
        }
        let good = futures.map { $0.wait(seconds: 60) ?? 0 }
        print("2000 requests from 8 threads over 2 clients: \(Support.seconds(since: start)) s")
        XCTAssertEqual(good, Array(repeating: 250, count: 8))
    }

    func testLargePayloadRoundTrips() throws {
        let server = try Support.server { body, _ in Data(body.reversed()) }
        defer { server.close() }
        let client = try RequestClient(dialing: server.address)
        defer { client.close() }
        var payload = Data(count: 12 << 20)
        payload.withUnsafeMutableBytes { raw in
            for i in 0..<raw.count { raw[i] = UInt8(truncatingIfNeeded: i &* 2654435761 >> 7) }
        }
        let start = ContinuousClock.now
        let reply = try client.request(payload, timeout: .seconds(20))
        print("12 MiB request + 12 MiB reply: \(Support.seconds(since: start)) s")
        XCTAssertEqual(reply.count, payload.count)
        XCTAssertTrue(reply == Data(payload.reversed()))
    }

    func testIPCAddressRoundTrips() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("atelier-ipc-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = "ipc://" + dir.appendingPathComponent("coordinator.sock").path
        let peers = TransportRecorder<PeerInfo>()
        let server = try RequestServer(listeningOn: url)
        try server.start { body, peer in peers.append(peer); return body + body }
        defer { server.close() }
        XCTAssertNil(server.boundPort)
        XCTAssertEqual(server.address, url)
        let client = try RequestClient(dialing: url)
        defer { client.close() }
        XCTAssertEqual(try client.request(Data("ab".utf8), timeout: .seconds(30)), Data("abab".utf8))
        print("ipc peer: \(peers.all)")
        XCTAssertGreaterThan(peers.all.first?.pipeID ?? 0, 0)
    }

    func testAsyncRequestsRunOffTheCooperativePool() async throws {
        // The cooperative pool has one thread per core (2 here).
        // Each handler is held until all 8 are in: were the async calls blocking the cooperative
        // pool (as many threads as cores), fewer would ever be in flight at once.
        let recorder = TransportRecorder<Int>()
        let release = DispatchSemaphore(value: 0)
        let server = try Support.server(options: .init(contexts: 8)) { body, _ in
            if body == Data([0]) { return body }  // the connection check
            if recorder.enter() == 8 { for _ in 0..<8 { release.signal() } }
            _ = release.wait(timeout: .now() + 20)
            recorder.leave()
            return body
        }
        defer { server.close() }
        let client = try RequestClient(dialing: server.address, options: .init(resendTime: nil))
        defer { client.close() }
        _ = try await client.request(Data([0]), timeout: .seconds(30))

        let start = ContinuousClock.now
        let replies = try await withThrowingTaskGroup(of: Data.self) { group in
            for i in 1...8 {
                group.addTask { try await client.request(Data([UInt8(i)]), timeout: .seconds(30)) }
            }
            var all: [Data] = []
            for try await reply in group { all.append(reply) }
            return all
        }
        let elapsed = Support.seconds(since: start)
        print("8 async requests held until all were in: \(elapsed) s on \(ProcessInfo.processInfo.activeProcessorCount) cores; max in handler at once: \(recorder.maxActive)")
        XCTAssertEqual(Set(replies), Set((1...8).map { Data([UInt8($0)]) }))
        XCTAssertEqual(recorder.maxActive, 8, "all 8 async calls were in flight at once")
    }

    func testAsyncRequestCancellationCancelsTheCall() async throws {
        let port = try Support.freePort()
        let client = try RequestClient(dialing: Support.url(port))  // nobody listens
        defer { client.close() }
        let start = ContinuousClock.now
        let task = Task { try await client.request(Data("x".utf8), timeout: .seconds(10)) }
        try await Task.sleep(for: .milliseconds(200))
        task.cancel()
        do {
            _ = try await task.value
            XCTFail("a cancelled call must not return a reply")
        } catch is CancellationError {
        } catch {
            XCTFail("expected CancellationError, got \(error)")
        }
        let elapsed = Support.seconds(since: start)
        print("cancelled async call ended after \(elapsed) s")
        XCTAssertLessThan(elapsed, 2)
    }
}
