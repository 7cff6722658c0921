import AtelierDiffusion
@testable import AtelierFarmCoordinator
@testable import AtelierFarmProtocol
@testable import AtelierFarmTransport
@testable import AtelierFarmWorker
import Foundation
import XCTest

/// The tiny diffusers model rendering farm image tasks: the same pipeline `atelier worker`
/// runs, in-process so the test can drive a `FarmWorker` directly.
private final class TinyPipelineEngine: RenderEngine, @unchecked Sendable {
    let pipeline: StableDiffusionPipeline
    let models: [Atelier_V1_ModelInfo]

    init() throws {
        pipeline = try StableDiffusionPipeline.load(FarmProcessSupport.tinyBase)
        let channels = UInt32(pipeline.model.unet.config.inChannels)
        models = [.with { $0.name = "base"; $0.unetInChannels = channels }]
    }

    func render(_ task: Atelier_V1_TaskSpec, progress: @escaping (Int, Int) -> Bool) throws -> Data {
        let p = task.image.params
        var r = GenerationRequest(prompt: p.prompt)
        r.seed = p.seed
        r.steps = Int(p.steps)
        r.width = Int(p.width)
        r.height = Int(p.height)
        do {
            let result = try pipeline.generate(r, progress: progress)
            return Data(try PNGCodec.encode(result.image, text: [.parameters(result.parameters)]))
        } catch PipelineError.cancelled {
            throw RenderCancelled()
        }
    }
}

/// A heartbeat answered with an error other than STALE_LEASE / NOT_FOUND / cancel does not make
/// the worker throw its render away.
final class FarmWorkerHeartbeatErrorTests: XCTestCase {
    func testHeartbeatInternalErrorDoesNotCancelTheRender() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("atelier-hb-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        var options = CoordinatorOptions()
        options.heartbeatInterval = 0.2  // heartbeats come fast; the lease (30 s) outlives the render
        let coordinator = try Coordinator(directory: directory, options: options)
        let server = try RequestServer(listeningOn: "tcp://127.0.0.1:0")
        defer { server.close() }
        let refusedHeartbeats = Counter()
        // Fault injection on a real coordinator behind a real socket: every heartbeat is answered
        // INTERNAL (a coordinator whose disk is failing), everything else normally.
        try server.serve { request, peer in
            if case .heartbeat? = request.body {
                refusedHeartbeats.increment()
                return FarmWire.errorResponse(.internal, "database error: disk I/O error", requestID: request.requestID)
            }
            return coordinator.handle(request, peer: peer.description)
        }

        let engine = try TinyPipelineEngine()
        let lines = Lines()
        let worker = FarmWorker(client: try FarmClient(address: server.address), engine: engine,
                                options: .init(name: "steady", requestTimeout: .seconds(5)), log: { lines.append($0) })
        let done = DispatchSemaphore(value: 0)
        Thread { worker.run(); done.signal() }.start()
        defer {
            worker.stop()
            _ = done.wait(timeout: .now() + 10)
            worker.client.close()
        }

        let client = try FarmClient(address: server.address, defaultTimeout: .seconds(5))
        defer { client.close() }
        _ = try FarmProcessSupport.poll("the worker to register", timeout: 20) { () -> Bool? in
            let workers = try client.call(.with { $0.listWorkers = .init() }).listWorkers.workers
            return workers.isEmpty ? nil : true
        }
        var batch = Atelier_V1_BatchJob()
        batch.prompts = ["a lighthouse"]
        batch.count = 1
        batch.params.model = "base"
        batch.params.steps = 40
        batch.params.width = 64
        batch.params.height = 64
        let submitted = try client.call(.with { $0.submitJob = .with { $0.batch = batch } })
        XCTAssertFalse(submitted.hasError, submitted.error.message)
        let job = submitted.submitJob.jobID
        let status = try FarmProcessSupport.poll("the job to finish", timeout: 15, interval: 0.1) { () -> Atelier_V1_JobStatus? in
            let s = try client.call(.with { $0.jobStatus = .with { $0.jobID = job; $0.includeTasks = true } }).jobStatus.job
            return s.state == .succeeded || s.state == .failed ? s : nil
        }
        XCTAssertEqual(status.state, .succeeded, "\(status.errors)\n\(lines.all)")
        XCTAssertEqual(status.tasks.first?.attempts, 1, "the render went on despite the heartbeat errors")
        XCTAssertGreaterThanOrEqual(refusedHeartbeats.value, 1, "at least one heartbeat was answered INTERNAL")
        XCTAssertFalse(lines.all.contains("dropping it"), lines.all)
    }
}

private final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func increment() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}

private final class Lines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func append(_ line: String) { lock.lock(); lines.append(line); lock.unlock() }
    var all: String { lock.lock(); defer { lock.unlock() }; return lines.joined(separator: "\n") }
}
