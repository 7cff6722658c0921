import AtelierDiffusion
import AtelierFarm
import Foundation
import XCTest

/// Issue 11's operations items with the real `atelier` executable over loopback TCP: JSON logs
/// and their rate limiting, watch_job and step progress in `atelier wait`, and scale from zero (a
/// job submitted before any worker exists).
final class FarmOpsProcessTests: XCTestCase {
    private var cluster: FarmCluster?

    override func tearDown() {
        shutDown(&cluster)
        super.tearDown()
    }

    private func makeCluster() throws -> FarmCluster {
        let farm = try FarmCluster(testName: name)
        cluster = farm
        return farm
    }

    private func batch(model: String = "base", count: UInt32, steps: UInt32, seed: UInt64 = 1) -> Atelier_V1_SubmitJobRequest {
        var submit = Atelier_V1_SubmitJobRequest()
        submit.batch.prompts = ["a cat"]
        submit.batch.count = count
        submit.batch.params.model = model
        submit.batch.params.steps = steps
        submit.batch.params.seed = seed
        submit.batch.params.width = 64
        submit.batch.params.height = 64
        return submit
    }

    private func watch(_ farm: FarmCluster, _ client: FarmClient, _ jobID: String, fingerprint: String,
                       timeoutMs: UInt32) throws -> Atelier_V1_WatchJobResponse {
        let response = try farm.call(client, .watchJob(.with {
            $0.jobID = jobID
            $0.fingerprint = fingerprint
            $0.timeoutMs = timeoutMs
            $0.includeTasks = true
        }), timeout: .seconds(12))
        if response.hasError { throw FarmTestError("watch_job: \(response.error.code) \(response.error.message)") }
        return response.watchJob
    }

    // MARK: Logs

    /// 100 messages that are not requests, sent over nng to a coordinator logging JSON: every
    /// one is answered MALFORMED, every stderr line parses as JSON, and the burst is one line.
    func testABurstOfMalformedRequestsOverNNGIsLoggedOnceAsJSON() throws {
        let farm = try makeCluster()
        let coordinator = try farm.startCoordinator(leaseSeconds: 6, extra: ["--log-format", "json"])
        let client = try farm.client()
        for i in 0..<100 {
            let reply = try client.transport.request(Data([0xFF, 0xFE, UInt8(i)]), timeout: .seconds(10))
            let response = try Atelier_V1_Response(serializedBytes: reply)
            XCTAssertEqual(response.error.code, .malformed)
        }
        _ = try farm.call(client, .listJobs(.init()))  // answered after the burst: its lines are written
        let lines = coordinator.stderr.split(separator: "\n").map(String.init)
        var malformed = 0
        for line in lines {
            let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], line)
            XCTAssertNotNil(object["timestamp"])
            XCTAssertNotNil(object["level"])
            let metadata = object["metadata"] as? [String: String] ?? [:]
            if metadata["event"] == "refused_request.malformed" {
                malformed += 1
                XCTAssertTrue(metadata["peer"]?.hasPrefix("127.0.0.1:") ?? false, line)
            }
        }
        XCTAssertEqual(malformed, 1, coordinator.tail())
        XCTAssertTrue(lines.contains { $0.contains("coordinator listening on") }, coordinator.tail())
    }

    // MARK: watch_job

    /// With no worker the job stands still: a watch with the job's fingerprint returns unchanged
    /// at its timeout; a watch waiting with a long timeout returns as soon as the job changes
    /// (here: cancelled), well before that timeout.
    func testWatchJobAnswersAtTheTimeoutWithoutAChangeAndAtOnceOnOne() throws {
        let farm = try makeCluster()
        try farm.startCoordinator(leaseSeconds: 6)
        let client = try farm.client()
        let submitted = try farm.call(client, .submitJob(batch(count: 2, steps: 4)))
        XCTAssertFalse(submitted.hasError, submitted.error.message)
        XCTAssertEqual(submitted.submitJob.warnings.count, 1, "no worker serves the model yet")
        let jobID = submitted.submitJob.jobID

        let first = try watch(farm, client, jobID, fingerprint: "", timeoutMs: 1000)
        XCTAssertTrue(first.changed, "an empty fingerprint is answered at once")
        XCTAssertEqual(first.job.state, .queued)
        XCTAssertEqual(first.job.tasks.count, 2)
        let still = try watch(farm, client, jobID, fingerprint: first.fingerprint, timeoutMs: 500)
        XCTAssertFalse(still.changed, "nothing happened before the timeout")
        XCTAssertEqual(still.fingerprint, first.fingerprint)

        let watcher = try farm.client()
        let result = LockedBox<(Atelier_V1_WatchJobResponse, TimeInterval)>()
        let waiting = Thread { [self] in
            let started = Date()
            if let r = try? watch(farm, watcher, jobID, fingerprint: first.fingerprint, timeoutMs: 8000) {
                result.set((r, Date().timeIntervalSince(started)))
            }
        }
        waiting.start()
        Thread.sleep(forTimeInterval: 0.5)
        XCTAssertFalse(try farm.call(client, .cancelJob(.with { $0.jobID = jobID })).hasError)
        let (changed, elapsed) = try FarmProcessSupport.poll("the watch to return", timeout: 20) { result.get() }
        XCTAssertTrue(changed.changed)
        XCTAssertEqual(changed.job.state, .cancelled)
        XCTAssertLessThan(elapsed, 7, "woken by the cancel, not by its 8 s timeout")
    }

    /// 16 clients watching in a loop against a coordinator with 4 contexts (so 2 watch slots):
    /// the worker still leases, heartbeats and completes every task.
    func testAFloodOfWatchersDoesNotStopAWorkerFromCompleting() throws {
        let farm = try makeCluster()
        try farm.startCoordinator(leaseSeconds: 3, extra: ["--contexts", "4"])
        let client = try farm.client()
        let jobID = try farm.call(client, .submitJob(batch(count: 6, steps: 4))).submitJob.jobID
        let stop = LockedBox<Bool>()
        let answers = LockedBox<Int>()
        var threads: [Thread] = []
        for _ in 0..<16 {
            let watcher = try farm.client()
            let thread = Thread { [self] in
                var fingerprint = ""
                while stop.get() == nil {
                    guard let r = try? watch(farm, watcher, jobID, fingerprint: fingerprint, timeoutMs: 8000) else { continue }
                    fingerprint = r.fingerprint
                    answers.update { ($0 ?? 0) + 1 }
                }
            }
            threads.append(thread)
            thread.start()
        }
        defer { stop.set(true) }
        try farm.startWorker(name: "w1", extra: ["--engine", "noop"])
        let done = try FarmProcessSupport.poll("the job to finish under the watchers", timeout: 90, interval: 0.3) { () -> Atelier_V1_JobStatus? in
            let status = try farm.jobStatus(client, jobID)
            return status.state == .succeeded || status.state == .failed ? status : nil
        }
        XCTAssertEqual(done.state, .succeeded, "\(done.errors)")
        XCTAssertEqual(done.doneTasks, 6)
        XCTAssertGreaterThan(answers.get() ?? 0, 0)
    }

    // MARK: Scale from zero and progress

    /// A job submitted while no worker exists is accepted with a warning on stderr, completes once
    /// a worker starts, and its images equal a local render; `atelier wait`, piped, shows the
    /// images' intermediate denoising steps (one line per change).
    func testJobSubmittedBeforeAnyWorkerCompletesOnceOneStartsAndWaitShowsItsSteps() throws {
        let farm = try makeCluster()
        try farm.startCoordinator(leaseSeconds: 3)
        let seed: UInt64 = 21, steps = 8
        let submit = try farm.run("submit", ["submit", "--coordinator", farm.address, "--model", "base", "a red fox",
                                             "--count", "2", "--seed", "\(seed)", "--steps", "\(steps)"], timeout: 60)
        XCTAssertEqual(submit.status, 0, submit.stderr)
        XCTAssertTrue(submit.stderr.contains("warning: no worker serves model \"base\" yet"), submit.stderr)
        let jobID = submit.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(jobID.count, 12, submit.stdout)

        let out = farm.root.appendingPathComponent("out")
        let wait = try farm.spawn("wait", ["wait", jobID, "--out", out.path, "--coordinator", farm.address])
        // Slow steps (the pipeline engine, 250 ms after each step), so heartbeats (every 1 s) land
        // mid-render.
        let worker = try farm.startWorker(name: "late", extra: ["--straggler-step-delay-ms", "250", "--log-format", "json"])
        guard let waited = wait.waitForExit(timeout: 180) else { throw FarmTestError("wait did not finish\n\(farm.diagnostics())") }
        XCTAssertEqual(waited, 0, wait.tail())
        let progress = wait.stderr
        // "JOB image 1/2: step 3/9" with 0 < 3 < 9 (schedulers may count a step more than asked).
        let stepLine = try NSRegularExpression(pattern: "\(jobID) image [12]/2: step ([0-9]+)/([0-9]+)")
        let intermediate = stepLine.matches(in: progress, range: NSRange(progress.startIndex..., in: progress)).contains { match in
            guard let a = Range(match.range(at: 1), in: progress), let b = Range(match.range(at: 2), in: progress),
                  let step = Int(progress[a]), let total = Int(progress[b]) else { return false }
            return step > 0 && step < total
        }
        XCTAssertTrue(intermediate, "an intermediate step: \(progress)")
        XCTAssertTrue(progress.contains("\(jobID) succeeded"), progress)

        // `status` shows the progress line; `status --watch` follows the job (ended: one line).
        let status = try farm.run("status", ["status", jobID, "--coordinator", farm.address], timeout: 30)
        XCTAssertTrue(status.stdout.contains("progress: 2/2 images done"), status.stdout)
        let watched = try farm.run("status", ["status", jobID, "--watch", "--coordinator", farm.address], timeout: 30)
        XCTAssertEqual(watched.status, 0, watched.stderr)
        XCTAssertEqual(watched.stdout, "\(jobID)  succeeded  2/2 images done\n")

        // The worker's JSON lines parse, and those about a task carry its job, task and worker ids.
        let workerLines = try worker.stderr.split(separator: "\n").map { line in
            try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], String(line))
        }
        let taskLines = workerLines.compactMap { $0["metadata"] as? [String: String] }.filter { $0["task_id"] == "\(jobID)-0" }
        XCTAssertFalse(taskLines.isEmpty, worker.tail())
        XCTAssertTrue(taskLines.allSatisfy { $0["job_id"] == jobID && !($0["worker_id"] ?? "").isEmpty }, "\(taskLines)")

        let local = farm.root.appendingPathComponent("local.png")
        let render = try farm.run("render", ["render", "--model", FarmProcessSupport.tinyBase.path, "--prompt", "a red fox",
                                             "--seed", "\(seed)", "--count", "2", "--steps", "\(steps)", "--quiet",
                                             "--output", local.path], timeout: 120)
        XCTAssertEqual(render.status, 0, render.stderr)
        for k in 0..<2 {
            let want = try FarmProcessSupport.pixels(ofFile: farm.root.appendingPathComponent("local-\(k).png"))
            let got = try FarmProcessSupport.pixels(ofFile: out.appendingPathComponent("\(k).png"))
            XCTAssertEqual(got.width, want.width)
            XCTAssertEqual(got.height, want.height)
            XCTAssertTrue(got.pixels == want.pixels, "image \(k) differs from the local render")
        }
    }
}

/// A value shared between a test and its threads.
final class LockedBox<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: T?
    func get() -> T? { lock.lock(); defer { lock.unlock() }; return value }
    func set(_ v: T) { lock.lock(); value = v; lock.unlock() }
    func update(_ f: (T?) -> T) { lock.lock(); value = f(value); lock.unlock() }
}
