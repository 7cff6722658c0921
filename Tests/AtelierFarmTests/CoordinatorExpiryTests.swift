@testable import AtelierFarmCoordinator
@testable import AtelierFarmProtocol
@testable import AtelierFarmTransport
@testable import AtelierFarmWorker
import Foundation
import XCTest

/// Lease expiries (killed, stopped or cut-off workers) are not render failures: their own budget,
/// a back-off before the task is leased again, and a preference for another worker.
final class CoordinatorExpiryTests: XCTestCase {
    /// With max_attempts 1, a task whose lease expires three times still completes: expiries
    /// are not charged as attempts.
    func testExpiredLeaseIsNotChargedAsAnAttempt() throws {
        let h = try CoordinatorHarness()
        _ = h.register("first")
        let job = h.submit(h.batch(count: 1, maxAttempts: 1))
        for n in 1...3 {
            let crashing = h.register("crashing-\(n)")  // a restarted process registers anew
            let lease = try XCTUnwrap(h.lease(crashing), "expiry \(n - 1) did not fail the task")
            XCTAssertFalse(h.heartbeat(crashing, lease).hasError)
            h.clock.advance(31)  // no heartbeat for longer than the TTL
            try h.coordinator.performMaintenance()
            let task = try XCTUnwrap(h.status(job).tasks.first)
            XCTAssertEqual(task.state, .queued, "expiry \(n): \(h.status(job).errors)")
            XCTAssertEqual(task.leaseExpiries, UInt32(n))
            if n >= 2 { XCTAssertGreaterThan(task.notBeforeUnixMs, 0, "requeued with a back-off") }
            h.clock.advance(300)  // past any back-off
        }
        let healthy = h.register("healthy")
        let lease = try XCTUnwrap(h.lease(healthy))
        XCTAssertFalse(h.complete(healthy, lease).hasError)
        XCTAssertEqual(h.status(job).state, .succeeded)
    }

    /// The scenario in simulated time, with the DEFAULT options: six worker kills on a
    /// 24-image batch, each restarted worker taking the first task it is offered and dying on it.
    /// Before, one task absorbed every kill and failed the batch after three.
    func testSixWorkerKillsDoNotFailATwentyFourImageBatchWithDefaultOptions() throws {
        let h = try CoordinatorHarness()
        XCTAssertEqual(h.options.defaultMaxAttempts, 3)
        let healthy = h.register("healthy")
        let job = h.submit(h.batch(count: 24))
        for kill in 1...6 {
            let restarted = h.register("flapping-\(kill)")
            let lease = try XCTUnwrap(h.lease(restarted), "kill \(kill): no lease; job \(h.status(job).state)")
            XCTAssertFalse(h.heartbeat(restarted, lease, step: 3).hasError)
            h.clock.advance(35)  // killed: its lease runs out
            XCTAssertFalse(h.register("healthy", id: healthy).isEmpty)  // the healthy worker stays alive
            try h.coordinator.performMaintenance()
            XCTAssertNotEqual(h.status(job).state, .failed, "after kill \(kill): \(h.status(job).errors)")
        }
        // The healthy worker drains the queue (back-offs pass as it works).
        var rendered = 0
        while rendered < 100, let lease = h.lease(healthy) ?? { h.clock.advance(5); return h.lease(healthy) }() {
            XCTAssertFalse(h.heartbeat(healthy, lease).hasError)
            h.clock.advance(2)
            XCTAssertFalse(h.complete(healthy, lease).hasError)
            rendered += 1
        }
        let status = h.status(job)
        XCTAssertEqual(status.state, .succeeded, "\(status.errors)")
        XCTAssertEqual(status.doneTasks, 24)
        XCTAssertEqual(status.tasks.map(\.leaseExpiries).reduce(0, +), 6, "every kill is recorded as an expiry")
    }

    /// A task that lost its lease goes preferably to another (proven) worker than the one that
    /// lost it; from its second expiry on it also waits out a back-off while other tasks go first.
    func testExpiredTaskBacksOffAndPrefersAnotherWorker() throws {
        let h = try CoordinatorHarness()
        let a = h.register("a")
        let b = h.register("b")
        let job = h.submit(h.batch(count: 5))
        let a0 = try XCTUnwrap(h.lease(a))
        XCTAssertEqual(a0.task.image.index, 0)
        let b1 = try XCTUnwrap(h.lease(b))
        XCTAssertFalse(h.heartbeat(b, b1).hasError)
        XCTAssertFalse(h.complete(b, b1).hasError)  // b has proved it works
        h.clock.advance(60)  // past a's first lease deadline (TTL + work estimate)
        XCTAssertEqual(h.register("b", id: b), b)  // b is alive
        XCTAssertEqual(h.register("a", id: a), a)  // a comes back
        let a2 = try XCTUnwrap(h.lease(a))
        XCTAssertEqual(a2.task.image.index, 2, "task 0 was lost by a and b could take it: a gets other work")
        let b0 = try XCTUnwrap(h.lease(b))
        XCTAssertEqual(b0.task.image.index, 0)
        XCTAssertEqual(b0.attempt, 2)
        XCTAssertFalse(h.heartbeat(b, b0).hasError)
        XCTAssertFalse(h.heartbeat(a, a2).hasError)

        h.clock.advance(31)  // b is killed: its heartbeat-extended lease runs out (second expiry)
        XCTAssertFalse(h.complete(a, a2).hasError)
        try h.coordinator.performMaintenance()
        XCTAssertEqual(h.status(job).tasks.first?.leaseExpiries, 2)
        XCTAssertEqual(h.register("b", id: b), b)
        let a3 = try XCTUnwrap(h.lease(a))
        XCTAssertEqual(a3.task.image.index, 3, "task 0 backs off after its second expiry; task 3 goes first")
        XCTAssertFalse(h.complete(a, a3).hasError)
        let b4 = try XCTUnwrap(h.lease(b))
        XCTAssertEqual(b4.task.image.index, 4, "task 0 still backs off")
        XCTAssertFalse(h.complete(b, b4).hasError)
        h.clock.advance(3)  // the back-off (2 s) has passed
        XCTAssertNil(h.lease(b), "task 0 was lost by b, and a (proven) is alive to take it")
        let again = try XCTUnwrap(h.lease(a))
        XCTAssertEqual(again.task.image.index, 0)
        XCTAssertEqual(again.attempt, 3)
        XCTAssertFalse(h.complete(a, again).hasError)
        let status = h.status(job)
        XCTAssertEqual(status.state, .succeeded)
        XCTAssertEqual(status.tasks.first?.leaseExpiries, 2)
    }

    /// The worker that lost a task and a fresh, unproven worker never both step aside: one of
    /// them takes it (no deadlock while both are alive and nothing else is queued).
    func testExpiredTaskIsNotStrandedBetweenItsLoserAndAnUnprovenWorker() throws {
        let h = try CoordinatorHarness()
        let loser = h.register("loser")
        let job = h.submit(h.batch(count: 1))
        let first = try XCTUnwrap(h.lease(loser))
        XCTAssertFalse(h.heartbeat(loser, first).hasError)  // proven
        h.clock.advance(31)
        let fresh = h.register("fresh")
        XCTAssertEqual(h.register("loser", id: loser), loser)
        try h.coordinator.performMaintenance()
        let taken = h.lease(fresh) ?? h.lease(loser)
        XCTAssertNotNil(taken, "someone takes it: \(h.status(job).tasks)")
    }

    /// Only when its (generous) expiry budget is used up does a task fail, and the job with it.
    func testTaskFailsOnlyWhenItsExpiryBudgetIsUsedUp() throws {
        var options = CoordinatorOptions()
        options.maxLeaseExpiries = 3
        let h = try CoordinatorHarness(options: options)
        _ = h.register("w0")
        let job = h.submit(h.batch(count: 1))
        for n in 1...3 {
            let w = h.register("w\(n)")
            XCTAssertNotNil(h.lease(w))
            h.clock.advance(3600)
            try h.coordinator.performMaintenance()
            XCTAssertEqual(h.status(job).state, n < 3 ? .running : .failed, "after expiry \(n)")
            h.clock.advance(300)  // past the back-off
        }
        let status = h.status(job)
        XCTAssertEqual(status.tasks.first?.state, .failed)
        XCTAssertTrue(status.errors.last?.contains("lost its worker 3 time(s)") ?? false, "\(status.errors)")
    }

    /// The same error from two different workers is deterministic: the task fails at once rather
    /// than using up the rest of its attempts. Different errors are retried as before.
    func testSameErrorOnTwoWorkersFailsTheJobEarly() throws {
        let h = try CoordinatorHarness()
        let workers = [h.register("a"), h.register("b"), h.register("c")]
        let job = h.submit(h.batch(count: 1, maxAttempts: 10))
        let first = try XCTUnwrap(h.lease(workers[0]))
        XCTAssertFalse(h.fail(workers[0], first, "a: transient glitch").hasError)
        let second = try XCTUnwrap(h.lease(workers[1]))
        XCTAssertFalse(h.fail(workers[1], second, "b: index out of range in the scheduler").hasError)
        XCTAssertEqual(h.status(job).state, .running, "two different errors: retried")
        let third = try XCTUnwrap(h.lease(workers[2]))
        XCTAssertFalse(h.fail(workers[2], third, "c: index out of range in the scheduler").hasError)
        let status = h.status(job)
        XCTAssertEqual(status.state, .failed)
        XCTAssertEqual(status.tasks.first?.attempts, 3)
        XCTAssertTrue(status.errors.last?.contains("same error on 2 different workers") ?? false, "\(status.errors)")
    }
}
