import Foundation
import XCTest
import AtelierKernels
@testable import AtelierDiffusion

/// Whole pipelines against diffusers' PIL output for the same arguments and seed: every mode ×
/// every scheduler on random-weight models (Tests/Reference/pipelines/make_pipeline_fixtures.py).
final class PipelineParityTests: XCTestCase {
    struct Case: Decodable {
        let name, model, mode, prompt, expected: String
        let negative_prompt: String?
        let seed: UInt64
        let steps: Int?
        let guidance: Double?
        let scheduler: String?
        let width, height: Int?
        let strength: Double?
        let noise_level: Int?
        let guidance_rescale: Double?
        let init_image, mask, depth_map: String?
        let prompt_ids: [Int]?
    }

    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/pipelines")

    static func loadCases() throws -> [Case] {
        try JSONDecoder().decode([Case].self, from: Data(contentsOf: Self.root.appendingPathComponent("cases.json")))
    }

    static func request(for c: Case) throws -> GenerationRequest {
        var r = GenerationRequest(prompt: c.prompt)
        r.negativePrompt = c.negative_prompt ?? ""
        r.seed = c.seed
        r.steps = c.steps
        r.guidance = c.guidance
        r.scheduler = c.scheduler
        r.width = c.width
        r.height = c.height
        r.strength = c.strength
        r.noiseLevel = c.noise_level
        r.guidanceRescale = c.guidance_rescale ?? 0
        func path(_ p: String) -> String { Self.root.appendingPathComponent(p).path }
        if let p = c.init_image { r.initImage = try PNGCodec.read(path: path(p)).rgb() }
        if let p = c.mask { r.mask = try PNGCodec.read(path: path(p)).gray() }
        if let p = c.depth_map {
            let png = try PNGCodec.read(path: path(p))
            if case .gray16(let s) = png.pixels {
                r.depthMap = DepthMap(width: png.width, height: png.height, values: s.map { Float($0) / 65535 })
            } else {
                r.depthMap = DepthMap(width: png.width, height: png.height, values: png.gray().pixels.map { Float($0) / 255 })
            }
        }
        return r
    }

    func testEveryModeAndSchedulerMatchesDiffusersWithinTwoLevels() throws {
        let cases = try Self.loadCases()
        XCTAssertGreaterThanOrEqual(cases.count, 40)
        var pipelines: [String: StableDiffusionPipeline] = [:]
        var worst = (name: "", max: 0, mean: 0.0)
        for c in cases {
            let pipe = try pipelines[c.model] ?? StableDiffusionPipeline.load(Self.root.appendingPathComponent("models/\(c.model)"))
            pipelines[c.model] = pipe
            if let ids = c.prompt_ids {
                XCTAssertEqual(Array(pipe.tokenizer.encode(c.prompt).prefix(ids.count)), ids, "\(c.name): token ids")
            }
            let result = try pipe.generate(try Self.request(for: c))
            let expected = try PNGCodec.read(path: Self.root.appendingPathComponent(c.expected).path).rgb()
            XCTAssertEqual(result.image.width, expected.width, "\(c.name): width")
            XCTAssertEqual(result.image.height, expected.height, "\(c.name): height")
            guard result.image.width == expected.width, result.image.height == expected.height else { continue }
            var maxDiff = 0, sum = 0
            for (a, b) in zip(result.image.pixels, expected.pixels) {
                let d = abs(Int(a) - Int(b))
                maxDiff = max(maxDiff, d)
                sum += d
            }
            let mean = Double(sum) / Double(expected.pixels.count)
            print("pipeline \(c.name): max \(maxDiff)/255, mean \(String(format: "%.4f", mean))/255")
            if maxDiff > worst.max || (maxDiff == worst.max && mean > worst.mean) { worst = (c.name, maxDiff, mean) }
            XCTAssertLessThanOrEqual(maxDiff, 2, "\(c.name): a pixel differs by \(maxDiff)/255")
            XCTAssertLessThanOrEqual(mean, 0.5, "\(c.name): mean difference \(mean)/255")
        }
        print("pipeline worst case: \(worst.name) max \(worst.max)/255 mean \(worst.mean)/255")
    }
}
