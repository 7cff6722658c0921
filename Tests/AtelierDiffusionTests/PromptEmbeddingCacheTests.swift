import Foundation
import XCTest
import AtelierKernels
@testable import AtelierDiffusion

/// The pipeline encodes a prompt once for all the tiles / images that share it, and a cached
/// embedding is exactly a fresh one.
final class PromptEmbeddingCacheTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/pipelines")

    func testRepeatedPromptReusesItsEmbeddingAndANewPromptIsEncoded() throws {
        let pipe = try StableDiffusionPipeline.load(Self.root.appendingPathComponent("models/tiny-base"))
        let first = try pipe.encodePrompt("a photo", negative: "blurry", guidance: true)
        let again = try pipe.encodePrompt("a photo", negative: "blurry", guidance: true)
        XCTAssertTrue(first.storage === again.storage, "the same prompt was encoded twice")
        let other = try pipe.encodePrompt("a photo", negative: "", guidance: true)
        XCTAssertFalse(other.storage === first.storage)
        XCTAssertNotEqual(other.scalars, first.scalars)
        let unguided = try pipe.encodePrompt("a photo", negative: "blurry", guidance: false)
        XCTAssertEqual(unguided.shape[0], 1)
        // A fresh pipeline (nothing cached) gives the same numbers as the cached entry.
        let fresh = try StableDiffusionPipeline.load(Self.root.appendingPathComponent("models/tiny-base"))
        XCTAssertEqual(try fresh.encodePrompt("a photo", negative: "blurry", guidance: true).scalars, again.scalars)
    }
}
