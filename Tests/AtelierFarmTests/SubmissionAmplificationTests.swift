import AtelierDiffusion
@testable import AtelierFarmCoordinator
@testable import AtelierFarmProtocol
@testable import AtelierFarmTransport
@testable import AtelierFarmWorker
import AtelierRequests
import Foundation
import GRDB
import XCTest

/// A request may not create work or storage out of proportion to what it asks (issue 9, item 3):
/// shared inputs are stored once per job, every field is bounded, and an upscale that would cut
/// thousands of tiles is refused before anything is decoded.
final class SubmissionAmplificationTests: XCTestCase {
    func storedTaskBytes(_ h: CoordinatorHarness, job: String) throws -> (total: Int, largest: Int) {
        return try h.coordinator.sqlite.pool.read { db in
            let row = try Row.fetchOne(db, sql: "SELECT SUM(LENGTH(spec)) AS total, MAX(LENGTH(spec)) AS largest FROM tasks WHERE job_id = ?",
                                       arguments: [job])
            return (row?["total"] ?? 0, row?["largest"] ?? 0)
        }
    }

    func testTaskStorageOfABatchDoesNotGrowWithItsNegativePromptOrInputs() throws {
        let h = try CoordinatorHarness()
        _ = h.register("w")
        let negative = String(repeating: "blurry, ", count: RequestLimits.promptBytes / 8)
        func job(count: UInt32) -> Atelier_V1_SubmitJobRequest {
            var j = h.batch(prompts: [String(repeating: "a lighthouse ", count: 1000)], count: count)
            j.batch.params.negativePrompt = negative
            j.batch.params.initImagePng = pngData(width: 64, height: 64, value: 9)
            return j
        }
        let small = h.submit(job(count: 1))
        let large = h.submit(job(count: 200))
        let one = try storedTaskBytes(h, job: small)
        let many = try storedTaskBytes(h, job: large)
        // Per task: its index, seed and requested size — a few bytes, not the 16 KiB negative
        // prompt, the 13 KB prompt or the image (before: every task carried prompt and negative).
        XCTAssertLessThan(one.largest, 64)
        XCTAssertLessThan(many.largest, 64)
        XCTAssertLessThan(many.total, 200 * 64)

        // The lease still carries everything: hydrate restores the shared inputs.
        let worker = h.register("w2")
        let lease = h.send(.leaseTask(.with { $0.workerID = worker })).leaseTask.lease
        XCTAssertEqual(lease.task.image.params.negativePrompt, negative)
        XCTAssertEqual(lease.task.image.params.prompt, job(count: 1).batch.prompts[0])
        XCTAssertEqual(lease.task.image.params.model, "sd2")
        XCTAssertFalse(lease.task.image.params.initImagePng.isEmpty)
        XCTAssertEqual(lease.task.image.params.seed, 42 &+ UInt64(lease.task.image.index))
    }

    func testUpscaleTilesStoreTheirParamsOnceAndGetThemBackOnLease() throws {
        let h = try CoordinatorHarness()
        let worker = h.register("x4", models: [("x4", 7)])
        var job = Atelier_V1_SubmitJobRequest()
        job.upscale.imagePng = pngData(width: 100, height: 72, value: 3)
        job.upscale.params.model = "x4"
        job.upscale.params.prompt = String(repeating: "harbour ", count: 2000)
        job.upscale.params.negativePrompt = String(repeating: "noise ", count: 2500)
        job.upscale.tile = 32
        job.upscale.overlap = 8
        let id = h.submit(job)
        let stored = try storedTaskBytes(h, job: id)
        XCTAssertLessThan(stored.largest, 8_000, "a tile stores its PNG and rectangle, not the 16 KB prompt and 15 KB negative")
        let lease = h.send(.leaseTask(.with { $0.workerID = worker })).leaseTask.lease
        XCTAssertEqual(lease.task.upscaleTile.params.prompt, job.upscale.params.prompt)
        XCTAssertEqual(lease.task.upscaleTile.params.negativePrompt, job.upscale.params.negativePrompt)
        XCTAssertEqual(lease.task.upscaleTile.params.model, "x4")
    }

    func testOversizedFieldsAreRefusedAsTooLarge() throws {
        let h = try CoordinatorHarness()
        _ = h.register("w")
        _ = h.register("x4", models: [("x4", 7)])
        var batch = h.batch(count: 200)
        batch.batch.params.negativePrompt = String(repeating: "n", count: 1 << 20)
        XCTAssertEqual(h.send(.submitJob(batch)).error.code, .tooLarge)
        var prompts = h.batch()
        prompts.batch.prompts = Array(repeating: String(repeating: "p", count: RequestLimits.promptBytes), count: 100)
        XCTAssertEqual(h.send(.submitJob(prompts)).error.code, .tooLarge, "more than 1 MiB of prompts in one job")
        var up = Atelier_V1_SubmitJobRequest()
        up.upscale.imagePng = pngData(width: 32, height: 32, value: 1)
        up.upscale.params.model = "x4"
        up.upscale.params.prompt = String(repeating: "p", count: 5 << 20)
        XCTAssertEqual(h.send(.submitJob(up)).error.code, .tooLarge)
        let tasks = try h.coordinator.sqlite.pool.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM tasks") }
        XCTAssertEqual(tasks, 0)
    }

    /// 1024² at tile 32, overlap 12 would be 2,601 tiles (it took 1.1 GB and a coordinator
    /// crash); it is refused from the PNG header alone — this PNG has no pixel data at all, so
    /// decoding it would fail differently.
    func testAnUpscaleThatWouldCutThousandsOfTilesIsRefusedBeforeDecoding() throws {
        let h = try CoordinatorHarness()
        _ = h.register("x4", models: [("x4", 7)])
        var up = Atelier_V1_SubmitJobRequest()
        up.upscale.imagePng = PNGFixtures.declaring(width: 1024, height: 1024)
        up.upscale.params.model = "x4"
        up.upscale.params.prompt = "p"
        up.upscale.tile = 32
        up.upscale.overlap = 12
        let response = h.send(.submitJob(up))
        XCTAssertEqual(response.error.code, .tooLarge, response.error.message)
        XCTAssertTrue(response.error.message.contains("2601 tiles"), response.error.message)
        XCTAssertTrue(response.error.message.contains("--tile"), response.error.message)
    }
}
