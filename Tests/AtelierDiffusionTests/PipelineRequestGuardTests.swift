import AtelierKernels
import Foundation
import XCTest

@testable import AtelierDiffusion

/// Requests that reached a kernel precondition or an unbounded allocation now stop with a
/// `PipelineError` before any work (tiny random-weight models).
final class PipelineRequestGuardTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/pipelines")

    private func image(_ name: String) throws -> RGBImage {
        try PNGCodec.read(path: Self.root.appendingPathComponent("inputs/\(name)").path).rgb()
    }

    private func assertInvalidOption(_ body: @autoclosure () throws -> GenerationResult, _ needle: String,
                                     file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            guard case PipelineError.invalidOption(let message)? = error as? PipelineError else {
                return XCTFail("expected invalidOption, got \(error)", file: file, line: line)
            }
            XCTAssertTrue(message.contains(needle), message, file: file, line: line)
        }
    }

    func testDepthToImageWithAWidthOtherThanThePhotosIsRefusedNotTrapped() throws {
        // The depth condition is sized from the photo (diffusers has no width/height here); the
        // latents followed --width, and concatenating the two trapped.
        let pipe = try StableDiffusionPipeline.load(Self.root.appendingPathComponent("models/tiny-depth"))
        var r = GenerationRequest(prompt: "a statue")
        r.steps = 2
        r.initImage = try image("init_32x32.png")
        r.depthMap = DepthMap(width: 4, height: 4, values: (0..<16).map { Float($0) / 15 })
        r.width = 64
        assertInvalidOption(try pipe.generate(r), "input image's size")
        r.width = nil
        XCTAssertEqual(try pipe.generate(r).image.width, 32)
    }

    func testImageToImageWorkingSizeIsBoundedBeforeAnyResize() throws {
        let pipe = try StableDiffusionPipeline.load(Self.root.appendingPathComponent("models/tiny-base"))
        var r = GenerationRequest(prompt: "an apple")
        r.steps = 2
        r.initImage = try image("init_32x32.png")
        r.width = 1 << 20
        r.height = 1 << 20
        assertInvalidOption(try pipe.generate(r), "4096")
        r.width = 1  // below one latent cell of the VAE
        r.height = 1
        assertInvalidOption(try pipe.generate(r), "…4096 a side")
        r.width = -8
        assertInvalidOption(try pipe.generate(r), "working size")
    }

    func testInpaintWorkingSizeIsBounded() throws {
        let pipe = try StableDiffusionPipeline.load(Self.root.appendingPathComponent("models/tiny-inpaint"))
        var r = GenerationRequest(prompt: "an apple")
        r.steps = 2
        r.initImage = try image("init_32x32.png")
        r.mask = try PNGCodec.read(path: Self.root.appendingPathComponent("inputs/mask_32x32.png").path).gray()
        r.width = 100_000
        assertInvalidOption(try pipe.generate(r), "4096")
    }

    func testStrengthLeavingNoStepIsATypedError() throws {
        let pipe = try StableDiffusionPipeline.load(Self.root.appendingPathComponent("models/tiny-base"))
        var r = GenerationRequest(prompt: "an apple")
        r.steps = 3
        r.strength = 0.2  // int(3 × 0.2) = 0 steps
        r.scheduler = "ddim"
        r.initImage = try image("init_32x32.png")
        assertInvalidOption(try pipe.generate(r), "leaves no denoising step")
    }
}
