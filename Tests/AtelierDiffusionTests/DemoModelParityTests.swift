import Foundation
import XCTest
@testable import AtelierDiffusion

/// The committed demo models (Models/demo) render like diffusers: txt2img on the base model and
/// x4 upscales (the upscaler shares text encoder, tokenizer and VAE with the base through
/// symlinks) against PNGs made by Tests/Reference/demo/make_demo_fixtures.py.
final class DemoModelParityTests: XCTestCase {
    struct Case: Decodable {
        let name, model, prompt, negative_prompt, expected: String
        let seed: UInt64
        let steps: Int
        let guidance: Double
        let width, height, noise_level: Int?
        let init_image: String?
    }

    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let fixtures = repo.appendingPathComponent("Tests/Fixtures/demo-models")
    static let models = repo.appendingPathComponent("Models/demo")

    func testDemoModelsRenderLikeDiffusersWithinTwoLevels() throws {
        let cases = try JSONDecoder().decode([Case].self, from: Data(contentsOf: Self.fixtures.appendingPathComponent("cases.json")))
        XCTAssertGreaterThanOrEqual(cases.count, 6)
        XCTAssertTrue(cases.contains { $0.model == "x4" } && cases.contains { $0.model == "base" })
        var pipelines: [String: StableDiffusionPipeline] = [:]
        for c in cases {
            let pipe = try pipelines[c.model] ?? StableDiffusionPipeline.load(Self.models.appendingPathComponent(c.model))
            pipelines[c.model] = pipe
            var r = GenerationRequest(prompt: c.prompt)
            r.negativePrompt = c.negative_prompt
            r.seed = c.seed
            r.steps = c.steps
            r.guidance = c.guidance
            r.width = c.width
            r.height = c.height
            r.noiseLevel = c.noise_level
            if let p = c.init_image { r.initImage = try PNGCodec.read(path: Self.fixtures.appendingPathComponent(p).path).rgb() }
            let image = c.model == "x4" ? try pipe.upscale(r, tile: nil).image : try pipe.generate(r).image
            let expected = try PNGCodec.read(path: Self.fixtures.appendingPathComponent(c.expected).path).rgb()
            XCTAssertEqual([image.width, image.height], [expected.width, expected.height], c.name)
            guard image.width == expected.width, image.height == expected.height else { continue }
            var maxDiff = 0, sum = 0
            for (a, b) in zip(image.pixels, expected.pixels) {
                let d = abs(Int(a) - Int(b))
                maxDiff = max(maxDiff, d)
                sum += d
            }
            print("demo parity \(c.name): max \(maxDiff)/255, mean \(String(format: "%.4f", Double(sum) / Double(expected.pixels.count)))/255")
            XCTAssertLessThanOrEqual(maxDiff, 2, "\(c.name): a pixel differs from diffusers by \(maxDiff)/255")
        }
    }
}
