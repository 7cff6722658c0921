import AtelierDiffusion
@testable import AtelierFarmCoordinator
@testable import AtelierFarmProtocol
@testable import AtelierFarmTransport
@testable import AtelierFarmWorker
import Foundation
import XCTest

/// A stitch that cannot write its result for a passing cause is retried, not failed for good.
final class CoordinatorStitchRetryTests: XCTestCase {
    func testStitchThatCannotWriteIsRetriedByMaintenance() throws {
        let h = try CoordinatorHarness()
        let worker = h.register("upscaler", models: [("x4", 7)])
        let (w, ht) = (48, 40)
        let low = (0..<(w * ht * 3)).map { UInt8(truncatingIfNeeded: $0 * 31) }
        var job = Atelier_V1_SubmitJobRequest()
        job.upscale.imagePng = pngData(width: w, height: ht, pixels: low)
        job.upscale.params.model = "x4"
        job.upscale.params.seed = 1
        job.upscale.params.steps = 20
        job.upscale.tile = 32
        job.upscale.overlap = 8
        let jobID = h.submit(job)
        // The stitched image's path is taken by a non-empty folder: the write fails like a full disk.
        let blocker = h.directory.appendingPathComponent("results/\(jobID)/upscaled.png")
        try FileManager.default.createDirectory(at: blocker.appendingPathComponent("x"), withIntermediateDirectories: true)
        while let lease = h.lease(worker) {
            let tile = lease.task.upscaleTile
            let png = pngData(width: Int(tile.tile.width) * 4, height: Int(tile.tile.height) * 4, value: 128)
            XCTAssertFalse(h.complete(worker, lease, png: png).hasError)
        }
        var status = h.status(jobID)
        XCTAssertEqual(status.state, .running, "not failed for good: \(status.errors)")
        XCTAssertTrue(status.errors.contains { $0.contains("retrying") }, "\(status.errors)")
        try h.coordinator.performMaintenance()
        XCTAssertEqual(h.status(jobID).errors.count, status.errors.count, "the same error is noted once")

        try FileManager.default.removeItem(at: blocker)
        try h.coordinator.performMaintenance()
        status = h.status(jobID)
        XCTAssertEqual(status.state, .succeeded, "\(status.errors)")
        let stitched = try PNGCodec.decode([UInt8](h.fetch(jobID, index: 0).fetchResult.png))
        XCTAssertEqual(stitched.width, w * 4)
    }
}
