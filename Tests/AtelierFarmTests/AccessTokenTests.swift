@testable import AtelierFarmCoordinator
import AtelierFarmProtocol
import AtelierFarmTransport
import AtelierFarmWorker
import AtelierImaging
import Foundation
import XCTest

/// Role tokens on a real coordinator (SQLite in a temporary folder): who may send what, job
/// ownership, the binding of a worker id to the token that registered it, drain_worker, and the
/// tokens file. The same checks run over real sockets in FarmTLSTests' end-to-end test.
final class AccessTokenTests: XCTestCase {
    /// name → (role, secret)
    private let secrets: [String: (AccessRole, String)] = [
        "alice": (.submit, AccessTokens.newSecret()), "bob": (.submit, AccessTokens.newSecret()),
        "workerA": (.work, AccessTokens.newSecret()), "workerB": (.work, AccessTokens.newSecret()),
        "root": (.admin, AccessTokens.newSecret()),
    ]

    private func harness() throws -> CoordinatorHarness {
        var options = CoordinatorOptions()
        let file = secrets.map { AccessTokens.line(name: $0.key, role: $0.value.0, secret: $0.value.1) }.joined(separator: "\n")
        options.accessTokens = try AccessTokens.parse("# test tokens\n" + file + "\n", source: "test")
        return try CoordinatorHarness(options: options)
    }

    private func send(_ h: CoordinatorHarness, as name: String?, _ body: Atelier_V1_Request.OneOf_Body,
                      requestID: String = UUID().uuidString, rawToken: String? = nil) -> Atelier_V1_Response {
        var request = Atelier_V1_Request()
        request.protocolVersion = 1
        request.requestID = requestID
        request.authToken = rawToken ?? name.flatMap { secrets[$0]?.1 } ?? ""
        request.body = body
        return h.coordinator.handle(request, peer: "test")
    }

    private func register(_ h: CoordinatorHarness, as name: String, worker: String) throws -> String {
        var r = Atelier_V1_RegisterWorkerRequest()
        r.workerName = worker
        r.capabilities.slots = 4
        r.capabilities.models = [.with { $0.name = "sd2"; $0.unetInChannels = 4 }]
        let response = send(h, as: name, .registerWorker(r))
        XCTAssertFalse(response.hasError, response.error.message)
        return response.registerWorker.workerID
    }

    private func submit(_ h: CoordinatorHarness, as name: String) throws -> String {
        let response = send(h, as: name, .submitJob(h.batch()))
        XCTAssertFalse(response.hasError, response.error.message)
        return response.submitJob.jobID
    }

    private func status(_ h: CoordinatorHarness, _ job: String) -> Atelier_V1_JobStatus {
        let response = send(h, as: "root", .jobStatus(.with { $0.jobID = job }))
        XCTAssertFalse(response.hasError, response.error.message)
        return response.jobStatus.job
    }

    private func lease(_ h: CoordinatorHarness, as name: String, worker: String) -> Atelier_V1_Response {
        send(h, as: name, .leaseTask(.with { $0.workerID = worker }))
    }

    func testRequestsWithoutOrWithAnUnknownTokenAreUnauthenticated() throws {
        let h = try harness()
        let none = send(h, as: nil, .listJobs(.init()))
        XCTAssertEqual(none.error.code, .unauthenticated)
        XCTAssertFalse(none.error.message.contains("\n"))
        XCTAssertTrue(none.error.message.contains("--token"), none.error.message)
        let unknown = send(h, as: nil, .listJobs(.init()), rawToken: AccessTokens.newSecret())
        XCTAssertEqual(unknown.error.code, .unauthenticated)
        XCTAssertFalse(send(h, as: "alice", .listJobs(.init())).hasError)
    }

    func testSubmitTokenCannotCancelAnothersJobButCanCancelItsOwn() throws {
        let h = try harness()
        _ = try register(h, as: "workerA", worker: "a")
        let alices = try submit(h, as: "alice")
        XCTAssertEqual(h.coordinator.handle(.with {
            $0.protocolVersion = 1; $0.requestID = UUID().uuidString; $0.authToken = secrets["bob"]!.1
            $0.body = .jobStatus(.with { $0.jobID = alices })
        }, peer: "t").jobStatus.job.owner, "alice", "job_status names the owner")

        let refused = send(h, as: "bob", .cancelJob(.with { $0.jobID = alices }))
        XCTAssertEqual(refused.error.code, .permissionDenied)
        XCTAssertTrue(refused.error.message.contains("bob") && !refused.error.message.contains("\n"), refused.error.message)
        XCTAssertEqual(status(h, alices).state, .queued, "the refused cancel changed nothing")

        let own = send(h, as: "alice", .cancelJob(.with { $0.jobID = alices }))
        XCTAssertFalse(own.hasError, own.error.message)
        XCTAssertEqual(own.cancelJob.job.state, .cancelled)
    }

    func testSubmitTokenCannotLeaseATaskNorRegisterNorDrain() throws {
        let h = try harness()
        let worker = try register(h, as: "workerA", worker: "a")
        _ = try submit(h, as: "alice")
        let leased = lease(h, as: "alice", worker: worker)
        XCTAssertEqual(leased.error.code, .permissionDenied)
        XCTAssertTrue(leased.error.message.contains("lease_task needs a work or admin token"), leased.error.message)
        XCTAssertEqual(send(h, as: "alice", .registerWorker(.init())).error.code, .permissionDenied)
        XCTAssertEqual(send(h, as: "alice", .drainWorker(.with { $0.workerID = worker })).error.code, .permissionDenied)
        XCTAssertEqual(send(h, as: "workerA", .submitJob(h.batch())).error.code, .permissionDenied,
                       "a work token cannot submit")
        XCTAssertTrue(lease(h, as: "workerA", worker: worker).leaseTask.hasLease, "the task was still there")
    }

    func testWorkerCannotCompleteATaskLeasedByAnotherWorkersToken() throws {
        let h = try harness()
        let a = try register(h, as: "workerA", worker: "a")
        _ = try register(h, as: "workerB", worker: "b")
        let job = try submit(h, as: "alice")
        let leased = lease(h, as: "workerA", worker: a)
        XCTAssertTrue(leased.leaseTask.hasLease, leased.error.message)
        let l = leased.leaseTask.lease

        // B knows A's worker id and the fencing token (say, read off a plain-TCP wire): not enough.
        var done = Atelier_V1_CompleteTaskRequest()
        done.workerID = a
        done.taskID = l.taskID
        done.fencingToken = l.fencingToken
        done.resultPng = pngData(width: 8, height: 8, value: 7)
        let stolen = send(h, as: "workerB", .completeTask(done))
        XCTAssertEqual(stolen.error.code, .permissionDenied)
        XCTAssertTrue(stolen.error.message.contains("registered with another token"), stolen.error.message)
        XCTAssertEqual(send(h, as: "workerB", .heartbeat(.with {
            $0.workerID = a; $0.taskID = l.taskID; $0.fencingToken = l.fencingToken
        })).error.code, .permissionDenied)
        XCTAssertEqual(send(h, as: "workerB", .releaseTask(.with {
            $0.workerID = a; $0.taskID = l.taskID; $0.fencingToken = l.fencingToken
        })).error.code, .permissionDenied)
        XCTAssertEqual(lease(h, as: "workerB", worker: a).error.code, .permissionDenied)
        // Nor can B take over A's id by registering under it.
        XCTAssertEqual(send(h, as: "workerB", .registerWorker(.with {
            $0.workerID = a; $0.capabilities.models = [.with { $0.name = "sd2" }]
        })).error.code, .permissionDenied)
        XCTAssertEqual(status(h, job).doneTasks, 0)

        // The fencing check still stands behind it: A itself with a wrong token is STALE_LEASE.
        var stale = done
        stale.fencingToken = l.fencingToken + 1000
        XCTAssertEqual(send(h, as: "workerA", .completeTask(stale)).error.code, .staleLease)
        XCTAssertFalse(send(h, as: "workerA", .completeTask(done)).hasError)
        XCTAssertEqual(status(h, job).state, .succeeded)
    }

    func testAdminCanCancelAnyJobAndDrainAWorker() throws {
        let h = try harness()
        let a = try register(h, as: "workerA", worker: "a")
        let job = try submit(h, as: "alice")
        let second = try submit(h, as: "bob")
        let leased = lease(h, as: "workerA", worker: a)
        XCTAssertTrue(leased.leaseTask.hasLease)

        let cancelled = send(h, as: "root", .cancelJob(.with { $0.jobID = second }))
        XCTAssertFalse(cancelled.hasError, cancelled.error.message)
        XCTAssertEqual(cancelled.cancelJob.job.state, .cancelled)

        let drained = send(h, as: "root", .drainWorker(.with { $0.workerID = a }))
        XCTAssertFalse(drained.hasError, drained.error.message)
        XCTAssertTrue(drained.drainWorker.worker.draining)
        XCTAssertEqual(send(h, as: "root", .drainWorker(.with { $0.workerID = "nobody" })).error.code, .notFound)

        // The current task goes on (heartbeat says drain, completion is accepted) …
        let l = leased.leaseTask.lease
        let beat = send(h, as: "workerA", .heartbeat(.with { $0.workerID = a; $0.taskID = l.taskID; $0.fencingToken = l.fencingToken }))
        XCTAssertFalse(beat.hasError, beat.error.message)
        XCTAssertTrue(beat.heartbeat.drain)
        XCTAssertFalse(send(h, as: "workerA", .completeTask(.with {
            $0.workerID = a; $0.taskID = l.taskID; $0.fencingToken = l.fencingToken; $0.resultPng = pngData(width: 8, height: 8, value: 1)
        })).hasError)
        XCTAssertEqual(status(h, job).state, .succeeded)
        // … but no new lease, and the listing shows it draining.
        _ = try submit(h, as: "alice")
        let refused = lease(h, as: "workerA", worker: a)
        XCTAssertEqual(refused.error.code, .permissionDenied)
        XCTAssertTrue(refused.error.message.hasPrefix(Coordinator.drainingMessage), refused.error.message)
        let listed = send(h, as: "alice", .listWorkers(.init())).listWorkers.workers
        XCTAssertEqual(listed.first { $0.workerID == a }?.draining, true)
        // Registering again (a restarted worker process) ends the drain.
        var again = Atelier_V1_RegisterWorkerRequest()
        again.workerID = a
        again.capabilities.models = [.with { $0.name = "sd2"; $0.unetInChannels = 4 }]
        XCTAssertFalse(send(h, as: "workerA", .registerWorker(again)).hasError)
        XCTAssertTrue(lease(h, as: "workerA", worker: a).leaseTask.hasLease)
    }

    func testAResentRequestIdIsAuthorisedBeforeItsStoredResponseIsReplayed() throws {
        let h = try harness()
        _ = try register(h, as: "workerA", worker: "a")
        let id = UUID().uuidString
        let first = send(h, as: "alice", .submitJob(h.batch()), requestID: id)
        XCTAssertFalse(first.hasError)
        // A work token reusing the id gets PERMISSION_DENIED, not alice's stored job id.
        let replay = send(h, as: "workerA", .submitJob(h.batch()), requestID: id)
        XCTAssertEqual(replay.error.code, .permissionDenied)
        XCTAssertTrue(replay.submitJob.jobID.isEmpty, "no job id leaked")
        XCTAssertEqual(send(h, as: "alice", .submitJob(h.batch()), requestID: id).submitJob.jobID, first.submitJob.jobID)
    }

    func testOpenAccessWithoutTokensRecordsNoOwner() throws {
        let h = try CoordinatorHarness()
        _ = h.register("w")
        let job = h.submit(h.batch())
        XCTAssertEqual(h.status(job).owner, "")
        XCTAssertFalse(h.send(.cancelJob(.with { $0.jobID = job })).hasError)
    }

    // MARK: A real worker across the switch to tokens

    /// A worker registered while access was open holds a row bound to no token. Once the
    /// coordinator restarts with `--tokens`, that row refuses the worker's (now checked) token
    /// with PERMISSION_DENIED: the worker registers again, which binds a row to its token, and
    /// carries on instead of exiting.
    func testWorkerWhoseIdIsBoundToAnotherTokenRegistersAgainAndCarriesOn() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("atelier-access-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        var open = CoordinatorOptions()
        open.heartbeatInterval = 0.2
        let openCoordinator = try Coordinator(directory: directory, options: open)
        let first = try RequestServer(listeningOn: "tcp://127.0.0.1:0")
        try first.serve { request, peer in openCoordinator.handle(request, peer: peer.description) }
        let port = try XCTUnwrap(first.boundPort)
        let lines = LineRecorder()
        let worker = FarmWorker(client: try FarmClient(address: first.address, authToken: secrets["workerA"]!.1),
                                engine: FlatEngine(), options: .init(name: "w", requestTimeout: .seconds(2)),
                                log: { lines.append($0) })
        let done = DispatchSemaphore(value: 0)
        Thread { worker.run(); done.signal() }.start()
        defer { worker.stop(); _ = done.wait(timeout: .now() + 10) }
        let registered = Date().addingTimeInterval(10)
        while !lines.all.contains(where: { $0.hasPrefix("registered as") }) && Date() < registered { Thread.sleep(forTimeInterval: 0.05) }
        XCTAssertTrue(lines.all.contains { $0.hasPrefix("registered as") }, "\(lines.all)")

        // The same directory and port, now with tokens.
        first.close()
        try openCoordinator.close()
        var guarded = open
        guarded.accessTokens = try AccessTokens.parse(
            secrets.map { AccessTokens.line(name: $0.key, role: $0.value.0, secret: $0.value.1) }.joined(separator: "\n"), source: "test")
        let coordinator = try Coordinator(directory: directory, options: guarded)
        let second = try RequestServer(listeningOn: "tcp://127.0.0.1:\(port)")
        defer { second.close() }
        try second.serve { request, peer in coordinator.handle(request, peer: peer.description) }

        let alice = try FarmClient(address: second.address, defaultTimeout: .seconds(5), authToken: secrets["alice"]!.1)
        defer { alice.close() }
        var batch = Atelier_V1_BatchJob()
        batch.prompts = ["a fox"]
        batch.count = 1
        batch.params.model = "base"
        batch.params.steps = 2
        batch.params.width = 64
        batch.params.height = 64
        let submitted = try alice.call(.with { $0.body = .submitJob(.with { $0.batch = batch }) })
        XCTAssertFalse(submitted.hasError, submitted.error.message)
        let deadline = Date().addingTimeInterval(20)
        var state = Atelier_V1_JobState.unspecified
        while state != .succeeded && Date() < deadline {
            state = try alice.call(.with { $0.body = .jobStatus(.with { $0.jobID = submitted.submitJob.jobID }) }).jobStatus.job.state
            Thread.sleep(forTimeInterval: 0.1)
        }
        XCTAssertEqual(state, .succeeded, "\(lines.all)")
        XCTAssertNil(worker.exitReason)
        XCTAssertTrue(lines.all.contains { $0.contains("registered without a token") && $0.contains("registering again") }, "\(lines.all)")
    }

    // MARK: The tokens file

    func testTokensFileErrorsAreOneLineAndNameTheLine() throws {
        let hash = SHA256.hex("secret")
        let cases: [(String, String)] = [
            ("alice submit", "line 1: expected `NAME ROLE SHA256HEX` (3 fields), found 2"),
            ("alice root \(hash)", "line 1: unknown role \"root\""),
            ("# c\n\nalice submit secret", "line 3: the hash must be 64 hex digits"),
            ("alice submit \(hash)\nalice work \(hash)", "line 2: the name \"alice\" is used twice"),
            ("al ice submit \(hash)", "line 1: expected"),
            ("al/ice submit \(hash)", "line 1: the name must be"),
            ("# only a comment\n", "holds no tokens"),
        ]
        for (text, expected) in cases {
            XCTAssertThrowsError(try AccessTokens.parse(text, source: "t.tokens")) { error in
                let message = "\(error)"
                XCTAssertTrue(message.contains(expected), "\(text): \(message)")
                XCTAssertFalse(message.contains("\n"), message)
                XCTAssertFalse(message.contains("secret") && !text.contains("alice submit secret"), message)
            }
        }
        let parsed = try AccessTokens.parse("x admin \(hash.uppercased())", source: "t")
        XCTAssertEqual(parsed.authenticate("secret"), AccessCaller(name: "x", role: .admin))
        XCTAssertNil(parsed.authenticate("Secret"))
        XCTAssertThrowsError(try AccessTokens.load(path: "/nonexistent/tokens")) { error in
            XCTAssertTrue("\(error)".contains("does not exist"), "\(error)")
        }
    }

    func testSHA256MatchesTheStandardVectors() {
        XCTAssertEqual(SHA256.hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(SHA256.hex(String(repeating: "a", count: 1000)),
                       "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
    }
}

/// Renders every task as a flat image of the asked size.
private final class FlatEngine: RenderEngine, @unchecked Sendable {
    let models: [Atelier_V1_ModelInfo] = [.with { $0.name = "base"; $0.contentHash = "flat" }]

    func render(_ task: Atelier_V1_TaskSpec, progress: @escaping (Int, Int) -> Bool) throws -> Data {
        let params = task.image.params
        for step in 1...max(1, Int(params.steps)) where !progress(step, Int(params.steps)) { throw RenderCancelled() }
        let image = try RGBImage(width: Int(params.width), height: Int(params.height), red: 1, green: 2, blue: 3)
        return Data(try PNGCodec.encode(image))
    }
}

private final class LineRecorder: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String] = []
    func append(_ item: String) { lock.lock(); items.append(item); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return items }
}
