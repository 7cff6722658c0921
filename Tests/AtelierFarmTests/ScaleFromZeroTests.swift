@testable import AtelierFarmCoordinator
@testable import AtelierFarmProtocol
import Foundation
import XCTest

/// Scale from zero at the coordinator's door (issue 11, item 6): a job for a model no worker has
/// served is queued with a warning; the model-specific check its submission could not make (a
/// UNet fitting its mode) is made once workers serving the model register, with the same line.
final class ScaleFromZeroTests: XCTestCase {
    func testAJobForAModelNoWorkerServesIsQueuedWithOneWarningLine() throws {
        let h = try CoordinatorHarness()
        let response = h.send(.submitJob(h.batch(count: 2)))
        XCTAssertFalse(response.hasError, response.error.message)
        XCTAssertEqual(response.submitJob.warnings, [Coordinator.waitingForWorkerWarning(model: "sd2")])
        XCTAssertFalse(response.submitJob.warnings[0].contains("\n"))
        let worker = h.register("w", models: [("sd2", 4)])
        let lease = try XCTUnwrap(h.lease(worker), "the first worker serving the model takes it")
        XCTAssertEqual(lease.jobID, response.submitJob.jobID)
        XCTAssertTrue(h.send(.submitJob(h.batch(count: 1))).submitJob.warnings.isEmpty, "a worker serves it now")
    }

    /// An inpainting job (a 9-channel UNet) queued before any worker: when a worker registers the
    /// model with a 4-channel UNet only, the job fails with the very line a submission made then
    /// is refused with.
    func testAQueuedJobNoRegisteredUNetFitsFailsWithTheSubmissionsRefusalLine() throws {
        let h = try CoordinatorHarness()
        var inpaint = h.batch(count: 1, width: 64, height: 64)
        inpaint.batch.params.initImagePng = pngData(width: 64, height: 64, value: 3)
        inpaint.batch.params.maskPng = pngData(width: 64, height: 64, value: 255)
        let jobID = h.submit(inpaint)
        XCTAssertEqual(try h.coordinator.store.jobStatus(jobID: jobID, includeTasks: false).state, .queued)

        _ = h.register("w", models: [("sd2", 4)])
        let status = try h.coordinator.store.jobStatus(jobID: jobID, includeTasks: false)
        XCTAssertEqual(status.state, .failed)
        var strict = inpaint
        strict.requireWorker = true
        let refused = h.send(.submitJob(strict))
        XCTAssertEqual(refused.error.code, .unknownModel)
        XCTAssertEqual(status.errors.last, refused.error.message)
        XCTAssertTrue(refused.error.message.contains("inpainting needs a UNet with 9 input channels"), refused.error.message)
    }

    /// A fitting worker registering instead leaves the job queued for it.
    func testAQueuedJobIsKeptWhenARegisteredUNetFits() throws {
        let h = try CoordinatorHarness()
        let jobID = h.submit(h.batch(count: 1))
        _ = h.register("w", models: [("sd2", 4)])
        try h.coordinator.performMaintenance()
        XCTAssertEqual(try h.coordinator.store.jobStatus(jobID: jobID, includeTasks: false).state, .queued)
    }
}
