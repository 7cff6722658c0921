@testable import AtelierFarmCoordinator
@testable import AtelierFarmProtocol
@testable import AtelierFarmTransport
@testable import AtelierFarmWorker
import Foundation
import XCTest

/// A worker's result is checked against the size its task must have from the PNG header alone,
/// before anything is decoded.
final class CoordinatorResultSizeTests: XCTestCase {
    /// A PNG that declares `width`×`height` in its IHDR but carries no pixel data: decoding it
    /// would have to allocate for the declared size before finding out.
    static func forgedPNG(width: UInt32, height: UInt32) -> Data {
        func be(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
        var bytes: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        bytes += be(13) + Array("IHDR".utf8) + be(width) + be(height) + [8, 2, 0, 0, 0] + be(0)
        bytes += be(0) + Array("IEND".utf8) + be(0xAE42_6082)
        return Data(bytes)
    }

    func registerWithSide(_ h: CoordinatorHarness, _ name: String, side: UInt32) -> String {
        var r = Atelier_V1_RegisterWorkerRequest()
        r.workerName = name
        r.capabilities.models = [.with { $0.name = "sd2"; $0.unetInChannels = 4; $0.defaultImageSide = side }]
        let response = h.send(.registerWorker(r))
        XCTAssertFalse(response.hasError, response.error.message)
        return response.registerWorker.workerID
    }

    /// The 16384² PNG on a job with no explicit size: refused from its header (the
    /// message names the declared size), counted as a rejected attempt, never decoded.
    func testHugeResultOnJobWithoutSizeIsRefusedFromItsHeader() throws {
        let h = try CoordinatorHarness()
        let worker = registerWithSide(h, "w", side: 64)
        let job = h.submit(h.batch(count: 1))
        let lease = try XCTUnwrap(h.lease(worker))
        let refused = h.complete(worker, lease, png: Self.forgedPNG(width: 16384, height: 16384))
        XCTAssertEqual(refused.error.code, .invalidArgument)
        XCTAssertTrue(refused.error.message.contains("must be 64x64, the PNG declares 16384x16384"), refused.error.message)
        let task = try XCTUnwrap(h.status(job).tasks.first)
        XCTAssertEqual(task.state, .queued, "a rejected result is a failed attempt; the task is retried")
        XCTAssertTrue(task.lastError.contains("16384x16384"))

        // The model's default side is exact: an 8x8 image is not the result of this job either…
        let again = try XCTUnwrap(h.lease(worker))
        XCTAssertTrue(h.complete(worker, again, png: pngData(width: 8, height: 8, value: 1)).error.message
            .contains("must be 64x64"))
        // …and a 64x64 one is.
        let third = try XCTUnwrap(h.lease(worker))
        XCTAssertFalse(h.complete(worker, third, png: pngData(width: 64, height: 64, value: 1)).hasError)
        XCTAssertEqual(h.status(job).state, .succeeded)
    }

    /// Workers that do not report their model's side still cannot hand in more than 4096², and
    /// an explicit size or an upscale tile is checked from the header too.
    func testResultSizeIsBoundedEvenWithoutAKnownDefaultSide() throws {
        let h = try CoordinatorHarness()
        let worker = h.register("w")
        let job = h.submit(h.batch(count: 2, maxAttempts: 5))
        let lease = try XCTUnwrap(h.lease(worker))
        let refused = h.complete(worker, lease, png: Self.forgedPNG(width: 16384, height: 16384))
        XCTAssertEqual(refused.error.code, .invalidArgument)
        XCTAssertTrue(refused.error.message.contains("at most 4096x4096, the PNG declares 16384x16384"), refused.error.message)
        XCTAssertEqual(h.status(job).pin.isEmpty, true)

        let sized = h.submit(h.batch(count: 1, width: 128, height: 64))
        let other = h.register("other")
        var sizedLease: Atelier_V1_Lease?
        while let l = h.lease(other) { if l.jobID == sized { sizedLease = l; break } }
        let l = try XCTUnwrap(sizedLease)
        XCTAssertTrue(h.complete(other, l, png: Self.forgedPNG(width: 128, height: 65536)).error.message
            .contains("must be 128x64, the PNG declares 128x65536"))

        let junk = h.complete(worker, try XCTUnwrap(h.lease(worker)), png: Data(repeating: 0x89, count: 100))
        XCTAssertEqual(junk.error.code, .invalidArgument)
        XCTAssertTrue(junk.error.message.contains("not a PNG"), junk.error.message)
    }
}

private extension Atelier_V1_JobStatus {
    var pin: String { weightsSha256 + numerics }
}
