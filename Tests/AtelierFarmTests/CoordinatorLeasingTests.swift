@testable import AtelierFarmCoordinator
@testable import AtelierFarmProtocol
@testable import AtelierFarmTransport
@testable import AtelierFarmWorker
import Foundation
import XCTest

/// Leases, fencing tokens, expiry, retries and the blocklist.
final class CoordinatorLeasingTests: XCTestCase {
    func testExpiredLeaseIsRequeuedAndOldTokenIsRefused() throws {
        let h = try CoordinatorHarness()
        let slow = h.register("slow")
        let fast = h.register("fast")
        let job = h.submit(h.batch(count: 1))
        let first = try XCTUnwrap(h.lease(slow))
        // TTL 30 s + 20 steps × 0.59 MP × 2 s: about 54 s.
        XCTAssertGreaterThan(first.deadlineUnixMs, Int64(h.clock.now.timeIntervalSince1970 * 1000) + 30_000)

        h.clock.advance(20)
        let beat = h.heartbeat(slow, first)
        XCTAssertFalse(beat.hasError)
        XCTAssertEqual(beat.heartbeat.deadlineUnixMs, Int64(h.clock.now.timeIntervalSince1970 * 1000) + 30_000,
                       "a heartbeat sets the deadline to now + TTL: liveness, not the estimate, keeps the lease")
        XCTAssertLessThan(beat.heartbeat.deadlineUnixMs, first.deadlineUnixMs)
        XCTAssertNil(h.lease(fast), "still leased")

        h.clock.advance(35)  // past the deadline, no heartbeat
        XCTAssertEqual(h.heartbeat(slow, first).heartbeat.deadlineUnixMs,
                       Int64(h.clock.now.timeIntervalSince1970 * 1000) + 30_000,
                       "late but not yet reclaimed: the heartbeat extends to now + TTL")
        h.clock.advance(31)
        let second = try XCTUnwrap(h.lease(fast), "the expired lease was requeued")
        XCTAssertEqual(second.taskID, first.taskID)
        XCTAssertEqual(second.attempt, 2)
        XCTAssertGreaterThan(second.fencingToken, first.fencingToken)

        XCTAssertEqual(h.heartbeat(slow, first).error.code, .staleLease)
        XCTAssertEqual(h.fail(slow, first, "oops").error.code, .staleLease)
        XCTAssertEqual(h.complete(slow, first).error.code, .staleLease)
        let status = h.status(job)
        XCTAssertEqual(status.tasks.first?.state, .leased)
        XCTAssertEqual(status.tasks.first?.workerID, fast)
        XCTAssertTrue(status.errors.first?.contains("lease expired") ?? false, "\(status.errors)")
    }

    func testRetriedTaskNeverCompletesTwice() throws {
        let h = try CoordinatorHarness()
        let a = h.register("a")
        let b = h.register("b")
        let job = h.submit(h.batch(count: 1))
        let old = try XCTUnwrap(h.lease(a))
        h.clock.advance(3600)
        let new = try XCTUnwrap(h.lease(b))

        let late = h.complete(a, old, png: pngData(width: 8, height: 8, value: 1))
        XCTAssertEqual(late.error.code, .staleLease, "the old holder's result is discarded")

        let winnerID = UUID().uuidString
        let winnerPNG = pngData(width: 8, height: 8, value: 2)
        let accepted = h.complete(b, new, png: winnerPNG, requestID: winnerID)
        XCTAssertFalse(accepted.hasError, accepted.error.message)

        let resent = h.complete(b, new, png: winnerPNG, requestID: winnerID)
        XCTAssertEqual(resent, accepted, "a resend of the accepted request gets the stored success")
        let duplicate = h.complete(b, new, png: pngData(width: 8, height: 8, value: 3))
        XCTAssertEqual(duplicate.error.code, .staleLease, "a second completion is refused")
        XCTAssertEqual(h.complete(a, old).error.code, .staleLease)

        let status = h.status(job)
        XCTAssertEqual(status.state, .succeeded)
        XCTAssertEqual(h.fetch(job, index: 0).fetchResult.png, winnerPNG, "the stored result is the accepted one")
        let workers = h.send(.listWorkers(.init())).listWorkers.workers
        XCTAssertEqual(workers.map(\.completed).reduce(0, +), 1)
    }

    func testFencingTokensIncreaseAcrossRestart() throws {
        let h = try CoordinatorHarness()
        let worker = h.register("w")
        _ = h.submit(h.batch(count: 4))
        let t1 = try XCTUnwrap(h.lease(worker)).fencingToken
        let t2 = try XCTUnwrap(h.lease(worker)).fencingToken
        XCTAssertGreaterThan(t2, t1)
        try h.restart()
        let t3 = try XCTUnwrap(h.lease(worker)).fencingToken
        XCTAssertGreaterThan(t3, t2)
        try h.restart()
        XCTAssertEqual(try h.coordinator.store.lastFencingToken(), t3)
        let t4 = try XCTUnwrap(h.lease(worker)).fencingToken
        XCTAssertGreaterThan(t4, t3)
    }

    func testTaskFailingThreeTimesFailsTheJobWithAllErrors() throws {
        let h = try CoordinatorHarness()
        // Three workers, so the blocklist never gets in the way of the retries.
        let workers = [h.register("a"), h.register("b"), h.register("c")]
        let job = h.submit(h.batch(count: 2))
        var failedTask = ""
        for (attempt, worker) in workers.enumerated() {
            let lease = try XCTUnwrap(h.lease(worker))
            XCTAssertEqual(lease.task.image.index, 0, "the failed task goes back to the front")
            XCTAssertEqual(lease.attempt, UInt32(attempt + 1))
            failedTask = lease.taskID
            XCTAssertFalse(h.fail(worker, lease, "out of memory #\(attempt + 1)").hasError)
        }
        let status = h.status(job)
        XCTAssertEqual(status.state, .failed)
        XCTAssertEqual(status.tasks.first?.taskID, failedTask)
        XCTAssertEqual(status.tasks.map(\.state), [.failed, .cancelled], "the other task is cancelled")
        XCTAssertEqual(status.tasks.first?.attempts, 3)
        for n in 1...3 {
            XCTAssertTrue(status.errors.contains { $0.contains("out of memory #\(n)") }, "error \(n) in \(status.errors)")
        }
        XCTAssertTrue(status.errors.last?.contains("failed 3 time") ?? false, "\(status.errors)")
        XCTAssertNil(h.lease(workers[0]), "nothing left to do")
    }

    func testWorkerFailingRepeatedlyIsBlocklistedForThatJob() throws {
        let h = try CoordinatorHarness()
        let flaky = h.register("flaky")
        let good = h.register("good")
        let job = h.submit(h.batch(count: 2, maxAttempts: 5))
        for n in 1...2 {
            let lease = try XCTUnwrap(h.lease(flaky))
            XCTAssertEqual(lease.jobID, job)
            XCTAssertFalse(h.fail(flaky, lease, "CUDA? on a CPU farm? #\(n)").hasError)
        }
        XCTAssertNil(h.lease(flaky), "two failures on this job: no more of it while another worker can take it")
        let other = h.submit(h.batch(prompts: ["another job"], count: 1))
        XCTAssertEqual(h.lease(flaky)?.jobID, other, "other jobs still go to the blocklisted worker")

        let retry = try XCTUnwrap(h.lease(good))
        XCTAssertEqual(retry.jobID, job)
        XCTAssertEqual(retry.attempt, 3)
        XCTAssertFalse(h.complete(good, retry).hasError)

        // The blocklist is soft: once the good worker has gone quiet, the job is not left hanging.
        h.clock.advance(3600)
        let fallback = try XCTUnwrap(h.lease(flaky))
        XCTAssertEqual(fallback.jobID, job)
        let workers = h.send(.listWorkers(.init())).listWorkers.workers
        XCTAssertEqual(workers.first { $0.workerID == flaky }?.failed, 2)
    }

    func testHeartbeatRecordsProgressAndChecksTheToken() throws {
        let h = try CoordinatorHarness()
        let worker = h.register("w")
        let other = h.register("x")
        let job = h.submit(h.batch(count: 1))
        var lease = try XCTUnwrap(h.lease(worker))
        h.clock.advance(50)
        let beat = h.heartbeat(worker, lease, step: 7, total: 20)
        XCTAssertEqual(beat.heartbeat.deadlineUnixMs, Int64(h.clock.now.timeIntervalSince1970 * 1000) + 30_000)
        XCTAssertFalse(beat.heartbeat.cancel)
        let task = try XCTUnwrap(h.status(job).tasks.first)
        XCTAssertEqual(task.step, 7)
        XCTAssertEqual(task.totalSteps, 20)
        XCTAssertEqual(h.heartbeat(other, lease).error.code, .staleLease, "someone else's lease")
        let real = lease.fencingToken
        lease.fencingToken = real + 1000
        XCTAssertEqual(h.heartbeat(worker, lease).error.code, .staleLease, "a made-up token")
        lease.taskID = "nope"
        XCTAssertEqual(h.heartbeat(worker, lease).error.code, .notFound)
    }

    func testMaintenanceRequeuesExpiredLeasesAndForgetsOldRequests() throws {
        let h = try CoordinatorHarness()
        let worker = h.register("w")
        let job = h.submit(h.batch(count: 1))
        var leaseRequest = Atelier_V1_LeaseTaskRequest()
        leaseRequest.workerID = worker
        let first = h.send(.leaseTask(leaseRequest), requestID: "lease-1")
        XCTAssertTrue(first.leaseTask.hasLease)
        h.clock.advance(2 * 3600)
        try h.coordinator.performMaintenance()
        XCTAssertEqual(h.status(job).tasks.first?.state, .queued, "requeued without any worker asking")
        // The stored response is older than the log keeps: the same id is now a new request.
        let again = h.send(.leaseTask(leaseRequest), requestID: "lease-1")
        XCTAssertGreaterThan(again.leaseTask.lease.fencingToken, first.leaseTask.lease.fencingToken)
    }

    /// An internal failure (here: the result directory cannot be created) is reported as INTERNAL,
    /// changes nothing, and the coordinator keeps serving.
    func testInternalErrorIsReportedAndTheCoordinatorKeepsWorking() throws {
        let h = try CoordinatorHarness()
        let worker = h.register("w")
        let job = h.submit(h.batch(count: 1))
        let lease = try XCTUnwrap(h.lease(worker))
        let blocker = h.directory.appendingPathComponent("results/\(job)")
        try FileManager.default.createDirectory(at: blocker.deletingLastPathComponent(), withIntermediateDirectories: true)
        XCTAssertTrue(FileManager.default.createFile(atPath: blocker.path, contents: Data("in the way".utf8)))
        let broken = h.complete(worker, lease)
        XCTAssertEqual(broken.error.code, .internal)
        XCTAssertFalse(broken.error.message.isEmpty)
        XCTAssertEqual(h.status(job).tasks.first?.state, .leased, "nothing changed")

        try FileManager.default.removeItem(at: blocker)
        XCTAssertFalse(h.complete(worker, lease).hasError, "the same lease completes once the disk is fixed")
        XCTAssertEqual(h.status(job).state, .succeeded)
    }

    /// Many transport threads leasing at once: every task is handed out exactly once.
    func testConcurrentLeasesNeverShareATask() throws {
        let h = try CoordinatorHarness()
        let workers = (0..<8).map { h.register("w\($0)") }
        _ = h.submit(h.batch(count: 40))
        let lock = NSLock()
        var leased = [String]()
        DispatchQueue.concurrentPerform(iterations: 64) { i in
            var r = Atelier_V1_LeaseTaskRequest()
            r.workerID = workers[i % workers.count]
            var request = Atelier_V1_Request()
            request.protocolVersion = 1
            request.requestID = UUID().uuidString
            request.leaseTask = r
            let response = h.coordinator.handle(request, peer: "p\(i)")
            if response.leaseTask.hasLease {
                lock.lock()
                leased.append(response.leaseTask.lease.taskID)
                lock.unlock()
            }
        }
        XCTAssertEqual(leased.count, 40)
        XCTAssertEqual(Set(leased).count, 40)
    }
}
