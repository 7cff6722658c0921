import AtelierDiffusion
import AtelierFarm
import Foundation
import XCTest

/// Acceptance tests of the farm as it is deployed: the real `atelier` executable as coordinator,
/// workers and CLI clients, talking over loopback TCP, with the tiny random-weight models.
/// Results are compared pixel for pixel with local renders of the same images.
///
/// Every process is killed in tearDown and every wait is bounded, so a hang fails the test
/// instead of blocking CI. On failure the processes' logs are printed and their folder kept.
final class FarmProcessTests: XCTestCase {
    private var cluster: FarmCluster?
    private var started = Date()

    override func setUp() {
        super.setUp()
        started = Date()
    }

    override func tearDown() {
        let failed = shutDown(&cluster)
        print("[FarmProcess] \(name) \(failed ? "FAILED" : "passed") in \(FarmProcessSupport.seconds(since: started))")
        super.tearDown()
    }

    private func makeCluster() throws -> FarmCluster {
        let farm = try FarmCluster(testName: name)
        cluster = farm
        return farm
    }

    // MARK: Batches

    func testTwelveImageBatchOnThreeWorkersMatchesLocalRender() throws {
        let farm = try makeCluster()
        try farm.startCoordinator(leaseSeconds: 6)
        let names = ["w1", "w2", "w3"]
        for name in names { try farm.startWorker(name: name) }
        let ids = try farm.waitForWorkers(names)

        let prompts = ["a photo of a cat", "a dog", "a lighthouse at dusk"]
        let seed: UInt64 = 10, steps = 12
        let jobID = try submitBatch(farm, prompts: prompts, count: 4, seed: seed, steps: steps)
        let out = farm.root.appendingPathComponent("out")
        let wait = try farm.run("wait", ["wait", jobID, "--out", out.path, "--quiet", "--coordinator", farm.address],
                                timeout: 150)
        XCTAssertEqual(wait.status, 0, "atelier wait failed: \(wait.stderr)")

        let client = try farm.client()
        let status = try farm.jobStatus(client, jobID)
        XCTAssertEqual(status.state, .succeeded)
        XCTAssertEqual(status.totalTasks, 12)
        XCTAssertEqual(status.doneTasks, 12)
        XCTAssertEqual(status.resultCount, 12)
        XCTAssertEqual(try pngFiles(in: out), (0..<12).map { "\($0).png" })

        // The work was spread: more than one worker completed tasks, and only registered ones.
        let used = Set(status.tasks.map(\.workerID))
        XCTAssertGreaterThan(used.count, 1, "all 12 images were rendered by one worker: \(status.tasks.map(\.workerID))")
        XCTAssertTrue(used.isSubset(of: Set(ids.values)), "tasks name unknown workers: \(used)")
        let workers = try farm.call(client, .listWorkers(.init())).listWorkers.workers
        XCTAssertEqual(workers.reduce(0) { $0 + Int($1.completed) }, 12, "one completion per image")
        let cli = try farm.run("status", ["status", jobID, "--coordinator", farm.address], timeout: 30)
        XCTAssertEqual(cli.status, 0, cli.stderr)
        XCTAssertTrue(cli.stdout.contains("succeeded") && cli.stdout.contains("12/12 tasks"), cli.stdout)
        XCTAssertEqual(Set(ids.values.filter { cli.stdout.contains("worker \($0)") }), used,
                       "`atelier status` shows which worker rendered each image:\n\(cli.stdout)")

        // Each image equals `atelier render --seed <seed + index>` of its prompt.
        let local = try renderLocally(farm, prompts: prompts, count: 4, seed: seed, steps: steps)
        for index in 0..<12 {
            let want = local[index]
            let got = try PNGCodec.read(contentsOf: out.appendingPathComponent("\(index).png"))
            assertSamePixels(got.rgb(), want, "image \(index)")
            XCTAssertTrue(got.parametersText?.contains("Seed: \(seed + UInt64(index))") ?? false,
                          "image \(index) parameters: \(got.parametersText ?? "none")")
        }
    }

    /// A worker started with `--precision bf16` reports the bf16 numerics class, so jobs pin to it
    /// apart from fp32 workers, and renders exactly what `atelier render --precision bf16` does.
    func testBF16WorkerReportsItsNumericsAndRendersTheLocalBF16Image() throws {
        let farm = try makeCluster()
        try farm.startCoordinator(leaseSeconds: 6)
        try farm.startWorker(name: "bf16", extra: ["--precision", "bf16"])
        try farm.waitForWorkers(["bf16"])
        let client = try farm.client()
        let workers = try farm.call(client, .listWorkers(.init())).listWorkers.workers
        // The vdpbf16ps class on every x86 CPU, or AMX tiles' own class where the CPU has them.
        let numerics = workers.first { $0.name == "bf16" }?.capabilities.numerics ?? ""
        XCTAssertTrue(["bf16/atelier-bf16dpw4", "bf16/atelier-bf16amxa4"].contains(numerics), numerics)

        let jobID = try submitBatch(farm, prompts: ["a lighthouse at dusk"], count: 2, seed: 21, steps: 6)
        let out = farm.root.appendingPathComponent("out-bf16")
        let wait = try farm.run("wait", ["wait", jobID, "--out", out.path, "--quiet", "--coordinator", farm.address], timeout: 150)
        XCTAssertEqual(wait.status, 0, "atelier wait failed: \(wait.stderr)")
        XCTAssertEqual(try farm.jobStatus(client, jobID).numerics, numerics)
        let local = try renderLocally(farm, prompts: ["a lighthouse at dusk"], count: 2, seed: 21, steps: 6, extra: ["--precision", "bf16"])
        let fp32 = try renderLocally(farm, prompts: ["a lighthouse at dusk"], count: 2, seed: 21, steps: 6)
        for index in 0..<2 {
            let got = try PNGCodec.read(contentsOf: out.appendingPathComponent("\(index).png")).rgb()
            assertSamePixels(got, local[index], "image \(index)")
            XCTAssertNotEqual(got, fp32[index], "image \(index) is the fp32 render")
        }
    }

    func testWorkerKilledMidRenderStillCompletesEveryImageOnce() throws {
        let farm = try makeCluster()
        try farm.startCoordinator(leaseSeconds: 2)
        let doomed = try farm.startWorker(name: "doomed")
        try farm.startWorker(name: "survivor")
        let ids = try farm.waitForWorkers(["doomed", "survivor"])
        let doomedID = try XCTUnwrap(ids["doomed"]), survivorID = try XCTUnwrap(ids["survivor"])

        // Long enough renders (~2 s each) that a heartbeat reports progress before they finish.
        // The size is explicit so the lease's work estimate fits the real render: for a default
        // size the coordinator assumes 768x768, and the first lease of a 100-step task would last
        // about 36 s however soon its worker died.
        let prompts = ["a red fox in the snow"], seed: UInt64 = 500, steps = 30, count = 4, size = ["--width", "64", "--height", "64"]
        let jobID = try submitBatch(farm, prompts: prompts, count: count, seed: seed, steps: steps, extra: size)
        let client = try farm.client()
        let victim = try FarmProcessSupport.poll("the doomed worker to be partway through a render",
                                                 timeout: 60, interval: 0.05) { () -> Atelier_V1_TaskStatus? in
            try farm.jobStatus(client, jobID).tasks.first {
                $0.state == .leased && $0.workerID == doomedID && $0.step > 0 && $0.step + 5 < $0.totalSteps
            }
        }
        doomed.kill9()
        let killedAt = Date()
        XCTAssertFalse(doomed.isRunning)

        let out = farm.root.appendingPathComponent("out")
        let wait = try farm.run("wait", ["wait", jobID, "--out", out.path, "--quiet", "--coordinator", farm.address],
                                timeout: 180)
        XCTAssertEqual(wait.status, 0, "atelier wait failed: \(wait.stderr)")
        print("job finished \(FarmProcessSupport.seconds(since: killedAt)) after worker A was killed on task \(victim.index)")

        let status = try farm.jobStatus(client, jobID)
        XCTAssertEqual(status.state, .succeeded)
        XCTAssertEqual(status.doneTasks, UInt32(count))
        let task = try XCTUnwrap(status.tasks.first { $0.taskID == victim.taskID })
        XCTAssertGreaterThanOrEqual(task.attempts, 2, "the killed worker's task was leased again")
        XCTAssertEqual(task.workerID, survivorID, "the survivor rendered the killed worker's task")
        XCTAssertTrue(status.errors.contains { $0.contains("task \(victim.index) ") && $0.contains("lease expired") },
                      "the expiry is recorded: \(status.errors)")

        // Exactly one result per index: one stored file each, one completion each, one download each.
        XCTAssertEqual(status.resultCount, UInt32(count))
        let stored = farm.dataDir.appendingPathComponent("results/\(jobID)")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: stored.path).sorted(),
                       (0..<count).map { "\($0).png" }.sorted(), "no duplicate or half-written results")
        XCTAssertEqual(try pngFiles(in: out), (0..<count).map { "\($0).png" })
        let workers = try farm.call(client, .listWorkers(.init())).listWorkers.workers
        XCTAssertEqual(workers.reduce(0) { $0 + Int($1.completed) }, count, "completions: \(workers.map { ($0.name, $0.completed) })")

        let local = try renderLocally(farm, prompts: prompts, count: count, seed: seed, steps: steps, extra: size)
        for index in 0..<count {
            assertSamePixels(try FarmProcessSupport.pixels(ofFile: out.appendingPathComponent("\(index).png")), local[index],
                             "image \(index)")
        }
    }

    func testCoordinatorKilledMidJobResumesAndWaitReattaches() throws {
        let farm = try makeCluster()
        try farm.startCoordinator(leaseSeconds: 4)
        try farm.startWorker(name: "w1")
        try farm.startWorker(name: "w2")
        try farm.waitForWorkers(["w1", "w2"])

        let prompts = ["a castle on a hill", "a sailing boat"], seed: UInt64 = 77, steps = 60, count = 3
        let jobID = try submitBatch(farm, prompts: prompts, count: count, seed: seed, steps: steps)
        let total = prompts.count * count
        let out = farm.root.appendingPathComponent("out")
        let waiter = try farm.spawn("wait", ["wait", jobID, "--out", out.path, "--quiet", "--coordinator", farm.address])

        let client = try farm.client()
        let before = try FarmProcessSupport.poll("some but not all images to be done", timeout: 90, interval: 0.05) {
            () -> UInt32? in
            let done = try farm.jobStatus(client, jobID).doneTasks
            return done >= 1 && done < UInt32(total) - 1 ? done : nil
        }
        let coordinator = try XCTUnwrap(farm.coordinator)
        coordinator.kill9()
        Thread.sleep(forTimeInterval: 1.5)
        XCTAssertTrue(waiter.isRunning, "`atelier wait` keeps waiting while the coordinator is down:\n\(waiter.tail())")

        let restarted = Date()
        try farm.startCoordinator(leaseSeconds: 4)
        let afterRestart = try farm.jobStatus(client, jobID)
        XCTAssertGreaterThanOrEqual(afterRestart.doneTasks, before, "completions acknowledged before the crash survive it")

        let code = waiter.waitForExit(timeout: 150)
        XCTAssertEqual(code, 0, "`atelier wait` exits 0 once the job is done:\n\(waiter.tail())")
        print("killed with \(before)/\(total) done; job finished \(FarmProcessSupport.seconds(since: restarted)) after the restart")

        let status = try farm.jobStatus(client, jobID)
        XCTAssertEqual(status.state, .succeeded)
        XCTAssertEqual(status.doneTasks, UInt32(total))
        XCTAssertEqual(status.resultCount, UInt32(total))
        XCTAssertEqual(try pngFiles(in: out), (0..<total).map { "\($0).png" })
        let local = try renderLocally(farm, prompts: prompts, count: count, seed: seed, steps: steps)
        for index in 0..<total {
            assertSamePixels(try FarmProcessSupport.pixels(ofFile: out.appendingPathComponent("\(index).png")), local[index],
                             "image \(index)")
        }
    }

    // MARK: Upscale

    func testTiledUpscaleOnThreeWorkersEqualsLocalTiledUpscale() throws {
        let farm = try makeCluster()
        try farm.startCoordinator(leaseSeconds: 6)
        let names = ["u1", "u2", "u3"]
        for name in names { try farm.startWorker(name: name, models: [("x4", FarmProcessSupport.tinyX4)]) }
        try farm.waitForWorkers(names)

        let input = farm.root.appendingPathComponent("low80x88.png")
        try PNGCodec.write(try FarmProcessSupport.patternImage(width: 80, height: 88), to: input)
        let common = ["--image", input.path, "--prompt", "a cat", "--seed", "3", "--steps", "5",
                      "--tile", "32", "--overlap", "8"]
        let submit = try farm.run("submit-upscale", ["submit-upscale", "--coordinator", farm.address, "--model", "x4"] + common,
                                  timeout: 60)
        XCTAssertEqual(submit.status, 0, submit.stderr)
        let jobID = submit.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let out = farm.root.appendingPathComponent("out")
        let wait = try farm.run("wait", ["wait", jobID, "--out", out.path, "--quiet", "--coordinator", farm.address],
                                timeout: 150)
        XCTAssertEqual(wait.status, 0, "atelier wait failed: \(wait.stderr)")

        let client = try farm.client()
        let status = try farm.jobStatus(client, jobID)
        XCTAssertEqual(status.kind, "upscale")
        XCTAssertEqual(status.state, .succeeded)
        XCTAssertEqual(status.totalTasks, 12, "80x88 in 32 px tiles with 8 px overlap is 3 x 4 tiles")
        XCTAssertEqual(status.doneTasks, 12)
        let used = Set(status.tasks.map(\.workerID))
        XCTAssertGreaterThan(used.count, 1, "all tiles were rendered by one worker")
        XCTAssertEqual(try pngFiles(in: out), ["upscaled.png"])

        let localURL = farm.root.appendingPathComponent("local-upscaled.png")
        let local = try farm.run("upscale", ["upscale", "--model", FarmProcessSupport.tinyX4.path] + common
                                 + ["--output", localURL.path], timeout: 120)
        XCTAssertEqual(local.status, 0, local.stderr)
        let farmImage = try FarmProcessSupport.pixels(ofFile: out.appendingPathComponent("upscaled.png"))
        XCTAssertEqual([farmImage.width, farmImage.height], [320, 352])
        assertSamePixels(farmImage, try FarmProcessSupport.pixels(ofFile: localURL), "upscaled.png vs atelier upscale --tile")
        // Like every result, the stitched image carries the parameters that reproduce it.
        let farmParameters = try GenerationParameters.parse(
            try XCTUnwrap(PNGCodec.read(contentsOf: out.appendingPathComponent("upscaled.png")).parametersText, "parameters chunk"))
        let localParameters = try GenerationParameters.parse(try XCTUnwrap(PNGCodec.read(contentsOf: localURL).parametersText))
        XCTAssertEqual(farmParameters, localParameters)
        XCTAssertEqual([farmParameters.width, farmParameters.height], [320, 352])

        // The seam ratio: reported by the coordinator, shown by `atelier status`, equal to the local one.
        XCTAssertTrue(status.seamRatio.isFinite && status.seamRatio > 0, "seam ratio \(status.seamRatio)")
        let localRatio = try XCTUnwrap(Self.number(after: "seam ratio ", in: local.stderr),
                                       "atelier upscale prints its seam ratio: \(local.stderr)")
        XCTAssertEqual(status.seamRatio, localRatio, accuracy: 0.0006)
        let cli = try farm.run("status", ["status", jobID, "--coordinator", farm.address], timeout: 30)
        XCTAssertTrue(cli.stdout.contains(String(format: "seam ratio %.3f", status.seamRatio)), cli.stdout)
        print(String(format: "upscale seam ratio %.3f over %d workers", status.seamRatio, used.count))
    }

    // MARK: Protocol

    func testStaleFencingTokenCompletionIsRefused() throws {
        let farm = try makeCluster()
        try farm.startCoordinator(leaseSeconds: 1)
        let client = try farm.client()
        let first = try register(farm, client, name: "first")
        let second = try register(farm, client, name: "second")

        var submit = Atelier_V1_SubmitJobRequest()
        submit.batch.prompts = ["a stale cat"]
        submit.batch.count = 1
        submit.batch.params.model = "base"
        submit.batch.params.seed = 7
        submit.batch.params.steps = 1
        submit.batch.params.width = 64
        submit.batch.params.height = 64
        let submitted = try farm.call(client, .submitJob(submit))
        XCTAssertFalse(submitted.hasError, "\(submitted.error)")
        let jobID = submitted.submitJob.jobID

        let old = try XCTUnwrap(lease(farm, client, worker: first), "the first worker gets the task")
        XCTAssertEqual(old.attempt, 1)
        XCTAssertNil(try lease(farm, client, worker: second), "a leased task is not handed out twice")

        // No heartbeat: the 1 s lease expires and the task goes to the second worker, with a new token.
        let leasedAt = Date()
        let new = try FarmProcessSupport.poll("the expired task to be leased again", timeout: 15, interval: 0.2) {
            try lease(farm, client, worker: second)
        }
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(leasedAt), 0.9, "the lease lived its TTL")
        XCTAssertEqual(new.taskID, old.taskID)
        XCTAssertEqual(new.attempt, 2)
        XCTAssertGreaterThan(new.fencingToken, old.fencingToken, "fencing tokens strictly increase")

        let stalePNG = Data(try PNGCodec.encode(try RGBImage(width: 64, height: 64, red: 255, green: 0, blue: 0)))
        let freshPNG = Data(try PNGCodec.encode(try FarmProcessSupport.patternImage(width: 64, height: 64)))
        func complete(_ worker: String, _ token: UInt64, _ png: Data,
                      requestID: String = UUID().uuidString) throws -> Atelier_V1_Response {
            try farm.call(client, .completeTask(.with {
                $0.workerID = worker
                $0.taskID = old.taskID
                $0.fencingToken = token
                $0.resultPng = png
                $0.renderSeconds = 0.1
            }), requestID: requestID)
        }

        let late = try complete(first, old.fencingToken, stalePNG)
        XCTAssertEqual(late.error.code, .staleLease, "the old token's completion is refused: \(late.error.message)")
        let heartbeat = try farm.call(client, .heartbeat(.with {
            $0.workerID = first; $0.taskID = old.taskID; $0.fencingToken = old.fencingToken
        }))
        XCTAssertEqual(heartbeat.error.code, .staleLease, "and so is its heartbeat")
        let borrowed = try complete(second, old.fencingToken, stalePNG)
        XCTAssertEqual(borrowed.error.code, .staleLease, "the old token is stale for any worker")

        let id = UUID().uuidString
        let accepted = try complete(second, new.fencingToken, freshPNG, requestID: id)
        XCTAssertFalse(accepted.hasError, "the current token's completion is accepted: \(accepted.error)")
        guard case .completeTask? = accepted.body else { return XCTFail("complete_task answered \(accepted)") }
        XCTAssertFalse(try complete(second, new.fencingToken, freshPNG, requestID: id).hasError,
                       "a resend of the accepted completion gets the stored success")
        XCTAssertEqual(try complete(second, new.fencingToken, stalePNG).error.code, .staleLease,
                       "a second completion of a done task is refused")
        XCTAssertEqual(try complete(first, old.fencingToken, stalePNG).error.code, .staleLease)

        let status = try farm.jobStatus(client, jobID)
        XCTAssertEqual(status.state, .succeeded)
        XCTAssertEqual(status.tasks.first?.attempts, 2)
        XCTAssertEqual(status.tasks.first?.workerID, second)
        let fetched = try farm.call(client, .fetchResult(.with { $0.jobID = jobID; $0.index = 0 }))
        XCTAssertFalse(fetched.hasError, "\(fetched.error)")
        XCTAssertEqual(fetched.fetchResult.png, freshPNG, "the job's result is the one sent with the current token")
        XCTAssertEqual(fetched.fetchResult.fileName, "0.png")
    }

    func testBadRequestsGetProtocolErrorsAndCoordinatorKeepsServing() throws {
        let farm = try makeCluster()
        let coordinator = try farm.startCoordinator(leaseSeconds: 6)
        let client = try farm.client()
        let worker = try register(farm, client, name: "fake", models: [("base", 4), ("x4", 7)])

        func assertStillServing(after what: String, jobs: Int, file: StaticString = #filePath, line: UInt = #line) throws {
            XCTAssertTrue(coordinator.isRunning, "the coordinator died after \(what)", file: file, line: line)
            let workers = try farm.call(client, .listWorkers(.init()))
            XCTAssertFalse(workers.hasError, "list_workers after \(what): \(workers.error)", file: file, line: line)
            XCTAssertEqual(workers.listWorkers.workers.map(\.workerID), [worker], file: file, line: line)
            let listed = try farm.call(client, .listJobs(.init()))
            XCTAssertFalse(listed.hasError, "list_jobs after \(what): \(listed.error)", file: file, line: line)
            XCTAssertEqual(listed.listJobs.jobs.count, jobs, file: file, line: line)
        }
        try assertStillServing(after: "registering", jobs: 0)

        // A model no worker serves.
        var unknown = Atelier_V1_SubmitJobRequest()
        unknown.batch.prompts = ["a cat"]
        unknown.batch.count = 1
        unknown.batch.params.model = "no-such-model"
        unknown.requireWorker = true
        let refused = try farm.call(client, .submitJob(unknown))
        XCTAssertEqual(refused.error.code, .unknownModel, refused.error.message)
        XCTAssertTrue(refused.error.message.contains("no-such-model"), refused.error.message)
        try assertStillServing(after: "UNKNOWN_MODEL", jobs: 0)
        let cli = try farm.run("submit", ["submit", "--coordinator", farm.address, "--model", "no-such-model", "--require-worker", "a cat"],
                               timeout: 30)
        XCTAssertNotEqual(cli.status, 0, "atelier submit fails for an unknown model")
        XCTAssertTrue(cli.stderr.contains("no-such-model"), cli.stderr)

        // An upscale input over 1024 px a side.
        var oversize = Atelier_V1_SubmitJobRequest()
        oversize.upscale.imagePng = Data(try PNGCodec.encode(try RGBImage(width: 1100, height: 16, red: 9, green: 9, blue: 9)))
        oversize.upscale.params.model = "x4"
        oversize.upscale.params.prompt = "a wide strip"
        oversize.upscale.tile = 32
        oversize.upscale.overlap = 8
        let tooLarge = try farm.call(client, .submitJob(oversize))
        XCTAssertEqual(tooLarge.error.code, .tooLarge, tooLarge.error.message)
        try assertStillServing(after: "TOO_LARGE", jobs: 0)

        // Bytes that are not a Request at all (a varint that never ends).
        let raw = try RequestClient(dialing: farm.address)
        defer { raw.close() }
        let reply = try raw.request(Data(repeating: 0xFF, count: 24), timeout: .seconds(10))
        let malformed = try Atelier_V1_Response(serializedBytes: reply)
        XCTAssertEqual(malformed.error.code, .malformed, malformed.error.message)
        XCTAssertEqual(malformed.requestID, "")
        XCTAssertEqual(malformed.protocolVersion, 1)
        try assertStillServing(after: "MALFORMED", jobs: 0)

        // A protocol version this coordinator does not speak.
        var future = Atelier_V1_Request()
        future.protocolVersion = 2
        future.requestID = UUID().uuidString
        future.body = .listJobs(.init())
        let unsupported = try client.call(future)
        XCTAssertEqual(unsupported.error.code, .unsupportedVersion, unsupported.error.message)
        XCTAssertEqual(unsupported.requestID, future.requestID, "the request id is echoed")
        XCTAssertNil(unsupported.body, "an unsupported version gets no answer body")
        try assertStillServing(after: "UNSUPPORTED_VERSION", jobs: 0)

        // And a good submission still goes through.
        var good = Atelier_V1_SubmitJobRequest()
        good.batch.prompts = ["a cat"]
        good.batch.count = 2
        good.batch.params.model = "base"
        let accepted = try farm.call(client, .submitJob(good))
        XCTAssertFalse(accepted.hasError, "\(accepted.error)")
        XCTAssertEqual(accepted.submitJob.taskCount, 2)
        try assertStillServing(after: "a good submission", jobs: 1)
    }

    // MARK: Active/standby on PostgreSQL

    /// Two coordinators on one PostgreSQL database, each on its own address; workers and clients
    /// are given both (`--coordinator A,B`). The standby waits (not listening); kill -9 of the
    /// active mid-job; the standby takes over once the leader lease (2 s) lapses and listens; the
    /// workers and `atelier wait` follow it; every image arrives once and equals a local render.
    /// Prints the takeover time (kill to the standby answering).
    func testStandbyCoordinatorTakesOverWhenTheActiveIsKilled() throws {
        let server = try PostgresStoreConformanceTests.serverURL()
        let database = "atelier_failover_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        try PostgresStoreConformanceTests.admin(server, "CREATE DATABASE \(database)")
        defer { try? PostgresStoreConformanceTests.admin(server, "DROP DATABASE IF EXISTS \(database) WITH (FORCE)") }
        var components = try XCTUnwrap(URLComponents(string: server))
        components.path = "/" + database
        let url = try XCTUnwrap(components.string)

        let farm = try makeCluster()
        let storeArguments = ["--store", url, "--leader-lease-seconds", "2"]
        try farm.startCoordinator(leaseSeconds: 4, extra: storeArguments)
        let standbyAddress = "tcp://127.0.0.1:\(try FarmProcessSupport.freePort())"
        farm.dialAddress = "\(farm.address),\(standbyAddress)"
        let standby = try farm.spawn("standby", ["coordinator", "--listen", standbyAddress, "--data", farm.dataDir.path,
                                                 "--lease-seconds", "4"] + storeArguments)
        _ = try FarmProcessSupport.poll("the standby to wait for the lead", timeout: 30, interval: 0.1) { () -> Bool? in
            guard standby.isRunning else { throw FarmTestError("the standby exited\n\(standby.tail())") }
            return standby.stderr.contains("standby:") ? true : nil
        }
        try farm.startWorker(name: "w1")
        try farm.startWorker(name: "w2")
        try farm.waitForWorkers(["w1", "w2"])

        let prompts = ["a castle on a hill", "a sailing boat"], seed: UInt64 = 91, steps = 60, count = 3
        let total = prompts.count * count
        let jobID = try submitBatch(farm, prompts: prompts, count: count, seed: seed, steps: steps)
        let out = farm.root.appendingPathComponent("out")
        let waiter = try farm.spawn("wait", ["wait", jobID, "--out", out.path, "--quiet", "--coordinator", farm.dialAddress ?? ""])
        let client = try farm.client()
        _ = try FarmProcessSupport.poll("some but not all images to be done", timeout: 90, interval: 0.05) { () -> UInt32? in
            let done = try farm.jobStatus(client, jobID).doneTasks
            return done >= 1 && done < UInt32(total) - 1 ? done : nil
        }
        try XCTUnwrap(farm.coordinator).kill9()
        let killed = Date()
        let probe = try farm.client()
        _ = try FarmProcessSupport.poll("the standby to serve", timeout: 60, interval: 0.05) { () -> Bool? in
            guard standby.isRunning else { throw FarmTestError("the standby exited\n\(standby.tail())") }
            guard case .listWorkers? = try? farm.call(probe, .listWorkers(.init()), timeout: .seconds(1)).body else { return nil }
            return true
        }
        let takeover = Date().timeIntervalSince(killed)
        print("[failover] the standby served \(String(format: "%.2f", takeover)) s after kill -9 of the active (leader lease 2 s)")
        XCTAssertTrue(standby.stderr.contains("leading (epoch 2)"), "the standby took the lead:\n\(standby.tail())")

        XCTAssertEqual(waiter.waitForExit(timeout: 150), 0, "`atelier wait` exits 0 once the job is done:\n\(waiter.tail())")
        let status = try farm.jobStatus(client, jobID)
        XCTAssertEqual(status.state, .succeeded)
        XCTAssertEqual(status.doneTasks, UInt32(total))
        XCTAssertEqual(status.resultCount, UInt32(total))
        let workers = try farm.call(client, .listWorkers(.init())).listWorkers.workers
        XCTAssertEqual(workers.reduce(0) { $0 + Int($1.completed) }, total, "one accepted completion per image, none duplicated")
        XCTAssertEqual(try pngFiles(in: out), (0..<total).map { "\($0).png" })
        let local = try renderLocally(farm, prompts: prompts, count: count, seed: seed, steps: steps)
        for index in 0..<total {
            assertSamePixels(try FarmProcessSupport.pixels(ofFile: out.appendingPathComponent("\(index).png")), local[index],
                             "image \(index)")
        }
    }

    // MARK: Helpers

    /// `atelier submit` through the CLI; returns the job id it prints.
    private func submitBatch(_ farm: FarmCluster, prompts: [String], count: Int, seed: UInt64, steps: Int,
                             extra: [String] = [], file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let submit = try farm.run("submit", ["submit", "--coordinator", farm.address, "--model", "base"] + prompts
                                  + ["--count", "\(count)", "--seed", "\(seed)", "--steps", "\(steps)"] + extra, timeout: 60)
        guard submit.status == 0 else {
            throw FarmTestError("atelier submit exited \(submit.status): \(submit.stderr)")
        }
        let jobID = submit.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(jobID.count, 12, "submit prints the job id, got \"\(submit.stdout)\"", file: file, line: line)
        return jobID
    }

    /// The batch rendered locally, one `atelier render --count K --seed S+p·K` per prompt p (image k
    /// of it has seed S+p·K+k), in job index order. Run by the same executable as the workers,
    /// so both load OpenBLAS the same way.
    private func renderLocally(_ farm: FarmCluster, prompts: [String], count: Int, seed: UInt64, steps: Int,
                               extra: [String] = []) throws -> [RGBImage] {
        let folder = farm.root.appendingPathComponent("local")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var images = [RGBImage]()
        for (p, prompt) in prompts.enumerated() {
            let output = folder.appendingPathComponent("p\(p).png")
            let render = try farm.run("render", ["render", "--model", FarmProcessSupport.tinyBase.path, "--prompt", prompt,
                                                 "--seed", "\(seed + UInt64(p * count))", "--count", "\(count)",
                                                 "--steps", "\(steps)", "--quiet", "--output", output.path] + extra,
                                      timeout: 120)
            guard render.status == 0 else { throw FarmTestError("atelier render exited \(render.status): \(render.stderr)") }
            for k in 0..<count {
                let file = count == 1 ? output : folder.appendingPathComponent("p\(p)-\(k).png")
                images.append(try FarmProcessSupport.pixels(ofFile: file))
            }
        }
        return images
    }

    private func register(_ farm: FarmCluster, _ client: FarmClient, name: String,
                          models: [(String, UInt32)] = [("base", 4)]) throws -> String {
        var request = Atelier_V1_RegisterWorkerRequest()
        request.workerName = name
        request.capabilities.models = models.map { model in
            Atelier_V1_ModelInfo.with { $0.name = model.0; $0.unetInChannels = model.1 }
        }
        let response = try farm.call(client, .registerWorker(request))
        guard !response.hasError else { throw FarmTestError("register_worker: \(response.error)") }
        return response.registerWorker.workerID
    }

    private func lease(_ farm: FarmCluster, _ client: FarmClient, worker: String) throws -> Atelier_V1_Lease? {
        let response = try farm.call(client, .leaseTask(.with { $0.workerID = worker }))
        guard !response.hasError else { throw FarmTestError("lease_task: \(response.error)") }
        return response.leaseTask.hasLease ? response.leaseTask.lease : nil
    }

    /// The visible (not hidden) files of a folder, sorted.
    private func pngFiles(in folder: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { !$0.hasPrefix(".") }.sorted {
            ($0.count, $0) < ($1.count, $1)
        }
    }

    private func assertSamePixels(_ got: RGBImage, _ want: RGBImage, _ label: String,
                                  file: StaticString = #filePath, line: UInt = #line) {
        guard got.width == want.width, got.height == want.height else {
            return XCTFail("\(label): \(got.width)x\(got.height), expected \(want.width)x\(want.height)", file: file, line: line)
        }
        var differing = 0, largest = 0
        for (a, b) in zip(got.pixels, want.pixels) where a != b {
            differing += 1
            largest = max(largest, abs(Int(a) - Int(b)))
        }
        XCTAssertEqual(differing, 0, "\(label): \(differing) of \(got.pixels.count) samples differ (largest difference \(largest))",
                       file: file, line: line)
    }

    /// The decimal number right after `marker` in `text`.
    private static func number(after marker: String, in text: String) -> Double? {
        guard let range = text.range(of: marker, options: .backwards) else { return nil }
        let digits = text[range.upperBound...].prefix { $0.isNumber || $0 == "." }
        return Double(digits)
    }
}
