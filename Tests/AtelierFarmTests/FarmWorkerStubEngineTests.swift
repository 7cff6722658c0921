@testable import AtelierFarmCoordinator
import AtelierFarmProtocol
import AtelierFarmTransport
@testable import AtelierFarmWorker
import AtelierImaging
import Foundation
import XCTest

/// The worker loop on its own: a real `Coordinator` behind a real nng REQ/REP socket, a real
/// `FarmWorker`, and a test engine in place of the diffusion pipelines (the worker reaches an
/// engine only through `RenderEngine`, so it needs none to be tested). Each test is about what
/// the worker sends the coordinator, whatever the engine does.
final class FarmWorkerStubEngineTests: XCTestCase {
    /// An engine error is reported with fail_task and its message: the coordinator charges the
    /// attempt and, with max_attempts 1, fails the job with the engine's words.
    func testEngineErrorIsReportedWithFailTaskAndChargedAsAnAttempt() throws {
        let engine = StubEngine(behaviour: .fail("the UNet ran out of memory"))
        let farm = try StubFarm(engine: engine)
        defer { farm.shutDown() }
        let job = try farm.submitBatch(maxAttempts: 1)
        let status = try farm.waitForEnd(of: job)
        XCTAssertEqual(status.state, .failed, farm.lines.joined)
        XCTAssertEqual(status.tasks.first?.attempts, 1)
        XCTAssertTrue(status.errors.contains { $0.contains("the UNet ran out of memory") && $0.contains("stub-worker") },
                      "\(status.errors)")
        XCTAssertEqual(engine.renders, 1)
        XCTAssertEqual(farm.calls.count(of: "failTask"), 1)
    }

    /// A task that breaks the shared request rules is refused by the worker before its engine
    /// runs (here the lease is rewritten on its way to the worker, as an older coordinator might
    /// have let it through): fail_task with the rule's message, no render.
    func testInvalidTaskIsRefusedBeforeTheEngineRuns() throws {
        let engine = StubEngine(behaviour: .render)
        let farm = try StubFarm(engine: engine, rewriteLease: { response in
            guard response.leaseTask.hasLease else { return response }
            var r = response
            r.leaseTask.lease.task.image.params.steps = 5000  // RequestLimits.steps is 1…1000
            return r
        })
        defer { farm.shutDown() }
        let job = try farm.submitBatch(maxAttempts: 1)
        let status = try farm.waitForEnd(of: job)
        XCTAssertEqual(status.state, .failed, farm.lines.joined)
        XCTAssertTrue(status.errors.contains { $0.contains("steps") && $0.contains("5000") }, "\(status.errors)")
        XCTAssertEqual(engine.renders, 0, "the engine never saw the invalid task")
    }

    /// complete_task answered INTERNAL twice (a coordinator that cannot write for a moment): the
    /// worker keeps its one render and resends the completion with the same request id until it
    /// is accepted, so the coordinator applies it once.
    func testCompletionIsRetriedWithTheSameRequestIDAfterInternalErrors() throws {
        let engine = StubEngine(behaviour: .render)
        let completions = Recorder()
        let farm = try StubFarm(engine: engine, intercept: { request in
            guard case .completeTask? = request.body else { return nil }
            completions.append(request.requestID)
            guard completions.count <= 2 else { return nil }
            return FarmWire.errorResponse(.internal, "database error: disk I/O error", requestID: request.requestID)
        })
        defer { farm.shutDown() }
        let job = try farm.submitBatch(maxAttempts: 3)
        let status = try farm.waitForEnd(of: job)
        XCTAssertEqual(status.state, .succeeded, "\(status.errors)\n\(farm.lines.joined)")
        XCTAssertEqual(status.tasks.first?.attempts, 1)
        XCTAssertEqual(engine.renders, 1, "the finished render was kept, not redone")
        XCTAssertEqual(completions.count, 3)
        XCTAssertEqual(Set(completions.all).count, 1, "one request id for every resend: \(completions.all)")
    }

    /// Stopping the worker mid-render: the engine is told to stop (its progress callback answers
    /// false), the worker hands the lease back with release_task, and the task is queued again
    /// with no attempt charged.
    func testStopMidRenderReleasesTheLeaseWithoutChargingAnAttempt() throws {
        let engine = StubEngine(behaviour: .renderUntilStopped)
        let farm = try StubFarm(engine: engine)
        defer { farm.shutDown() }
        let job = try farm.submitBatch(maxAttempts: 3)
        _ = try FarmProcessSupport.poll("the engine to start", timeout: 20, interval: 0.05) { engine.renders > 0 ? true : nil }
        farm.worker.stop()
        let task = try FarmProcessSupport.poll("the task to be queued again", timeout: 15, interval: 0.05) {
            () -> Atelier_V1_TaskStatus? in
            try farm.status(of: job).tasks.first.flatMap { $0.state == .queued ? $0 : nil }
        }
        XCTAssertEqual(task.attempts, 0, "a released lease is not charged")
        XCTAssertEqual(farm.calls.count(of: "releaseTask"), 1)
        XCTAssertEqual(farm.calls.count(of: "failTask"), 0)
        XCTAssertTrue(farm.lines.joined.contains("released \(task.taskID)"), farm.lines.joined)
    }
}

/// A test engine: renders a solid PNG of the size the task asks for, fails with a given
/// message, or keeps "rendering" (reporting steps) until its progress callback says stop.
private final class StubEngine: RenderEngine, @unchecked Sendable {
    enum Behaviour { case render, fail(String), renderUntilStopped }
    struct Failure: Error, CustomStringConvertible { let description: String }

    let behaviour: Behaviour
    let models: [Atelier_V1_ModelInfo] = [.with { $0.name = "base"; $0.contentHash = "stub" }]
    private let lock = NSLock()
    private var renderCount = 0
    var renders: Int { lock.lock(); defer { lock.unlock() }; return renderCount }

    init(behaviour: Behaviour) { self.behaviour = behaviour }

    func render(_ task: Atelier_V1_TaskSpec, progress: @escaping (Int, Int) -> Bool) throws -> Data {
        lock.lock(); renderCount += 1; lock.unlock()
        let params = task.image.params
        switch behaviour {
        case .fail(let message):
            throw Failure(description: message)
        case .renderUntilStopped:
            var step = 0
            while progress(step % 1000, 1000) {
                step += 1
                Thread.sleep(forTimeInterval: 0.01)
            }
            throw RenderCancelled()
        case .render:
            for step in 1...max(1, Int(params.steps)) where !progress(step, Int(params.steps)) { throw RenderCancelled() }
            let image = try RGBImage(width: Int(params.width), height: Int(params.height), red: 10, green: 20, blue: 30)
            return Data(try PNGCodec.encode(image))
        }
    }
}

/// A coordinator in a temporary folder, served on a real socket, with one `FarmWorker` thread.
/// `intercept` may answer a request itself (fault injection); `rewriteLease` may change a
/// lease_task response on its way to the worker.
private final class StubFarm: @unchecked Sendable {
    let directory: URL
    let server: RequestServer
    let coordinator: Coordinator
    let worker: FarmWorker
    let client: FarmClient
    let lines: Recorder
    let calls: Recorder
    private let finished = DispatchSemaphore(value: 0)

    init(engine: RenderEngine,
         intercept: @escaping @Sendable (Atelier_V1_Request) -> Atelier_V1_Response? = { _ in nil },
         rewriteLease: @escaping @Sendable (Atelier_V1_Response) -> Atelier_V1_Response = { $0 }) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("atelier-stub-\(UUID().uuidString)")
        var options = CoordinatorOptions()
        options.heartbeatInterval = 0.2
        let coordinator = try Coordinator(directory: directory, options: options)
        self.coordinator = coordinator
        server = try RequestServer(listeningOn: "tcp://127.0.0.1:0")
        let calls = Recorder(), lines = Recorder()
        self.calls = calls
        self.lines = lines
        try server.serve { request, peer in
            if let body = request.body { calls.append(Self.name(of: body)) }
            if let answer = intercept(request) { return answer }
            let response = coordinator.handle(request, peer: peer.description)
            if case .leaseTask? = request.body { return rewriteLease(response) }
            return response
        }
        worker = FarmWorker(client: try FarmClient(address: server.address), engine: engine,
                            options: .init(name: "stub-worker", requestTimeout: .seconds(5)), log: { lines.append($0) })
        client = try FarmClient(address: server.address, defaultTimeout: .seconds(5))
        let (worker, finished) = (worker, finished)
        Thread { worker.run(); finished.signal() }.start()
    }

    static func name(of body: Atelier_V1_Request.OneOf_Body) -> String {
        String("\(body)".prefix { $0 != "(" })
    }

    func submitBatch(maxAttempts: UInt32) throws -> String {
        _ = try FarmProcessSupport.poll("the worker to register", timeout: 20, interval: 0.05) { () -> Bool? in
            try client.call(.with { $0.listWorkers = .init() }).listWorkers.workers.isEmpty ? nil : true
        }
        var batch = Atelier_V1_BatchJob()
        batch.prompts = ["a lighthouse"]
        batch.count = 1
        batch.params.model = "base"
        batch.params.steps = 4
        batch.params.width = 64
        batch.params.height = 64
        let response = try client.call(.with {
            $0.submitJob = .with { $0.batch = batch; $0.maxAttempts = maxAttempts }
        })
        guard !response.hasError else { throw StubEngine.Failure(description: response.error.message) }
        return response.submitJob.jobID
    }

    func status(of job: String) throws -> Atelier_V1_JobStatus {
        try client.call(.with { $0.jobStatus = .with { $0.jobID = job; $0.includeTasks = true } }).jobStatus.job
    }

    func waitForEnd(of job: String) throws -> Atelier_V1_JobStatus {
        try FarmProcessSupport.poll("the job to finish", timeout: 20, interval: 0.05) { () -> Atelier_V1_JobStatus? in
            let s = try status(of: job)
            return s.state == .succeeded || s.state == .failed ? s : nil
        }
    }

    func shutDown() {
        worker.stop()
        _ = finished.wait(timeout: .now() + 10)
        worker.client.close()
        client.close()
        server.close()
        try? FileManager.default.removeItem(at: directory)
    }
}

private final class Recorder: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String] = []
    func append(_ item: String) { lock.lock(); items.append(item); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return items }
    var count: Int { all.count }
    func count(of item: String) -> Int { all.filter { $0 == item }.count }
}

extension Recorder {
    var joined: String { all.joined(separator: "\n") }
}
