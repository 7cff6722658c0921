import AtelierDiffusion
@testable import AtelierFarmCoordinator
@testable import AtelierFarmProtocol
@testable import AtelierFarmTransport
@testable import AtelierFarmWorker
import Foundation
import XCTest

/// Tiled x4 upscales through the coordinator: splitting, validating tiles, stitching, recovery.
final class CoordinatorUpscaleTests: XCTestCase {
    private let width = 100, height = 72

    /// Detailed low-res content (so a misplaced tile would show).
    private func lowRes() -> [UInt8] {
        (0..<(width * height * 3)).map { i in UInt8(truncatingIfNeeded: (i * 7919) ^ (i >> 5)) }
    }

    /// Stands in for the x4 upscaler: nearest-neighbour, 4×.
    private func upscale4(_ pixels: [UInt8], width: Int, height: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: width * 4 * height * 4 * 3)
        for y in 0..<(height * 4) {
            for x in 0..<(width * 4) {
                for c in 0..<3 {
                    out[(y * width * 4 + x) * 3 + c] = pixels[((y / 4) * width + x / 4) * 3 + c]
                }
            }
        }
        return out
    }

    /// What a worker does with a tile lease.
    private func render(_ lease: Atelier_V1_Lease) throws -> Data {
        let tile = lease.task.upscaleTile
        let decoded = try PNGCodec.decode([UInt8](tile.tilePng)).rgb()
        return pngData(width: decoded.width * 4, height: decoded.height * 4,
                       pixels: upscale4(decoded.pixels, width: decoded.width, height: decoded.height))
    }

    private func submitUpscale(_ h: CoordinatorHarness, tile: UInt32 = 32, overlap: UInt32 = 8) -> String {
        var job = Atelier_V1_SubmitJobRequest()
        job.upscale.imagePng = pngData(width: width, height: height, pixels: lowRes())
        job.upscale.params.model = "x4"
        job.upscale.params.prompt = "a sharp photo"
        job.upscale.params.seed = 1234
        job.upscale.params.steps = 20
        job.upscale.tile = tile
        job.upscale.overlap = overlap
        return h.submit(job)
    }

    func testUpscaleSplitsIntoOverlappingTilesAndStitchesWhenAllArrive() throws {
        let h = try CoordinatorHarness()
        let worker = h.register("upscaler", models: [("x4", 7)])
        let txt2img = h.register("plain", models: [("x4", 4)])
        let job = submitUpscale(h)
        let grid = try TileGrid(width: width, height: height, tile: 32, overlap: 8)
        XCTAssertEqual(h.status(job).totalTasks, UInt32(grid.tiles.count))
        XCTAssertEqual(grid.tiles.count, 12)
        XCTAssertNil(h.lease(txt2img), "upscale tiles need a 7-channel UNet")

        var leases = [Atelier_V1_Lease]()
        while let lease = h.lease(worker) { leases.append(lease) }
        XCTAssertEqual(leases.count, grid.tiles.count)
        let original = lowRes()
        for lease in leases {
            let tile = lease.task.upscaleTile
            let rect = grid.tiles[Int(tile.index)]
            XCTAssertEqual([tile.tile.x, tile.tile.y, tile.tile.width, tile.tile.height].map(Int.init),
                           [rect.x, rect.y, rect.width, rect.height])
            XCTAssertEqual(tile.imageWidth, UInt32(width))
            XCTAssertEqual(tile.imageHeight, UInt32(height))
            XCTAssertEqual(tile.params.seed, 1234, "one noise field: every tile has the job's seed")
            XCTAssertEqual(tile.params.prompt, "a sharp photo")
            let crop = try PNGCodec.decode([UInt8](tile.tilePng)).rgb()
            XCTAssertEqual(crop.pixels, try rect.crop(from: original, imageWidth: width, imageHeight: height, channels: 3))
        }

        // A tile of the wrong size is refused (and retried), the others arrive out of order.
        let first = leases[0]
        XCTAssertEqual(h.complete(worker, first, png: pngData(width: 32, height: 32, value: 0)).error.code, .invalidArgument)
        var pending = Array(leases.dropFirst().reversed())
        pending.append(try XCTUnwrap(h.lease(worker), "the rejected tile is queued again"))
        for (n, lease) in pending.enumerated() {
            if n == pending.count - 1 {
                XCTAssertEqual(h.fetch(job, index: 0).error.code, .notFound, "not stitched before the last tile")
            }
            XCTAssertFalse(h.complete(worker, lease, png: try render(lease)).hasError)
        }

        let status = h.status(job)
        XCTAssertEqual(status.state, .succeeded, "\(status.errors)")
        XCTAssertEqual(status.resultCount, 1)
        XCTAssertTrue(status.seamRatio.isFinite && status.seamRatio > 0, "\(status.seamRatio)")
        let fetched = h.fetch(job, index: 0)
        XCTAssertEqual(fetched.fetchResult.fileName, "upscaled.png")
        let stitched = try PNGCodec.decode([UInt8](fetched.fetchResult.png)).rgb()
        XCTAssertEqual(stitched.width, width * 4)
        XCTAssertEqual(stitched.height, height * 4)
        XCTAssertEqual(stitched.pixels, upscale4(original, width: width, height: height),
                       "consistent tiles stitch back to the whole upscaled image")
        for i in grid.tiles.indices {
            XCTAssertTrue(FileManager.default.fileExists(
                atPath: h.directory.appendingPathComponent("results/\(job)/tiles/\(i).png").path))
        }
        XCTAssertEqual(h.fetch(job, index: 1).error.code, .invalidArgument)
    }

    func testUpscaleStitchResumesFromStoredTilesAfterACrash() throws {
        let h = try CoordinatorHarness()
        let worker = h.register("upscaler", models: [("x4", 7)])
        let job = submitUpscale(h, tile: 64, overlap: 16)
        while let lease = h.lease(worker) {
            XCTAssertFalse(h.complete(worker, lease, png: try render(lease)).hasError)
        }
        XCTAssertEqual(h.status(job).state, .succeeded)

        // Put the directory in the state a crash right after the last tile's commit leaves.
        try h.coordinator.sqlite.write { db in
            try db.execute(sql: "UPDATE jobs SET state = 'running', seam_ratio = NULL, finished = NULL WHERE id = ?",
                           arguments: [job])
            try db.execute(sql: "DELETE FROM results WHERE job_id = ? AND kind = 'upscaled'", arguments: [job])
        }
        try FileManager.default.removeItem(at: h.directory.appendingPathComponent("results/\(job)/upscaled.png"))
        XCTAssertEqual(h.status(job).state, .running)

        try h.restart()
        let status = h.status(job)
        XCTAssertEqual(status.state, .succeeded, "re-stitched from the tile PNGs on startup")
        let stitched = try PNGCodec.decode([UInt8](h.fetch(job, index: 0).fetchResult.png)).rgb()
        XCTAssertEqual(stitched.pixels, upscale4(lowRes(), width: width, height: height))
    }

    /// The last tile's complete_task is answered before the stitch runs: the stitch waits on the
    /// coordinator's stitching queue (parked here), the job stays running with every tile done,
    /// and succeeds once the queue runs it. (Stitching on the request path answered only after
    /// the whole image was blended and written.)
    func testLastTileIsAnsweredBeforeTheStitchRuns() throws {
        let h = try CoordinatorHarness()
        let worker = h.register("upscaler", models: [("x4", 7)])
        let job = submitUpscale(h, tile: 64, overlap: 16)
        let parked = DispatchSemaphore(value: 0)
        h.coordinator.stitchQueue.async { parked.wait() }
        while let lease = h.lease(worker) {
            XCTAssertFalse(h.complete(worker, lease, png: try render(lease)).hasError)
        }
        var request = Atelier_V1_JobStatusRequest()
        request.jobID = job
        request.includeTasks = true
        let before = h.send(.jobStatus(request)).jobStatus.job  // not h.status: that waits for stitches
        XCTAssertEqual(before.state, .running)
        XCTAssertTrue(before.tasks.allSatisfy { $0.state == .done })
        parked.signal()
        let after = h.status(job)
        XCTAssertEqual(after.state, .succeeded, "\(after.errors)")
        XCTAssertGreaterThan(after.seamRatio, 0)
    }

    func testLostTileFileIsRenderedAgain() throws {
        let h = try CoordinatorHarness()
        let worker = h.register("upscaler", models: [("x4", 7)])
        let job = submitUpscale(h, tile: 64, overlap: 16)
        var leases = [Atelier_V1_Lease]()
        while let lease = h.lease(worker) { leases.append(lease) }
        XCTAssertGreaterThan(leases.count, 1)
        for lease in leases.dropLast() {
            XCTAssertFalse(h.complete(worker, lease, png: try render(lease)).hasError)
        }
        let lostIndex = leases[0].task.upscaleTile.index
        try FileManager.default.removeItem(at: h.directory.appendingPathComponent("results/\(job)/tiles/\(lostIndex).png"))
        let last = try XCTUnwrap(leases.last)
        XCTAssertFalse(h.complete(worker, last, png: try render(last)).hasError)

        var status = h.status(job)
        XCTAssertEqual(status.state, .running)
        XCTAssertEqual(status.tasks[Int(lostIndex)].state, .queued)
        let again = try XCTUnwrap(h.lease(worker))
        XCTAssertEqual(again.task.upscaleTile.index, lostIndex)
        XCTAssertFalse(h.complete(worker, again, png: try render(again)).hasError)
        status = h.status(job)
        XCTAssertEqual(status.state, .succeeded, "\(status.errors)")
    }

    func testUpscaleSubmissionsAreValidated() throws {
        var options = CoordinatorOptions()
        options.maxImageBytes = 200_000
        let h = try CoordinatorHarness(options: options)
        _ = h.register("upscaler", models: [("x4", 7)])
        func code(png: Data, tile: UInt32 = 0, overlap: UInt32 = 0, noise: UInt32? = nil) -> Atelier_V1_ErrorCode {
            var job = Atelier_V1_SubmitJobRequest()
            job.upscale.imagePng = png
            job.upscale.params.model = "x4"
            job.upscale.tile = tile
            job.upscale.overlap = overlap
            if let noise { job.upscale.params.noiseLevel = noise }
            let response = h.send(.submitJob(job))
            return response.error.code
        }
        let small = pngData(width: 40, height: 40, value: 3)
        XCTAssertEqual(code(png: small), .unspecified, "defaults: tile 128, overlap 32, one tile")
        XCTAssertEqual(code(png: small, tile: 32), .unspecified, "overlap default shrinks with the tile")
        XCTAssertEqual(code(png: pngData(width: 1025, height: 8, value: 3)), .tooLarge)
        XCTAssertEqual(code(png: Data(repeating: 0x89, count: 200_001)), .tooLarge, "over the byte limit")
        XCTAssertEqual(code(png: small, tile: 36), .invalidArgument, "not a multiple of 8")
        XCTAssertEqual(code(png: small, tile: 24), .invalidArgument, "under 32")
        XCTAssertEqual(code(png: small, tile: 32, overlap: 16), .invalidArgument, "not under half the tile")
        XCTAssertEqual(code(png: small, tile: 64, overlap: 6), .invalidArgument, "not a multiple of 4")
        XCTAssertEqual(code(png: small, noise: 351), .invalidArgument)
        XCTAssertEqual(code(png: Data("GIF89a-not-a-png".utf8)), .invalidArgument)
        XCTAssertEqual(code(png: Data()), .invalidArgument)
    }
}
