import AtelierDiffusion
@testable import AtelierFarmCoordinator
@testable import AtelierFarmProtocol
@testable import AtelierFarmTransport
@testable import AtelierFarmWorker
import Foundation
import XCTest

// MARK: - Harness (shared by the Coordinator*Tests files)

/// A settable clock, so lease expiry is tested without sleeping.
final class TestClock: @unchecked Sendable {
    private let lock = NSLock()
    private var current = Date(timeIntervalSince1970: 1_700_000_000)

    var now: Date {
        lock.lock()
        defer { lock.unlock() }
        return current
    }

    func advance(_ seconds: TimeInterval) {
        lock.lock()
        current += seconds
        lock.unlock()
    }
}

/// A coordinator on a real SQLite file in a temporary directory, with helpers that speak the
/// protocol the way workers and clients do.
final class CoordinatorHarness {
    let directory: URL
    let clock = TestClock()
    let options: CoordinatorOptions
    private(set) var coordinator: Coordinator

    init(options: CoordinatorOptions = CoordinatorOptions()) throws {
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("atelier-coordinator-tests-\(UUID().uuidString)")
        self.options = options
        let clock = self.clock
        coordinator = try Coordinator(directory: directory, options: options, now: { clock.now })
    }

    deinit {
        try? FileManager.default.removeItem(at: directory)
    }

    /// Closes the coordinator and opens a new one on the same directory, as after a restart.
    func restart() throws {
        try coordinator.close()
        let clock = self.clock
        coordinator = try Coordinator(directory: directory, options: options, now: { clock.now })
    }

    @discardableResult
    func send(_ body: Atelier_V1_Request.OneOf_Body, requestID: String = UUID().uuidString,
              peer: String = "tcp://10.0.0.1:5000") -> Atelier_V1_Response {
        var request = Atelier_V1_Request()
        request.protocolVersion = 1
        request.requestID = requestID
        request.body = body
        return coordinator.handle(request, peer: peer)
    }

    /// Registers a worker. Its `slots` default to 16 because most tests lease several tasks from
    /// one worker in a row; tests about slots pass 0 (= 1, what a real worker declares).
    func register(_ name: String, models: [(String, UInt32)] = [("sd2", 4)], id: String = "", slots: UInt32 = 16) -> String {
        var r = Atelier_V1_RegisterWorkerRequest()
        r.workerName = name
        r.workerID = id
        r.capabilities.slots = slots
        r.capabilities.models = models.map { name, channels in
            var m = Atelier_V1_ModelInfo()
            m.name = name
            m.unetInChannels = channels
            return m
        }
        let response = send(.registerWorker(r))
        XCTAssertFalse(response.hasError, "register: \(response.error.message)")
        return response.registerWorker.workerID
    }

    func batch(prompts: [String] = ["a lighthouse"], count: UInt32 = 1, model: String = "sd2", seed: UInt64 = 42,
               priority: Int32 = 0, maxAttempts: UInt32 = 0, width: UInt32 = 0, height: UInt32 = 0) -> Atelier_V1_SubmitJobRequest {
        var b = Atelier_V1_BatchJob()
        b.prompts = prompts
        b.count = count
        b.params.model = model
        b.params.seed = seed
        b.params.steps = 20
        b.params.width = width
        b.params.height = height
        var s = Atelier_V1_SubmitJobRequest()
        s.batch = b
        s.priority = priority
        s.maxAttempts = maxAttempts
        return s
    }

    func submit(_ job: Atelier_V1_SubmitJobRequest, file: StaticString = #filePath, line: UInt = #line) -> String {
        let response = send(.submitJob(job))
        XCTAssertFalse(response.hasError, "submit: \(response.error.message)", file: file, line: line)
        return response.submitJob.jobID
    }

    func leaseResponse(_ worker: String) -> Atelier_V1_Response {
        var r = Atelier_V1_LeaseTaskRequest()
        r.workerID = worker
        return send(.leaseTask(r))
    }

    func lease(_ worker: String, file: StaticString = #filePath, line: UInt = #line) -> Atelier_V1_Lease? {
        let response = leaseResponse(worker)
        XCTAssertFalse(response.hasError, "lease: \(response.error.message)", file: file, line: line)
        return response.leaseTask.hasLease ? response.leaseTask.lease : nil
    }

    func heartbeat(_ worker: String, _ lease: Atelier_V1_Lease, step: UInt32 = 1, total: UInt32 = 20) -> Atelier_V1_Response {
        var r = Atelier_V1_HeartbeatRequest()
        r.workerID = worker
        r.taskID = lease.taskID
        r.fencingToken = lease.fencingToken
        r.step = step
        r.totalSteps = total
        return send(.heartbeat(r))
    }

    func complete(_ worker: String, _ lease: Atelier_V1_Lease, png: Data? = nil,
                  requestID: String = UUID().uuidString) -> Atelier_V1_Response {
        var r = Atelier_V1_CompleteTaskRequest()
        r.workerID = worker
        r.taskID = lease.taskID
        r.fencingToken = lease.fencingToken
        r.resultPng = png ?? pngData(width: 8, height: 8, value: 99)
        r.renderSeconds = 1.5
        return send(.completeTask(r), requestID: requestID)
    }

    func fail(_ worker: String, _ lease: Atelier_V1_Lease, _ message: String) -> Atelier_V1_Response {
        var r = Atelier_V1_FailTaskRequest()
        r.workerID = worker
        r.taskID = lease.taskID
        r.fencingToken = lease.fencingToken
        r.message = message
        return send(.failTask(r))
    }

    /// Waits for background stitches first, as a client polling until the job ends would.
    func status(_ jobID: String, tasks: Bool = true) -> Atelier_V1_JobStatus {
        coordinator.waitForStitches()
        var r = Atelier_V1_JobStatusRequest()
        r.jobID = jobID
        r.includeTasks = tasks
        let response = send(.jobStatus(r))
        XCTAssertFalse(response.hasError, "status: \(response.error.message)")
        return response.jobStatus.job
    }

    func fetch(_ jobID: String, index: UInt32) -> Atelier_V1_Response {
        coordinator.waitForStitches()
        var r = Atelier_V1_FetchResultRequest()
        r.jobID = jobID
        r.index = index
        return send(.fetchResult(r))
    }
}

/// PNG bytes of a flat RGB image.
func pngData(width: Int, height: Int, value: UInt8) -> Data {
    pngData(width: width, height: height, pixels: [UInt8](repeating: value, count: width * height * 3))
}

func pngData(width: Int, height: Int, pixels: [UInt8]) -> Data {
    // The inputs are built by the tests themselves; a failure here is a bug in the test.
    guard let image = try? RGBImage(width: width, height: height, pixels: pixels),
          let bytes = try? PNGCodec.encode(image) else {
        XCTFail("could not encode a \(width)x\(height) test PNG")
        return Data()
    }
    return Data(bytes)
}

// MARK: - Submission, scheduling, idempotency, cancellation, restart

final class CoordinatorTests: XCTestCase {
    func testBatchSplitsIntoOneTaskPerImageWithSeedPlusIndex() throws {
        let h = try CoordinatorHarness()
        let worker = h.register("w1")
        let job = h.submit(h.batch(prompts: ["a red fox", "a blue whale"], count: 3, seed: UInt64.max - 2))

        let status = h.status(job)
        XCTAssertEqual(status.totalTasks, 6)
        XCTAssertEqual(status.kind, "batch")
        XCTAssertEqual(status.state, .queued)
        XCTAssertEqual(status.tasks.map(\.index), [0, 1, 2, 3, 4, 5])

        var seen = [UInt32: Atelier_V1_ImageTask]()
        while let lease = h.lease(worker) {
            seen[lease.task.image.index] = lease.task.image
            XCTAssertEqual(lease.jobID, job)
            XCTAssertEqual(lease.attempt, 1)
        }
        XCTAssertEqual(seen.count, 6)
        for (index, image) in seen {
            XCTAssertEqual(image.params.prompt, index < 3 ? "a red fox" : "a blue whale", "index = p·K + k")
            XCTAssertEqual(image.params.seed, (UInt64.max - 2) &+ UInt64(index), "seed + index, wrapping")
            XCTAssertEqual(image.params.model, "sd2")
            XCTAssertEqual(image.params.steps, 20)
        }
        XCTAssertEqual(h.status(job).state, .running)
    }

    func testSharedInputsReachEveryLeasedTask() throws {
        let h = try CoordinatorHarness()
        let worker = h.register("w1", models: [("sd2", 0)])
        var job = h.batch(count: 2)
        let initImage = pngData(width: 64, height: 64, value: 7)
        job.batch.params.initImagePng = initImage
        job.batch.params.strength = 0.6
        _ = h.submit(job)
        let first = try XCTUnwrap(h.lease(worker))
        let second = try XCTUnwrap(h.lease(worker))
        XCTAssertEqual(first.task.image.params.initImagePng, initImage)
        XCTAssertEqual(second.task.image.params.initImagePng, initImage)
        XCTAssertEqual(second.task.image.params.strength, 0.6)
    }

    func testTaskGoesOnlyToWorkersWithItsModel() throws {
        let h = try CoordinatorHarness()
        let sd2 = h.register("sd2-box", models: [("sd2", 4)])
        let inpaint = h.register("inpaint-box", models: [("sd2-inpaint", 9)])
        let job = h.submit(h.batch(count: 2, model: "sd2"))

        XCTAssertNil(h.lease(inpaint), "the inpainting worker does not have sd2")
        let lease = try XCTUnwrap(h.lease(sd2))
        XCTAssertEqual(lease.jobID, job)

        // Same name, wrong UNet: a model registered under "sd2" with 9 channels cannot run txt2img.
        let mismatched = h.register("odd-box", models: [("sd2", 9)])
        XCTAssertNil(h.lease(mismatched))
        let lenient = h.register("old-box", models: [("sd2", 0)])
        XCTAssertNotNil(h.lease(lenient), "0 channels = unknown, trusted")
    }

    func testHigherPriorityJobsLeaseFirst() throws {
        let h = try CoordinatorHarness()
        let worker = h.register("w")
        let low = h.submit(h.batch(count: 2, priority: 0))
        let high = h.submit(h.batch(count: 2, priority: 10))
        let lowToo = h.submit(h.batch(count: 1, priority: 0))
        let order = (0..<5).compactMap { _ in h.lease(worker) }.map { "\($0.jobID)/\($0.task.image.index)" }
        XCTAssertEqual(order, ["\(high)/0", "\(high)/1", "\(low)/0", "\(low)/1", "\(lowToo)/0"],
                       "priority, then submission order, then index")
    }

    func testFullQueueRefusesWithQueueFull() throws {
        var options = CoordinatorOptions()
        options.maxUnfinishedTasks = 10
        let h = try CoordinatorHarness(options: options)
        _ = h.register("w")
        _ = h.submit(h.batch(count: 8))
        let refused = h.send(.submitJob(h.batch(count: 3)))
        XCTAssertEqual(refused.error.code, .queueFull)
        XCTAssertTrue(refused.error.message.contains("8 unfinished"), refused.error.message)
        XCTAssertFalse(h.send(.submitJob(h.batch(count: 2))).hasError, "exactly at the cap is fine")
        XCTAssertEqual(h.send(.submitJob(h.batch(count: 20))).error.code, .queueFull, "larger than the whole queue")
    }

    func testUnknownModelIsRefusedWhenTheSubmitterRequiresAWorker() throws {
        let h = try CoordinatorHarness()
        var strict = h.batch(model: "sd2")
        strict.requireWorker = true
        XCTAssertEqual(h.send(.submitJob(strict)).error.code, .unknownModel, "no workers at all")
        _ = h.register("w", models: [("sd2", 4)])
        var sdxl = h.batch(model: "sdxl")
        sdxl.requireWorker = true
        let refused = h.send(.submitJob(sdxl))
        XCTAssertEqual(refused.error.code, .unknownModel)
        XCTAssertTrue(refused.error.message.contains("sd2"), "lists the registered models: \(refused.error.message)")

        // A registered model whose UNet cannot do the job's mode is refused too.
        var upscale = Atelier_V1_SubmitJobRequest()
        upscale.upscale.imagePng = pngData(width: 32, height: 32, value: 1)
        upscale.upscale.params.model = "sd2"
        XCTAssertEqual(h.send(.submitJob(upscale)).error.code, .unknownModel)
    }

    func testInvalidSubmissionsAreRefusedWithReasons() throws {
        let h = try CoordinatorHarness()
        _ = h.register("w")
        func code(_ edit: (inout Atelier_V1_SubmitJobRequest) -> Void) -> Atelier_V1_ErrorCode {
            var job = h.batch()
            edit(&job)
            return h.send(.submitJob(job)).error.code
        }
        XCTAssertEqual(code { $0.batch.prompts = [] }, .invalidArgument)
        XCTAssertEqual(code { $0.batch.prompts = ["ok", "  "] }, .invalidArgument)
        XCTAssertEqual(code { $0.batch.count = 0 }, .invalidArgument)
        XCTAssertEqual(code { $0.batch.count = 1001 }, .invalidArgument)
        XCTAssertEqual(code { $0.batch.params.steps = 1001 }, .invalidArgument)
        XCTAssertEqual(code { $0.batch.params.width = 500 }, .invalidArgument)
        XCTAssertEqual(code { $0.batch.params.model = "" }, .invalidArgument)
        XCTAssertEqual(code { $0.batch.params.scheduler = "lms" }, .invalidArgument)
        XCTAssertEqual(code { $0.batch.params.maskPng = pngData(width: 8, height: 8, value: 1) }, .invalidArgument)
        XCTAssertEqual(code { $0.batch.params.initImagePng = Data("not a png".utf8) }, .invalidArgument)
        XCTAssertEqual(code { $0.job = nil }, .invalidArgument)
        XCTAssertEqual(code { _ in }, .unspecified, "the unedited job is valid")

        var noID = Atelier_V1_Request()
        noID.protocolVersion = 1
        noID.body = .listJobs(Atelier_V1_ListJobsRequest())
        XCTAssertEqual(h.coordinator.handle(noID, peer: "p").error.code, .invalidArgument, "empty request_id")
        noID.requestID = "x"
        noID.protocolVersion = 2
        XCTAssertEqual(h.coordinator.handle(noID, peer: "p").error.code, .unsupportedVersion)
        XCTAssertEqual(h.send(.leaseTask(Atelier_V1_LeaseTaskRequest())).error.code, .unknownWorker)
        let garbage = h.coordinator.handle(serializedRequest: Data([0xFF, 0xFF, 0xFF]), peer: "p")
        XCTAssertEqual(try Atelier_V1_Response(serializedBytes: garbage).error.code, .malformed)
    }

    func testDuplicateRequestIdReturnsStoredResponse() throws {
        let h = try CoordinatorHarness()
        let worker = h.register("w")
        let submitID = UUID().uuidString
        let first = h.send(.submitJob(h.batch(count: 2)), requestID: submitID)
        let again = h.send(.submitJob(h.batch(count: 2)), requestID: submitID, peer: "tcp://10.0.0.9:777")
        XCTAssertEqual(first, again, "a resend (even from another connection) gets the first response")
        XCTAssertEqual(h.send(.listJobs(.init())).listJobs.jobs.count, 1, "and no second job was created")

        let leaseID = UUID().uuidString
        var leaseRequest = Atelier_V1_LeaseTaskRequest()
        leaseRequest.workerID = worker
        let lease1 = h.send(.leaseTask(leaseRequest), requestID: leaseID)
        let lease2 = h.send(.leaseTask(leaseRequest), requestID: leaseID)
        XCTAssertEqual(lease1, lease2, "a resent lease_task does not grant a second lease")
        XCTAssertEqual(h.status(first.submitJob.jobID).tasks.filter { $0.state == .leased }.count, 1)

        // The same id for a different request is refused, not answered with the old response.
        let reused = h.send(.submitJob(h.batch(count: 5)), requestID: submitID)
        XCTAssertEqual(reused.error.code, .invalidArgument)

        // Refusals are not remembered: after registering, the same resent request can succeed.
        var ghost = Atelier_V1_LeaseTaskRequest()
        ghost.workerID = "nobody"
        XCTAssertEqual(h.send(.leaseTask(ghost), requestID: "retry-me").error.code, .unknownWorker)
        XCTAssertEqual(h.send(.leaseTask(ghost), requestID: "retry-me").error.code, .unknownWorker)
    }

    func testCancelStopsQueuedAndRunningTasks() throws {
        let h = try CoordinatorHarness()
        let worker = h.register("w")
        let job = h.submit(h.batch(count: 3))
        let running = try XCTUnwrap(h.lease(worker))

        var cancel = Atelier_V1_CancelJobRequest()
        cancel.jobID = job
        let response = h.send(.cancelJob(cancel))
        XCTAssertEqual(response.cancelJob.job.state, .cancelled)
        XCTAssertEqual(h.status(job).tasks.map(\.state), [.cancelled, .cancelled, .cancelled])

        XCTAssertNil(h.lease(worker), "cancelled tasks are never handed out")
        let beat = h.heartbeat(worker, running)
        XCTAssertFalse(beat.hasError)
        XCTAssertTrue(beat.heartbeat.cancel, "the running worker is told to stop")
        XCTAssertEqual(h.complete(worker, running).error.code, .staleLease, "and its result is refused")
        XCTAssertEqual(h.fetch(job, index: 0).error.code, .notFound)

        // Cancelling again, or a finished job, changes nothing.
        XCTAssertEqual(h.send(.cancelJob(cancel)).cancelJob.job.state, .cancelled)
        cancel.jobID = "000000000000"
        XCTAssertEqual(h.send(.cancelJob(cancel)).error.code, .notFound)
    }

    func testCompletedBatchIsFetchableAndListed() throws {
        let h = try CoordinatorHarness()
        let worker = h.register("w")
        let job = h.submit(h.batch(count: 2, width: 64, height: 64))
        let png0 = pngData(width: 64, height: 64, value: 10)
        let png1 = pngData(width: 64, height: 64, value: 20)
        let a = try XCTUnwrap(h.lease(worker))
        XCTAssertEqual(h.fetch(job, index: 0).error.code, .notFound, "not rendered yet")
        XCTAssertFalse(h.complete(worker, a, png: png0).hasError)
        let b = try XCTUnwrap(h.lease(worker))
        XCTAssertFalse(h.complete(worker, b, png: png1).hasError)

        let status = h.status(job)
        XCTAssertEqual(status.state, .succeeded)
        XCTAssertEqual(status.doneTasks, 2)
        XCTAssertEqual(status.resultCount, 2)
        let fetched = h.fetch(job, index: 1)
        XCTAssertEqual(fetched.fetchResult.png, png1)
        XCTAssertEqual(fetched.fetchResult.fileName, "1.png")
        XCTAssertTrue(FileManager.default.fileExists(
            atPath: h.directory.appendingPathComponent("results/\(job)/0.png").path))
        XCTAssertEqual(h.fetch(job, index: 2).error.code, .notFound)

        let workers = h.send(.listWorkers(.init())).listWorkers.workers
        XCTAssertEqual(workers.first?.completed, 2)
        XCTAssertEqual(workers.first?.alive, true)
        h.clock.advance(3 * 10 + 1)
        XCTAssertEqual(h.send(.listWorkers(.init())).listWorkers.workers.first?.alive, false,
                       "silent for more than 3 heartbeat intervals")

        // A wrong-size image is rejected and counts as a failed attempt.
        let other = h.submit(h.batch(count: 1, width: 64, height: 64))
        let c = try XCTUnwrap(h.lease(worker))
        XCTAssertEqual(h.complete(worker, c, png: pngData(width: 32, height: 32, value: 1)).error.code, .invalidArgument)
        let retried = h.status(other)
        XCTAssertEqual(retried.tasks.first?.state, .queued)
        XCTAssertTrue(retried.errors.first?.contains("64x64") ?? false, "\(retried.errors)")
    }

    func testCoordinatorReopenedOnSameDirectoryResumesJob() throws {
        let h = try CoordinatorHarness()
        let worker = h.register("w")
        let job = h.submit(h.batch(count: 3, width: 64, height: 64))
        let first = try XCTUnwrap(h.lease(worker))
        XCTAssertFalse(h.complete(worker, first, png: pngData(width: 64, height: 64, value: 1)).hasError)
        let inFlight = try XCTUnwrap(h.lease(worker))

        try h.restart()  // nothing lives only in memory

        var status = h.status(job)
        XCTAssertEqual(status.state, .running)
        XCTAssertEqual(status.tasks.map(\.state), [.done, .leased, .queued])
        XCTAssertEqual(h.fetch(job, index: 0).fetchResult.png, pngData(width: 64, height: 64, value: 1))

        // The worker that held a lease across the restart can still finish with its token…
        XCTAssertFalse(h.heartbeat(worker, inFlight).hasError)
        XCTAssertFalse(h.complete(worker, inFlight, png: pngData(width: 64, height: 64, value: 2)).hasError)
        // …and the rest of the queue carries on.
        let last = try XCTUnwrap(h.lease(worker))
        XCTAssertEqual(last.task.image.index, 2)
        try h.restart()
        h.clock.advance(3600)  // the lease expires while nobody is connected
        let again = try XCTUnwrap(h.lease(worker), "expired lease requeued after the restart")
        XCTAssertEqual(again.task.image.index, 2)
        XCTAssertEqual(again.attempt, 2)
        XCTAssertGreaterThan(again.fencingToken, last.fencingToken)
        XCTAssertFalse(h.complete(worker, again, png: pngData(width: 64, height: 64, value: 3)).hasError)
        status = h.status(job)
        XCTAssertEqual(status.state, .succeeded)
        XCTAssertEqual(status.resultCount, 3)
    }
}

extension Coordinator {
    /// The default store, for tests that look at its tables directly.
    var sqlite: SQLiteCoordinatorStore {
        guard let store = store as? SQLiteCoordinatorStore else {
            preconditionFailure("this test needs the SQLite store; the coordinator runs on \(type(of: store))")
        }
        return store
    }
}
