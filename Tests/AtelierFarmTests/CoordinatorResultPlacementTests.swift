@testable import AtelierFarmCoordinator
@testable import AtelierFarmProtocol
import Foundation
import XCTest

/// A completion puts its result file in place *before* its write transaction (so the writer is
/// not held over the rename and its fsync), and the transaction may still refuse it: the lease
/// can be lost in between. These tests lose it exactly there, through the coordinator's
/// `completionWillCommit` seam, on a real SQLite file and real result files.
final class CoordinatorResultPlacementTests: XCTestCase {
    /// The job is cancelled between placement and the transaction: the completion is refused and
    /// its file is taken back, so no unrecorded result is left at the task's path.
    func testCompletionRefusedAfterPlacementLeavesNoFile() throws {
        let h = try CoordinatorHarness()
        let worker = h.register("a")
        let job = h.submit(h.batch(count: 1))
        let lease = try XCTUnwrap(h.lease(worker))
        let file = h.directory.appendingPathComponent("results/\(job)/0.png")
        var placed = false
        h.coordinator.completionWillCommit = { [unowned h] in
            h.coordinator.completionWillCommit = nil
            placed = FileManager.default.fileExists(atPath: file.path)
            var cancel = Atelier_V1_CancelJobRequest()
            cancel.jobID = job
            XCTAssertFalse(h.send(.cancelJob(cancel)).hasError)
        }
        let response = h.complete(worker, lease)
        XCTAssertEqual(response.error.code, .staleLease, response.error.message)
        XCTAssertTrue(placed, "the file was in place before the transaction")
        XCTAssertFalse(FileManager.default.fileExists(atPath: file.path), "and taken back when it was refused")
        XCTAssertEqual(h.fetch(job, index: 0).error.code, .notFound)
    }

    /// The lease expires between placement and the transaction, and another worker renders and
    /// completes the task meanwhile: its result replaces the placed file and is recorded; the
    /// first completion is then refused and must not remove the winner's file.
    func testRefusedCompletionNeverRemovesTheResultThatWasRecorded() throws {
        let h = try CoordinatorHarness()
        let a = h.register("a")
        let b = h.register("b")
        let job = h.submit(h.batch(count: 1, width: 64, height: 64))
        let lost = try XCTUnwrap(h.lease(a))
        let winner = pngData(width: 64, height: 64, value: 200)
        h.coordinator.completionWillCommit = { [unowned h] in
            h.coordinator.completionWillCommit = nil
            h.clock.advance(h.options.leaseTTL + 3600)  // a's lease runs out…
            guard let taken = h.lease(b) else { return XCTFail("b should get the requeued task") }
            XCTAssertFalse(h.complete(b, taken, png: winner).hasError, "…and b's result is recorded")
        }
        let response = h.complete(a, lost, png: pngData(width: 64, height: 64, value: 7))
        XCTAssertEqual(response.error.code, .staleLease, response.error.message)
        let status = h.status(job)
        XCTAssertEqual(status.state, .succeeded, "\(status.errors)")
        XCTAssertEqual(h.fetch(job, index: 0).fetchResult.png, winner, "b's recorded result is intact")
    }
}
