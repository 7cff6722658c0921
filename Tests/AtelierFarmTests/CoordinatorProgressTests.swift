@testable import AtelierFarmCoordinator
@testable import AtelierFarmProtocol
@testable import AtelierFarmTransport
@testable import AtelierFarmWorker
import Foundation
import XCTest

/// Heartbeat progress as the coordinator stores and reports it.
final class CoordinatorProgressTests: XCTestCase {
    /// A worker that reports step > total_steps (or a total of 0) must not make JobStatus report
    /// more steps done than there are: `atelier wait` draws its bar from these numbers.
    func testHeartbeatStepBeyondTotalIsClampedBeforeStoring() throws {
        let h = try CoordinatorHarness()
        let worker = h.register("w")
        let job = h.submit(h.batch(count: 1))
        let lease = try XCTUnwrap(h.lease(worker))

        XCTAssertFalse(h.heartbeat(worker, lease, step: 50, total: 20).hasError)
        var task = try XCTUnwrap(h.status(job).tasks.first)
        XCTAssertEqual(task.totalSteps, 20)
        XCTAssertEqual(task.step, 20, "step 50 of 20 is stored as 20 of 20")

        XCTAssertFalse(h.heartbeat(worker, lease, step: 7, total: 0).hasError)
        task = try XCTUnwrap(h.status(job).tasks.first)
        XCTAssertEqual(task.totalSteps, 0)
        XCTAssertEqual(task.step, 0, "with no total there is no step either")

        XCTAssertFalse(h.heartbeat(worker, lease, step: .max, total: .max).hasError)
        task = try XCTUnwrap(h.status(job).tasks.first)
        XCTAssertLessThanOrEqual(task.step, task.totalSteps)
        XCTAssertEqual(task.totalSteps, Coordinator.maxReportedSteps)
    }
}
