import Foundation
import XCTest
import AtelierKernels
import AtelierModels
@testable import AtelierDiffusion

/// depth2img *without* a depth map: the pipeline runs the folder's DPT estimator as diffusers'
/// `prepare_depth_map` does (Tests/Reference/depth/make_depth_fixtures.py, cases in
/// Tests/Fixtures/depth/pipeline).
final class DepthPipelineTests: XCTestCase {
    struct Case: Decodable {
        let name, prompt, negative_prompt, init_image, expected, debug, model: String
        let seed: UInt64
        let steps: Int
        let guidance, strength: Double
        let scheduler: String?
    }

    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")
    static let depthRoot = fixtures.appendingPathComponent("depth/pipeline")
    static let pipelineRoot = fixtures.appendingPathComponent("pipelines")

    func loadCases() throws -> [Case] {
        try JSONDecoder().decode([Case].self, from: Data(contentsOf: Self.depthRoot.appendingPathComponent("cases.json")))
    }

    func testDepth2ImgWithoutMapMatchesDiffusers() throws {
        let cases = try loadCases()
        XCTAssertGreaterThanOrEqual(cases.count, 1)
        let pipe = try StableDiffusionPipeline.load(Self.pipelineRoot.appendingPathComponent("models/tiny-depth"))
        XCTAssertTrue(pipe.hasDepthEstimator)
        for c in cases {
            var r = GenerationRequest(prompt: c.prompt)
            r.negativePrompt = c.negative_prompt
            r.seed = c.seed
            r.steps = c.steps
            r.guidance = c.guidance
            r.strength = c.strength
            r.scheduler = c.scheduler
            let image = try PNGCodec.read(path: Self.pipelineRoot.appendingPathComponent(c.init_image).path).rgb()
            r.initImage = image
            XCTAssertEqual(try pipe.mode(for: r), .depth2img)

            // The estimator stage alone: processor output and predicted_depth as diffusers saw them.
            let debug = try SafeTensorsFile(url: Self.depthRoot.appendingPathComponent(c.debug))
            let estimator = try pipe.depthEstimator()
            let size = try estimator.inputSize(width: image.width, height: image.height)
            let resized = try ImageResampler.resize(image, width: size.width, height: size.height, filter: .bilinear)
            let pixels = estimator.processor.pixelValues(rgb: resized.pixels, width: size.width, height: size.height)
            XCTAssertEqual(pixels.maxAbsDifference(try debug.tensor("pixel_values")), 0, "\(c.name): DPT pixel values")
            let depth = try estimator.predictedDepth(image)
            let reference = try debug.tensor("predicted_depth")
            XCTAssertEqual(depth.shape, reference.shape)
            let err = depth.maxAbsDifference(reference)
            print("depth \(c.name): predicted_depth max|Δ| = \(err) (max|ref| = \(reference.maxAbs))")
            XCTAssertLessThanOrEqual(err, 1e-4 * max(1, reference.maxAbs), "\(c.name): predicted_depth")

            // The whole render.
            let result = try pipe.generate(r)
            let expected = try PNGCodec.read(path: Self.depthRoot.appendingPathComponent(c.expected).path).rgb()
            XCTAssertEqual(result.image.width, expected.width)
            XCTAssertEqual(result.image.height, expected.height)
            guard result.image.width == expected.width, result.image.height == expected.height else { continue }
            var maxDiff = 0, sum = 0
            for (a, b) in zip(result.image.pixels, expected.pixels) {
                let d = abs(Int(a) - Int(b))
                maxDiff = max(maxDiff, d)
                sum += d
            }
            let mean = Double(sum) / Double(expected.pixels.count)
            print("pipeline \(c.name) (estimated depth): max \(maxDiff)/255, mean \(String(format: "%.4f", mean))/255")
            XCTAssertLessThanOrEqual(maxDiff, 2, "\(c.name): a pixel differs by \(maxDiff)/255")
            XCTAssertLessThanOrEqual(mean, 0.5, "\(c.name): mean difference \(mean)/255")
            XCTAssertEqual(result.parameters.mode, "depth2img")
        }
    }

    /// The DPT processor's PIL bilinear resize (here an upscale, 40×24 → 64²) and normalisation,
    /// against transformers' `DPTImageProcessorPil` output stored with the hybrid-small fixture.
    func testProcessorMatchesTransformers() throws {
        let estimator = try DPTDepthEstimator.load(Self.fixtures.appendingPathComponent("depth/hybrid-small"))
        let image = try PNGCodec.read(path: Self.pipelineRoot.appendingPathComponent("inputs/init_40x24.png").path).rgb()
        let io = try SafeTensorsFile(url: Self.fixtures.appendingPathComponent("depth/hybrid-small/io.safetensors"))
        let size = try estimator.inputSize(width: image.width, height: image.height)
        let resized = try ImageResampler.resize(image, width: size.width, height: size.height, filter: .bilinear)
        let pixels = estimator.processor.pixelValues(rgb: resized.pixels, width: size.width, height: size.height)
        XCTAssertEqual(pixels.maxAbsDifference(try io.tensor("image_pixel_values")), 0)
        let depth = try estimator.predictedDepth(image)
        XCTAssertLessThanOrEqual(depth.maxAbsDifference(try io.tensor("image_predicted_depth")), 1e-4 * 1.7)
    }

    /// A depth model folder without depth_estimator/ still needs --depth-map, and says so.
    func testMissingEstimatorIsAClearError() throws {
        let fm = FileManager.default
        let dir = fm.temporaryDirectory.appendingPathComponent("atelier-depth-\(UUID().uuidString)")
        try fm.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? fm.removeItem(at: dir) }
        let source = Self.pipelineRoot.appendingPathComponent("models/tiny-depth")
        for part in try fm.contentsOfDirectory(atPath: source.path) where part != "depth_estimator" {
            try fm.createSymbolicLink(at: dir.appendingPathComponent(part), withDestinationURL: source.appendingPathComponent(part))
        }
        let pipe = try StableDiffusionPipeline.load(dir)
        XCTAssertFalse(pipe.hasDepthEstimator)
        var r = GenerationRequest(prompt: "x")
        r.initImage = try RGBImage(width: 32, height: 32, red: 10, green: 20, blue: 30)
        XCTAssertThrowsError(try pipe.mode(for: r)) { error in
            XCTAssertTrue("\(error)".contains("--depth-map") && "\(error)".contains("depth_estimator"), "\(error)")
        }
        XCTAssertThrowsError(try pipe.depthEstimator())
        // With a map it renders as before.
        r.depthMap = DepthMap(width: 2, height: 2, values: [0, 1, 1, 0])
        XCTAssertEqual(try pipe.mode(for: r), .depth2img)
    }
}
