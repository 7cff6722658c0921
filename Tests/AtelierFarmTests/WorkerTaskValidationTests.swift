import AtelierDiffusion
@testable import AtelierFarmCoordinator
@testable import AtelierFarmProtocol
@testable import AtelierFarmTransport
@testable import AtelierFarmWorker
import AtelierRequests
import Foundation
import XCTest

/// The worker's door (issue 9, item 12): a leased task, with the job's shared inputs restored,
/// passes the same validation the submission passed; a task that breaks a rule (as an older or
/// foreign coordinator could send) is refused with the rule's message before any rendering.
final class WorkerTaskValidationTests: XCTestCase {
    func testLeasedBatchAndTileTasksPassTheSharedValidation() throws {
        let h = try CoordinatorHarness()
        _ = h.register("sd2", models: [("sd2", 4)])
        var batch = h.batch(prompts: ["a", "b"], count: 2)
        batch.batch.params.initImagePng = pngData(width: 32, height: 32, value: 4)
        batch.batch.params.strength = 0.5
        _ = h.submit(batch)
        var up = Atelier_V1_SubmitJobRequest()
        up.upscale.imagePng = pngData(width: 100, height: 72, value: 3)
        up.upscale.params.model = "x4"
        up.upscale.params.prompt = "p"
        up.upscale.tile = 32
        up.upscale.overlap = 8
        _ = h.register("x4", models: [("x4", 7)])
        _ = h.submit(up)
        var kinds = Set<String>()
        for i in 0..<16 {
            let worker = h.register("w\(i)", models: [("sd2", 4), ("x4", 7)])
            let response = h.send(.leaseTask(.with { $0.workerID = worker }))
            guard response.leaseTask.hasLease else { break }
            let task = response.leaseTask.lease.task
            XCTAssertNoThrow(try FarmRequestValidation.validate(task), "\(task)")
            kinds.insert(task.image.params.prompt.isEmpty ? "tile" : "image")
        }
        XCTAssertEqual(kinds, ["image", "tile"])
    }

    func testATaskBreakingARuleIsRefusedWithTheSameMessageAsAtSubmit() throws {
        var task = Atelier_V1_TaskSpec()
        task.image.params.model = "sd2"
        task.image.params.prompt = "a lighthouse"
        task.image.params.initImagePng = pngData(width: 32, height: 32, value: 4)
        task.image.params.strength = 0
        XCTAssertThrowsError(try FarmRequestValidation.validate(task)) { error in
            XCTAssertEqual((error as? RequestValidationError)?.message,
                           "--strength must be in (0, 1] (the share of the init image to repaint), got 0.0")
        }
        var tile = Atelier_V1_TaskSpec()
        tile.upscaleTile.params.model = "x4"
        tile.upscaleTile.tilePng = pngData(width: 32, height: 32, value: 1)
        tile.upscaleTile.tile = .with { $0.x = 90; $0.y = 0; $0.width = 32; $0.height = 32 }
        tile.upscaleTile.imageWidth = 100
        tile.upscaleTile.imageHeight = 72
        XCTAssertThrowsError(try FarmRequestValidation.validate(tile), "a rectangle outside the image")
    }
}
