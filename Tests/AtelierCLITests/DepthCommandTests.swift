import Foundation
import XCTest
import AtelierDiffusion

/// `atelier depth` and depth2img without --depth-map, run as a user would.
final class DepthCommandTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws { dir = try CLI.scratch() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    var depthModel: String { CLI.models.appendingPathComponent("tiny-depth").path }
    var photo: String { CLI.inputs.appendingPathComponent("init_40x24.png").path }

    func testWritesSixteenBitDepthAtImageOrModelSize() throws {
        let full = dir.appendingPathComponent("d.png").path
        let r = try CLI.run(["depth", "--model", depthModel, "--image", photo, "--output", full])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines), full)
        let png = try PNGCodec.read(path: full)
        XCTAssertEqual(png.sourceBitDepth, 16)
        XCTAssertEqual([png.width, png.height], [40, 24], "default: the input image's size")
        guard case .gray16(let samples) = png.pixels else { return XCTFail("not 16-bit gray") }
        XCTAssertEqual(samples.min(), 0)
        XCTAssertEqual(samples.max(), 65535)

        let native = dir.appendingPathComponent("n.png").path
        let n = try CLI.run(["depth", "--model", depthModel, "--image", photo, "--output", native, "--model-resolution", "--bench"])
        XCTAssertEqual(n.status, 0, n.stderr)
        XCTAssertEqual([try PNGCodec.read(path: native).width, try PNGCodec.read(path: native).height], [32, 32])
        XCTAssertTrue(n.stderr.contains("peak RSS"), n.stderr)
    }

    /// The model-resolution map fed back as --depth-map reproduces the built-in estimate (the
    /// pipeline min-max normalises, so the 0…65535 scaling cancels; only 16-bit rounding remains).
    func testDepthMapRoundTripsThroughRender() throws {
        let map = dir.appendingPathComponent("map.png").path
        XCTAssertEqual(try CLI.run(["depth", "--model", depthModel, "--image", photo, "--output", map, "--model-resolution"]).status, 0)
        let a = dir.appendingPathComponent("a.png").path, b = dir.appendingPathComponent("b.png").path
        let common = ["render", "--model", depthModel, "--prompt", "a statue", "--init-image", photo, "--seed", "3", "--steps", "4", "--quiet"]
        let ra = try CLI.run(common + ["--output", a])
        XCTAssertEqual(ra.status, 0, ra.stderr)
        let rb = try CLI.run(common + ["--depth-map", map, "--output", b])
        XCTAssertEqual(rb.status, 0, rb.stderr)
        let ia = try PNGCodec.read(path: a).rgb(), ib = try PNGCodec.read(path: b).rgb()
        let worst = zip(ia.pixels, ib.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 0
        XCTAssertLessThanOrEqual(worst, 1)
    }

    func testModelWithoutEstimatorIsAOneLineError() throws {
        let out = dir.appendingPathComponent("d.png").path
        let r = try CLI.run(["depth", "--model", CLI.models.appendingPathComponent("tiny-base").path, "--image", photo, "--output", out])
        XCTAssertNotEqual(r.status, 0)
        let lines = r.stderr.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        XCTAssertEqual(lines.count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("depth_estimator"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }
}
