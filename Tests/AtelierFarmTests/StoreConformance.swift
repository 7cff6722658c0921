@testable import AtelierFarmCoordinator
@testable import AtelierFarmProtocol
import Foundation
import XCTest

/// The behaviour every `CoordinatorStore` must have, written once against the protocol and run
/// on each store (in the style of River's driver test suite): a subclass per store supplies
/// `makeStore` and declares one `test…` per `check…` here (Linux discovers test methods by
/// reading the source, so inherited ones would silently not run; `testEveryCheckIsDeclared` in
/// each subclass catches one that is missing).
///
/// Every check runs on a fresh, empty store, speaks only the protocol's operations, and moves
/// time by passing `now` (no sleeping, no timing assertions).
class StoreConformance: XCTestCase {
    /// A fresh, empty store with `options`. Subclasses override.
    func makeStore(options: CoordinatorOptions) throws -> any CoordinatorStore {
        throw XCTSkip("StoreConformance is abstract: run a subclass")
    }

    /// Fails unless the subclass in `file` declares `func test<Name>()` for every `func check<Name>()`
    /// of this class (both read from the sources: inherited test methods are not discovered on
    /// Linux, so a check without its test would silently not run on that store).
    func assertEveryCheckIsDeclared(file: StaticString = #filePath, line: UInt = #line) throws {
        let here = URL(fileURLWithPath: #filePath)
        let base = try String(contentsOf: here, encoding: .utf8)
        let subclass = try String(contentsOf: URL(fileURLWithPath: "\(file)"), encoding: .utf8)
        let pattern = try NSRegularExpression(pattern: #"func check([A-Z][A-Za-z]+)\(\) throws \{"#)
        let checks = pattern.matches(in: base, range: NSRange(base.startIndex..., in: base)).compactMap { match in
            Range(match.range(at: 1), in: base).map { String(base[$0]) }
        }
        XCTAssertGreaterThan(checks.count, 10, "the checks were read", file: file, line: line)
        for check in checks where !subclass.contains("func test\(check)()") {
            XCTFail("\(type(of: self)) does not declare test\(check)(); add `func test\(check)() throws { try check\(check)() }`",
                    file: file, line: line)
        }
    }

    /// How another process opens the store `makeStore` made last (a directory or a URL), set by
    /// the subclass; for the multi-process race.
    var lastStoreLocation: String?

    // MARK: Fixtures

    var options: CoordinatorOptions {
        var o = CoordinatorOptions()
        o.leaseTTL = 30
        o.retryAfterMs = 250
        return o
    }

    let t0: Int64 = 1_700_000_000_000
    private var requestCounter = 0
    private let counterLock = NSLock()

    /// A fresh logged request of `kind` (unique id; the fingerprint tells requests apart).
    func log(_ kind: String, id: String? = nil, fingerprint: Int64? = nil) -> LoggedRequest {
        counterLock.lock()
        requestCounter += 1
        let n = requestCounter
        counterLock.unlock()
        return LoggedRequest(requestID: id ?? "\(kind)-\(n)-\(UUID().uuidString)", kind: kind, peer: "test",
                             fingerprint: fingerprint ?? Int64(n))
    }

    static func ok() -> Atelier_V1_Response { Atelier_V1_Response() }

    func register(_ store: any CoordinatorStore, _ name: String, slots: Int = 16, now: Int64? = nil) throws -> String {
        var caps = Atelier_V1_WorkerCapabilities()
        var model = Atelier_V1_ModelInfo()
        model.name = "sd2"
        model.unetInChannels = 4
        caps.models = [model]
        caps.hostname = "host-\(name)"
        let registration = WorkerRegistration(workerID: "", name: name, capabilities: caps, slots: slots)
        let logged = try store.registerWorker(registration, now: now ?? t0, log: log("register_worker")) { id in
            var r = Atelier_V1_Response()
            r.registerWorker.workerID = id
            return r
        }
        return try XCTUnwrap(logged.outcome)
    }

    func batch(count: UInt32, priority: Int32 = 0, maxAttempts: UInt32 = 0) -> Atelier_V1_SubmitJobRequest {
        var b = Atelier_V1_BatchJob()
        b.prompts = ["a lighthouse"]
        b.count = count
        b.params.model = "sd2"
        b.params.seed = 42
        b.params.steps = 20
        b.params.width = 512
        b.params.height = 512
        var s = Atelier_V1_SubmitJobRequest()
        s.batch = b
        s.priority = priority
        s.maxAttempts = maxAttempts
        return s
    }

    func submit(_ store: any CoordinatorStore, _ request: Atelier_V1_SubmitJobRequest, options: CoordinatorOptions,
                now: Int64? = nil) throws -> String {
        let plan = try JobSplitter.plan(request, options: options)
        let logged = try store.submit(NewJob(request: request, plan: plan, peer: "test"), now: now ?? t0,
                                      log: log("submit_job")) { _ in Self.ok() }
        return try XCTUnwrap(logged.outcome?.jobID)
    }

    func lease(_ store: any CoordinatorStore, _ worker: String, now: Int64? = nil) throws -> Atelier_V1_Lease? {
        try store.leaseNext(worker: worker, now: now ?? t0, log: log("lease_task")) { _ in Self.ok() }.outcome?.lease
    }

    func claim(_ lease: Atelier_V1_Lease, _ worker: String) -> LeaseClaim {
        LeaseClaim(taskID: lease.taskID, workerID: worker, token: lease.fencingToken)
    }

    func complete(_ store: any CoordinatorStore, _ lease: Atelier_V1_Lease, _ worker: String,
                  now: Int64? = nil) throws -> Logged<CompletionOutcome> {
        try store.complete(claim(lease, worker), result: StoredResult(path: "results/\(lease.jobID)/\(lease.taskID).png", bytes: 1),
                           file: ResultFileHooks(), now: now ?? t0, log: log("complete_task")) { _ in Self.ok() }
    }

    func assertCode(_ code: Atelier_V1_ErrorCode, _ body: () throws -> Void, _ message: String = "",
                    file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), message, file: file, line: line) { error in
            XCTAssertEqual((error as? CoordinatorError)?.code, code, "\(error)", file: file, line: line)
        }
    }

    // MARK: Checks

    /// Access control's columns (issue 11): a job's owner, the token a worker registered with,
    /// and drain_worker, which a new registration clears.
    func checkOwnerTokenBindingAndDrainAreStored() throws {
        let store = try makeStore(options: options)
        var caps = Atelier_V1_WorkerCapabilities()
        caps.models = [.with { $0.name = "sd2"; $0.unetInChannels = 4 }]
        caps.hostname = "host-a"
        let registration = WorkerRegistration(workerID: "", name: "a", capabilities: caps, slots: 1, tokenName: "render1")
        let worker = try XCTUnwrap(try store.registerWorker(registration, now: t0, log: log("register_worker")) { id in
            var r = Atelier_V1_Response(); r.registerWorker.workerID = id; return r
        }.outcome)
        XCTAssertEqual(try store.workerAccess(workerID: worker), WorkerAccess(tokenName: "render1", draining: false))
        XCTAssertNil(try store.workerAccess(workerID: "nobody"))

        let request = batch(count: 1)
        let plan = try JobSplitter.plan(request, options: options)
        let job = try XCTUnwrap(try store.submit(NewJob(request: request, plan: plan, peer: "test", owner: "alice"), now: t0,
                                                 log: log("submit_job")) { _ in Self.ok() }.outcome?.jobID)
        XCTAssertEqual(try store.jobStatus(jobID: job, includeTasks: false).owner, "alice")
        XCTAssertEqual(try store.listJobs(limit: 10).first?.owner, "alice")

        let drained = try XCTUnwrap(try store.drainWorker(workerID: worker, now: t0))
        XCTAssertTrue(drained.draining)
        XCTAssertEqual(drained.workerID, worker)
        XCTAssertNil(try store.drainWorker(workerID: "nobody", now: t0))
        XCTAssertEqual(try store.workerAccess(workerID: worker)?.draining, true)
        XCTAssertEqual(try store.listWorkers(afterWorkerID: "", limit: 10, now: t0).workers.first?.draining, true)

        var again = registration
        again.workerID = worker
        _ = try store.registerWorker(again, now: t0 + 1, log: log("register_worker")) { _ in Self.ok() }
        XCTAssertEqual(try store.workerAccess(workerID: worker), WorkerAccess(tokenName: "render1", draining: false),
                       "registering again ends the drain")
    }

    func checkLeasesFollowPriorityWithStrictlyIncreasingTokens() throws {
        let store = try makeStore(options: options)
        let w = try register(store, "w")
        let low = try submit(store, batch(count: 2), options: options)
        let high = try submit(store, batch(count: 1, priority: 5), options: options)
        let first = try XCTUnwrap(try lease(store, w))
        XCTAssertEqual(first.jobID, high, "the higher priority first")
        let second = try XCTUnwrap(try lease(store, w))
        let third = try XCTUnwrap(try lease(store, w))
        XCTAssertEqual([second.jobID, third.jobID], [low, low])
        XCTAssertEqual([second.taskID, third.taskID], ["\(low)-0", "\(low)-1"], "lowest index first")
        XCTAssertLessThan(first.fencingToken, second.fencingToken)
        XCTAssertLessThan(second.fencingToken, third.fencingToken)
        XCTAssertEqual(try store.lastFencingToken(), third.fencingToken)
        XCTAssertNil(try lease(store, w), "nothing left")
        XCTAssertEqual(try store.jobStatus(jobID: low, includeTasks: false).state, .running)
    }

    func checkResentLeaseGetsTheSameLease() throws {
        let store = try makeStore(options: options)
        let w = try register(store, "w")
        _ = try submit(store, batch(count: 2), options: options)
        let request = log("lease_task")
        let respond: (LeaseOutcome) throws -> Atelier_V1_Response = { outcome in
            var r = Atelier_V1_Response()
            if let lease = outcome.lease { r.leaseTask.lease = lease }
            return r
        }
        let first = try store.leaseNext(worker: w, now: t0, log: request, respond: respond)
        let again = try store.leaseNext(worker: w, now: t0 + 10, log: request, respond: respond)
        XCTAssertNotNil(first.outcome)
        XCTAssertNil(again.outcome, "a resend does not run again")
        XCTAssertEqual(again.response.leaseTask.lease, first.response.leaseTask.lease)
        XCTAssertEqual(try store.loggedResponse(requestID: request.requestID)?.response.leaseTask.lease.taskID,
                       first.response.leaseTask.lease.taskID)
        let other = try XCTUnwrap(try lease(store, w))
        XCTAssertNotEqual(other.taskID, first.response.leaseTask.lease.taskID, "only one task was leased by the resend")
    }

    func checkRequestIDReusedForAnotherRequestIsRefused() throws {
        let store = try makeStore(options: options)
        let w = try register(store, "w")
        _ = try submit(store, batch(count: 1), options: options)
        _ = try store.leaseNext(worker: w, now: t0, log: log("lease_task", id: "same", fingerprint: 1)) { _ in Self.ok() }
        assertCode(.invalidArgument) {
            _ = try store.leaseNext(worker: w, now: t0, log: self.log("lease_task", id: "same", fingerprint: 2)) { _ in Self.ok() }
        }
    }

    func checkCompletionIsAcceptedExactlyOnce() throws {
        let store = try makeStore(options: options)
        let w = try register(store, "w")
        let job = try submit(store, batch(count: 2), options: options)
        let a = try XCTUnwrap(try lease(store, w))
        let b = try XCTUnwrap(try lease(store, w))
        var forged = claim(a, w)
        forged.token += 1000
        assertCode(.staleLease, { _ = try store.heartbeat(forged, step: 1, totalSteps: 20, now: self.t0) }, "a forged token")
        var refused = false
        assertCode(.staleLease) {
            _ = try store.complete(forged, result: StoredResult(path: "x", bytes: 1),
                                   file: ResultFileHooks(accepted: { XCTFail("the file must not be accepted") },
                                                         refused: { refused = true }),
                                   now: self.t0, log: self.log("complete_task")) { _ in Self.ok() }
        }
        XCTAssertTrue(refused, "the refusal is reported to the file hooks")
        // The last heartbeat before the render ended saw step 12 of 20; the finished image shows 20/20.
        _ = try store.heartbeat(claim(a, w), step: 12, totalSteps: 20, now: t0)
        var accepted = 0
        let done = try store.complete(claim(a, w), result: StoredResult(path: "results/a.png", bytes: 7),
                                      file: ResultFileHooks(accepted: { accepted += 1 }), now: t0,
                                      log: log("complete_task")) { _ in Self.ok() }
        XCTAssertEqual(accepted, 1)
        XCTAssertEqual(done.outcome?.allTilesIn, false)
        assertCode(.staleLease, { _ = try self.complete(store, a, w) }, "a second completion")
        assertCode(.notFound, { _ = try store.resultPath(jobID: job, index: 1) }, "image 1 is not rendered yet")
        XCTAssertEqual(try store.resultPath(jobID: job, index: 0), "results/a.png")
        XCTAssertEqual(try store.jobStatus(jobID: job, includeTasks: false).state, .running)
        _ = try complete(store, b, w)
        let status = try store.jobStatus(jobID: job, includeTasks: true)
        XCTAssertEqual(status.state, .succeeded)
        XCTAssertEqual(status.doneTasks, 2)
        XCTAssertEqual(status.resultCount, 2)
        let first = try XCTUnwrap(status.tasks.first { $0.index == 0 })
        XCTAssertEqual([first.step, first.totalSteps], [20, 20], "a finished task shows all its steps done")
    }

    func checkExpiredLeaseIsRequeuedUnchargedAndItsTokenFenced() throws {
        let store = try makeStore(options: options)
        let w1 = try register(store, "w1")
        let job = try submit(store, batch(count: 1), options: options)
        let first = try XCTUnwrap(try lease(store, w1))
        XCTAssertEqual(try store.expireLeases(now: t0 + 1000), 0, "not expired yet")
        let beat = try store.heartbeat(claim(first, w1), step: 3, totalSteps: 20, now: t0 + 1000)
        XCTAssertFalse(beat.cancel)
        XCTAssertEqual(beat.deadlineUnixMs, t0 + 1000 + 30_000, "now + TTL")
        XCTAssertEqual(try store.expireLeases(now: beat.deadlineUnixMs + 1), 1)
        XCTAssertEqual(try store.expireLeases(now: beat.deadlineUnixMs + 2), 0, "idempotent")
        let later = beat.deadlineUnixMs + 10
        let w2 = try register(store, "w2", now: later)
        let second = try XCTUnwrap(try lease(store, w2, now: later))
        XCTAssertEqual(second.taskID, first.taskID)
        XCTAssertGreaterThan(second.fencingToken, first.fencingToken)
        assertCode(.staleLease, { _ = try store.heartbeat(self.claim(first, w1), step: 4, totalSteps: 20, now: later) })
        assertCode(.staleLease, { _ = try self.complete(store, first, w1, now: later) }, "the old holder is fenced")
        let task = try XCTUnwrap(try store.jobStatus(jobID: job, includeTasks: true).tasks.first)
        XCTAssertEqual(task.leaseExpiries, 1)
        XCTAssertEqual(task.workerID, w2)
        _ = try complete(store, second, w2, now: later)
        XCTAssertEqual(try store.jobStatus(jobID: job, includeTasks: false).state, .succeeded)
    }

    func checkFailuresAreChargedUntilTheJobFails() throws {
        let store = try makeStore(options: options)
        let w1 = try register(store, "w1")
        let job = try submit(store, batch(count: 2, maxAttempts: 2), options: options)
        let a = try XCTUnwrap(try lease(store, w1))
        _ = try store.fail(claim(a, w1), class: .failed, message: "out of memory", now: t0, log: log("fail_task")) { Self.ok() }
        var status = try store.jobStatus(jobID: job, includeTasks: true)
        XCTAssertEqual(status.state, .running)
        XCTAssertEqual(status.tasks.first?.state, .queued, "retried")
        XCTAssertEqual(status.tasks.first?.lastError, "out of memory")
        let again = try XCTUnwrap(try lease(store, w1, now: t0 + 1))
        XCTAssertEqual(again.taskID, a.taskID)
        XCTAssertEqual(again.attempt, 2)
        _ = try store.fail(claim(again, w1), class: .rejected, message: "result rejected: blank", now: t0 + 2,
                           log: log("complete_task")) { Self.ok() }
        status = try store.jobStatus(jobID: job, includeTasks: true)
        XCTAssertEqual(status.state, .failed)
        XCTAssertEqual(status.tasks.map(\.state), [.failed, .cancelled], "the job's other task is cancelled")
        XCTAssertTrue(status.errors.contains { $0.contains("failed 2 time(s)") }, "\(status.errors)")
        XCTAssertNil(try lease(store, w1, now: t0 + 3), "nothing of a failed job is leased")
    }

    func checkReleaseRequeuesWithoutCharge() throws {
        let store = try makeStore(options: options)
        let w = try register(store, "w")
        let job = try submit(store, batch(count: 1, maxAttempts: 1), options: options)
        let a = try XCTUnwrap(try lease(store, w))
        _ = try store.release(claim(a, w), reason: "", now: t0, log: log("release_task")) { Self.ok() }
        let task = try XCTUnwrap(try store.jobStatus(jobID: job, includeTasks: true).tasks.first)
        XCTAssertEqual(task.state, .queued)
        XCTAssertEqual(task.attempts, 0, "not charged")
        assertCode(.staleLease, { _ = try store.heartbeat(self.claim(a, w), step: 1, totalSteps: 20, now: self.t0) })
        let b = try XCTUnwrap(try lease(store, w, now: t0 + 1))
        XCTAssertEqual(b.attempt, 1)
        _ = try complete(store, b, w, now: t0 + 2)
        XCTAssertEqual(try store.jobStatus(jobID: job, includeTasks: false).state, .succeeded)
    }

    func checkCancelStopsTasksAndTellsTheHeartbeat() throws {
        let store = try makeStore(options: options)
        let w = try register(store, "w")
        let job = try submit(store, batch(count: 2), options: options)
        let a = try XCTUnwrap(try lease(store, w))
        let cancelled = try store.cancel(jobID: job, now: t0 + 5, log: log("cancel_job")) { _ in Self.ok() }
        XCTAssertEqual(cancelled.outcome?.state, .cancelled)
        let beat = try store.heartbeat(claim(a, w), step: 1, totalSteps: 20, now: t0 + 6)
        XCTAssertTrue(beat.cancel)
        assertCode(.staleLease, { _ = try self.complete(store, a, w, now: self.t0 + 7) })
        XCTAssertNil(try lease(store, w, now: t0 + 8))
        let again = try store.cancel(jobID: job, now: t0 + 9, log: log("cancel_job")) { _ in Self.ok() }
        XCTAssertEqual(again.outcome?.state, .cancelled, "cancelling a finished job changes nothing")
        assertCode(.notFound) { _ = try store.cancel(jobID: "nope", now: self.t0, log: self.log("cancel_job")) { _ in Self.ok() } }
    }

    func checkUnknownWorkerCannotLease() throws {
        let store = try makeStore(options: options)
        assertCode(.unknownWorker) { _ = try self.lease(store, "ghost") }
        var strict = batch(count: 1)
        strict.requireWorker = true
        assertCode(.unknownModel, { _ = try self.submit(store, strict, options: self.options) },
                   "no worker serves the model, and the submitter requires one")
    }

    /// Scale from zero: a job for a model no worker has served is queued with a warning (refused
    /// only with require_worker), and its first lease pins it to the leasing worker's weights and
    /// numerics, so a worker with other weights under the same name never takes its other tasks.
    func checkJobForAModelNoWorkerServesIsQueuedAndPinnedByItsFirstLease() throws {
        let store = try makeStore(options: options)
        let request = batch(count: 3)
        let plan = try JobSplitter.plan(request, options: options)
        let accepted = try XCTUnwrap(try store.submit(NewJob(request: request, plan: plan, peer: "test"), now: t0,
                                                      log: log("submit_job")) { _ in Self.ok() }.outcome)
        XCTAssertEqual(accepted.warnings, [Coordinator.waitingForWorkerWarning(model: "sd2")])
        XCTAssertEqual(try store.jobStatus(jobID: accepted.jobID, includeTasks: false).state, .queued)
        XCTAssertEqual(try store.pendingPinJobs(), [PendingPinJob(jobID: accepted.jobID, model: "sd2",
                                                                   acceptedChannels: plan.acceptedChannels, registeredChannels: [])])

        func register(_ name: String, digest: Character, numerics: String) throws -> String {
            var caps = Atelier_V1_WorkerCapabilities()
            caps.models = [.with { $0.name = "sd2"; $0.unetInChannels = 4; $0.weightsSha256 = String(repeating: digest, count: 64) }]
            caps.numerics = numerics
            let registration = WorkerRegistration(workerID: "", name: name, capabilities: caps, slots: 16)
            return try XCTUnwrap(try store.registerWorker(registration, now: t0 + 1, log: log("register_worker")) { _ in
                Self.ok()
            }.outcome)
        }
        let a = try register("a", digest: "a", numerics: "fp32/x")
        let b = try register("b", digest: "b", numerics: "fp32/y")
        let first = try XCTUnwrap(try lease(store, b, now: t0 + 2), "any worker serving the model may lease first")
        XCTAssertEqual(first.jobID, accepted.jobID)
        XCTAssertNil(try lease(store, a, now: t0 + 3), "pinned to b's weights and numerics by its first lease")
        XCTAssertNotNil(try lease(store, b, now: t0 + 4))
        XCTAssertEqual(try store.jobStatus(jobID: accepted.jobID, includeTasks: false).numerics, "fp32/y")
        XCTAssertEqual(try store.pendingPinJobs(), [], "pinned by its first lease")

        // With a worker registered, a job for the model is pinned at submit and gets no warning.
        let pinned = try XCTUnwrap(try store.submit(NewJob(request: request, plan: plan, peer: "test"), now: t0 + 5,
                                                    log: log("submit_job")) { _ in Self.ok() }.outcome)
        XCTAssertEqual(pinned.warnings, [])
    }

    func checkWorkerSlotsBoundItsLeases() throws {
        let store = try makeStore(options: options)
        let w = try register(store, "w", slots: 2)
        _ = try submit(store, batch(count: 5), options: options)
        XCTAssertNotNil(try lease(store, w))
        XCTAssertNotNil(try lease(store, w))
        let outcome = try store.leaseNext(worker: w, now: t0, log: log("lease_task")) { _ in Self.ok() }.outcome
        guard case .wait(let retry)? = outcome else { return XCTFail("a third lease beyond 2 slots: \(String(describing: outcome))") }
        XCTAssertEqual(retry, options.retryAfterMs)
    }

    func checkQueueCapHoldsUnderConcurrentSubmissions() throws {
        var options = self.options
        options.maxUnfinishedTasks = 10
        let store = try makeStore(options: options)
        _ = try register(store, "w")
        let accepted = RaceCounter(), refused = RaceCounter()
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            do {
                _ = try self.submit(store, self.batch(count: 3), options: options)
                accepted.add()
            } catch let error as CoordinatorError where error.code == .queueFull {
                refused.add()
            } catch {
                XCTFail("\(error)")
            }
        }
        XCTAssertEqual(accepted.value, 3, "3 jobs of 3 tasks fit under 10")
        XCTAssertEqual(refused.value, 5)
        XCTAssertEqual(try store.listJobs(limit: 100).count, 3)
    }

    /// Many threads lease and complete at once, each as its own worker: every task is leased
    /// exactly once (no expiry happens, so a second lease of a task would be a double grant) and
    /// completed exactly once, and every token is unique.
    func checkConcurrentLeaseRaceNeverLeasesATaskTwice() throws {
        let threads = 16, tasks = 240
        let store = try makeStore(options: options)
        var workers = [String]()
        for i in 0..<threads { workers.append(try register(store, "racer-\(i)")) }
        var jobs = Set<String>()
        for _ in 0..<(tasks / 40) { jobs.insert(try submit(store, batch(count: 40), options: options)) }
        let leases = Locked([(task: String, token: UInt64, worker: String)]())
        let errors = Locked([String]())
        DispatchQueue.concurrentPerform(iterations: threads) { i in
            let worker = workers[i]
            do {
                while let lease = try self.lease(store, worker) {
                    leases.update { $0.append((lease.taskID, lease.fencingToken, worker)) }
                    _ = try self.complete(store, lease, worker)
                }
            } catch {
                errors.update { $0.append("\(worker): \(error)") }
            }
        }
        XCTAssertEqual(errors.value, [])
        let all = leases.value
        XCTAssertEqual(all.count, tasks, "every task leased once, none twice")
        XCTAssertEqual(Set(all.map(\.task)).count, tasks, "no task leased to two workers")
        XCTAssertEqual(Set(all.map(\.token)).count, tasks, "no token handed out twice")
        for job in jobs {
            XCTAssertEqual(try store.jobStatus(jobID: job, includeTasks: false).state, .succeeded)
        }
        XCTAssertGreaterThan(Set(all.map(\.worker)).count, 1, "the race had more than one winner")
    }

    /// The same race across processes: several `atelier-chaos store-race` processes lease and
    /// complete from one store at once (each its own worker, its own connections); every task is
    /// leased exactly once across them.
    func checkLeaseRaceAcrossProcessesNeverLeasesATaskTwice() throws {
        let processes = 4, tasks = 120
        let store = try makeStore(options: options)
        let location = try XCTUnwrap(lastStoreLocation)
        _ = try register(store, "submitter")
        for _ in 0..<(tasks / 40) { _ = try submit(store, batch(count: 40), options: options) }
        let chaos = try Self.executable("atelier-chaos")
        var running = [(Process, Pipe)]()
        for i in 0..<processes {
            let process = Process()
            process.executableURL = chaos
            process.arguments = ["store-race", "--store", location, "--name", "process-\(i)"]
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            running.append((process, pipe))
        }
        var leased = [String]()
        var winners = 0
        for (process, pipe) in running {
            let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            XCTAssertEqual(process.terminationStatus, 0, "a racer failed")
            let lines = output.split(separator: "\n").map { String($0.split(separator: " ").first ?? "") }
            if !lines.isEmpty { winners += 1 }
            leased += lines
        }
        XCTAssertEqual(leased.count, tasks, "every task leased once, none twice")
        XCTAssertEqual(Set(leased).count, tasks, "no task leased by two processes")
        for job in try store.listJobs(limit: 10) { XCTAssertEqual(job.state, .succeeded) }
        _ = winners  // how many processes won tasks depends on scheduling; exclusivity is what is checked
    }

    /// A built executable of this package: beside the test bundle, else in `.build/debug`.
    static func executable(_ name: String) throws -> URL {
        var folders = [URL]()
        for bundle in Bundle.allBundles where bundle.bundleURL.pathExtension == "xctest" {
            folders.append(bundle.bundleURL.deletingLastPathComponent())
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        folders.append(root.appendingPathComponent(".build/debug"))
        for folder in folders where FileManager.default.isExecutableFile(atPath: folder.appendingPathComponent(name).path) {
            return folder.appendingPathComponent(name)
        }
        throw StoreConformanceError("no \(name) executable in \(folders.map(\.path)); run `swift build --build-tests` first")
    }

    /// The same lease completed from many threads at once (distinct request ids, as a confused
    /// worker or a replayed network would): exactly one wins.
    func checkConcurrentCompletionsOfOneLeaseSucceedOnce() throws {
        let store = try makeStore(options: options)
        let w = try register(store, "w")
        _ = try submit(store, batch(count: 1), options: options)
        let a = try XCTUnwrap(try lease(store, w))
        let won = RaceCounter(), stale = RaceCounter()
        DispatchQueue.concurrentPerform(iterations: 12) { _ in
            do {
                _ = try self.complete(store, a, w)
                won.add()
            } catch let error as CoordinatorError where error.code == .staleLease {
                stale.add()
            } catch {
                XCTFail("\(error)")
            }
        }
        XCTAssertEqual(won.value, 1)
        XCTAssertEqual(stale.value, 11)
    }

    func checkIdlePollIsAnsweredWithoutAWrite() throws {
        let store = try makeStore(options: options)
        let w = try register(store, "w")
        let refresh: Int64 = 10_000
        XCTAssertEqual(try store.idleLeaseWait(worker: w, now: t0 + 1, refreshMs: refresh), options.retryAfterMs)
        let before = store.writeTransactionCount
        _ = try store.idleLeaseWait(worker: w, now: t0 + 2, refreshMs: refresh)
        XCTAssertEqual(store.writeTransactionCount, before)
        XCTAssertNil(try store.idleLeaseWait(worker: w, now: t0 + refresh + 1, refreshMs: refresh),
                     "not seen within the refresh: take the write path")
        _ = try submit(store, batch(count: 1), options: options)
        XCTAssertNil(try store.idleLeaseWait(worker: w, now: t0 + 3, refreshMs: refresh), "work to take")
        XCTAssertNil(try store.idleLeaseWait(worker: "ghost", now: t0 + 3, refreshMs: refresh))
    }
}

struct StoreConformanceError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A thread-safe counter for race checks.
final class RaceCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}

/// A value behind a lock.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value
    init(_ value: Value) { stored = value }
    func update(_ change: (inout Value) -> Void) { lock.lock(); change(&stored); lock.unlock() }
    var value: Value { lock.lock(); defer { lock.unlock() }; return stored }
}
