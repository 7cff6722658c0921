@testable import AtelierFarmCoordinator
@testable import AtelierFarmProtocol
import Foundation
import XCTest

/// What an idle farm costs the coordinator's single SQLite writer. Every write transaction holds
/// the writer and, at `synchronous = FULL`, fsyncs the WAL, so a farm of idle workers polling
/// lease_task every `retry_after_ms` (500 ms) must not be a farm of writers.
final class CoordinatorWriteLoadTests: XCTestCase {
    /// One idle worker polling for a minute at the retry interval (120 polls): before, every poll
    /// was a write transaction with a request-log row (120 per minute); now an idle poll is
    /// answered from a snapshot, and the worker's `last_seen` is refreshed at most once per
    /// heartbeat interval (10 s: 6 per minute).
    func testIdleLeasePollsWriteOnlyToRefreshLivenessOncePerHeartbeatInterval() throws {
        let h = try CoordinatorHarness()
        let worker = h.register("idle")
        let before = h.coordinator.store.writeTransactionCount
        let logRows = try requestLogRows(h)
        var polls = 0
        for _ in 0..<120 {
            h.clock.advance(0.5)
            let response = h.leaseResponse(worker)
            XCTAssertFalse(response.hasError, response.error.message)
            XCTAssertFalse(response.leaseTask.hasLease)
            XCTAssertEqual(response.leaseTask.retryAfterMs, h.options.retryAfterMs)
            polls += 1
        }
        let writes = h.coordinator.store.writeTransactionCount - before
        XCTAssertEqual(polls, 120)
        XCTAssertLessThanOrEqual(writes, 6, "write transactions per idle worker per minute")
        XCTAssertGreaterThanOrEqual(writes, 5, "liveness is still refreshed about once per heartbeat interval")
        XCTAssertEqual(try requestLogRows(h) - logRows, writes, "only the polls that refreshed liveness were logged")
        // The worker stayed alive throughout, seen within one heartbeat interval.
        let listed = try XCTUnwrap(h.send(.listWorkers(.init())).listWorkers.workers.first)
        XCTAssertTrue(listed.alive)
        let nowMs = Int64(h.clock.now.timeIntervalSince1970 * 1000)
        XCTAssertLessThanOrEqual(nowMs - Int64(listed.lastSeenUnixMs), 10_000)
    }

    /// The snapshot answer never hides work: a task submitted between polls is leased by the next
    /// poll, and an expired lease is requeued (and handed out) by a poll, as before.
    func testIdlePollStillLeasesNewWorkAndRequeuesExpiredLeases() throws {
        let h = try CoordinatorHarness()
        let a = h.register("a")
        let b = h.register("b")
        XCTAssertNil(h.lease(a))
        let job = h.submit(h.batch(count: 1))
        let lease = try XCTUnwrap(h.lease(a), "the next poll after a submission gets the task")
        XCTAssertNil(h.lease(b), "nothing else to lease")
        h.clock.advance(h.options.leaseTTL + 3600)  // a's lease (TTL + work estimate) runs out
        let again = try XCTUnwrap(h.lease(b), "a poll requeues the expired lease and takes it")
        XCTAssertEqual(again.taskID, lease.taskID)
        XCTAssertGreaterThan(again.fencingToken, lease.fencingToken)
        XCTAssertEqual(h.status(job).tasks.first?.leaseExpiries, 1)
    }

    /// Heartbeats are idempotent by their fencing token, so they are not kept in the request log
    /// (one row per heartbeat, per rendering worker, every few seconds); a resent heartbeat is
    /// simply applied again.
    func testHeartbeatsAreNotLoggedAndAResendIsAppliedAgain() throws {
        let h = try CoordinatorHarness()
        let worker = h.register("w")
        h.submit(h.batch(count: 1))
        let lease = try XCTUnwrap(h.lease(worker))
        let rows = try requestLogRows(h)
        var hb = Atelier_V1_HeartbeatRequest()
        hb.workerID = worker
        hb.taskID = lease.taskID
        hb.fencingToken = lease.fencingToken
        hb.step = 3
        hb.totalSteps = 20
        let first = h.send(.heartbeat(hb), requestID: "hb-1")
        XCTAssertFalse(first.hasError, first.error.message)
        h.clock.advance(5)
        let resent = h.send(.heartbeat(hb), requestID: "hb-1")
        XCTAssertFalse(resent.hasError, resent.error.message)
        XCTAssertEqual(resent.heartbeat.deadlineUnixMs, first.heartbeat.deadlineUnixMs + 5000, "applied again, later")
        XCTAssertEqual(try requestLogRows(h), rows)
        XCTAssertEqual(h.status(lease.jobID).tasks.first?.step, 3)
    }

    private func requestLogRows(_ h: CoordinatorHarness) throws -> Int {
        try h.coordinator.sqlite.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM requests") ?? 0 }
    }
}
