import Foundation
import XCTest
import AtelierKernels
@testable import AtelierModels

/// DPT-Hybrid (SD2-depth's MiDaS estimator) against transformers on random-weight models
/// (Tests/Reference/depth/make_depth_fixtures.py): small configs committed under
/// Tests/Fixtures/depth, the real-shape model in .models/ when it has been generated.
final class DepthEstimatorTests: XCTestCase {
    static let smallConfigs = ["hybrid-small", "hybrid-odd", "hybrid-nopad"]

    func testSmallConfigsMatchTransformers() throws {
        for name in Self.smallConfigs {
            let estimator = try DPTDepthEstimator.load(Fixtures.url("depth", name))
            let model = estimator.model
            let io = try Fixtures.io("depth", name)
            let pixels = try io.tensor("pixel_values")

            // Stage by stage first, so a failure says where.
            let maps = model.embeddings.backbone(pixels)
            for i in 0..<3 { assertParity(maps[i], try io.tensor("feature_maps.\(i)"), "depth/\(name) BiT map \(i)") }
            let (tokens, _) = model.embeddings(pixels)
            assertParity(tokens, try io.tensor("embeddings"), "depth/\(name) embeddings")
            let hidden = model.encoder(tokens)
            for (j, h) in hidden.enumerated() {
                assertParity(h, try io.tensor("neck_inputs.\(j + 2)"), "depth/\(name) ViT layer \(model.config.neckLayerIndices[j])")
            }

            let depth = try model.predict(pixels)
            let reference = try io.tensor("predicted_depth")
            XCTAssertEqual(depth.shape[1], model.outputSide, "\(name): outputSide")
            assertParity(depth, reference, "depth/\(name) predicted_depth")
            if io.contains("image_predicted_depth") {
                assertParity(try model.predict(try io.tensor("image_pixel_values")), try io.tensor("image_predicted_depth"),
                             "depth/\(name) predicted_depth of a processed PNG")
            }
        }
    }

    /// A batch is the images one by one (nothing mixes across the batch axis).
    func testBatchesAreIndependent() throws {
        let model = try DPTForDepthEstimation.load(Fixtures.url("depth", "hybrid-odd"))
        let pixels = try Fixtures.io("depth", "hybrid-odd").tensor("pixel_values")
        let other = Elementwise.scale(pixels, -0.5)
        let both = try model.predict(Elementwise.concatBatch([pixels, other]))
        XCTAssertEqual(both.shape, [2, 64, 64])
        XCTAssertLessThanOrEqual(both.slice(0).maxAbsDifference(try model.predict(pixels)), 1e-5)
        XCTAssertLessThanOrEqual(both.slice(1).maxAbsDifference(try model.predict(other)), 1e-5)
    }

    /// The SD2 geometry quirks the small configs are built to hit.
    func testConfigDrivenDetails() throws {
        let odd = try ConfigFile.load(DPTConfig.self, from: Fixtures.url("depth", "hybrid-odd", "config.json"))
        XCTAssertEqual(odd.backboneOutIndices, [5, 5, 1, 0])
        XCTAssertEqual(odd.neckLayerIndices, [0, 1], "ViT layers feed the neck in layer order, whatever the list order")
        XCTAssertTrue(odd.useBatchNormInFusionResidual)
        XCTAssertFalse(odd.fusionResidualBias)
        XCTAssertEqual(BitConfig.makeDivisible(40 * 0.25), 16)
        XCTAssertEqual(BitConfig.makeDivisible(1024 * 0.25), 256)
        XCTAssertEqual(BitConfig.makeDivisible(2), 8)

        // "SAME": stride-2 convs pad dynamically, the odd pixel after.
        XCTAssertEqual(BitPaddingPolicy.same.rule(kernel: 7, stride: 2).padding(height: 384, width: 384),
                       Padding2D(top: 2, left: 2, bottom: 3, right: 3))
        XCTAssertEqual(BitPaddingPolicy.same.rule(kernel: 3, stride: 2).padding(height: 96, width: 95),
                       Padding2D(top: 0, left: 1, bottom: 1, right: 1))
        XCTAssertEqual(BitPaddingPolicy.same.rule(kernel: 3, stride: 1), .fixed(.symmetric(1)))
        XCTAssertEqual(BitPaddingPolicy.symmetric.rule(kernel: 7, stride: 2), .fixed(.symmetric(3)))

        let nopad = try DPTForDepthEstimation.load(Fixtures.url("depth", "hybrid-nopad"))
        XCTAssertEqual(nopad.outputSide, 16, "head_in_index 2 reads the third fusion output")
        let small = try DPTForDepthEstimation.load(Fixtures.url("depth", "hybrid-small"))
        XCTAssertEqual(small.outputSide, 64)
        XCTAssertEqual(try small.embeddings.backbone.featureSides(inputSide: 64), [16, 8, 4])
    }

    /// The estimator shipped in the tiny SD2-depth pipeline folder loads through the pipeline layout.
    func testLoadsFromAnSD2DepthFolder() throws {
        let folder = Fixtures.root.appendingPathComponent("pipelines/models/tiny-depth")
        let estimator = try DPTDepthEstimator.load(folder)
        XCTAssertEqual(estimator.folder.lastPathComponent, "depth_estimator")
        XCTAssertEqual(estimator.model.inputSide, 32)
        XCTAssertEqual(estimator.processor.height, 32)
        XCTAssertEqual(estimator.processor.resampleFilterName, "bilinear")
        XCTAssertEqual(estimator.model.config.neckLayerIndices, [0, 1])
        XCTAssertEqual(try estimator.inputSize(width: 40, height: 24).width, 32)
        // The same estimator addressed as depth_estimator/ finds ../feature_extractor.
        let direct = try DPTDepthEstimator.load(folder.appendingPathComponent("depth_estimator"))
        XCTAssertEqual(direct.processor, estimator.processor)
    }

    func testErrorsNameTheProblem() throws {
        // No estimator in an SD2 folder without depth_estimator/.
        let base = Fixtures.root.appendingPathComponent("pipelines/models/tiny-base")
        XCTAssertNil(DPTDepthEstimator.estimatorFolder(in: base))
        XCTAssertThrowsError(try DPTDepthEstimator.load(base)) { error in
            XCTAssertTrue("\(error)".contains("depth_estimator"), "\(error)")
        }
        // Wrong input size: an error, not a crash.
        let model = try DPTForDepthEstimation.load(Fixtures.url("depth", "hybrid-small"))
        XCTAssertThrowsError(try model.predict(Tensor(zeros: [1, 3, 32, 32]))) { error in
            XCTAssertTrue("\(error)".contains("64"), "\(error)")
        }
        // Configs this port does not build are refused up front.
        var config = model.config
        config.isHybrid = false
        XCTAssertThrowsError(try config.validate(file: "x/config.json")) { XCTAssertTrue("\($0)".contains("hybrid"), "\($0)") }
        config = model.config
        config.backboneConfig?.layerType = "preactivation"
        XCTAssertThrowsError(try config.validate(file: "x/config.json")) { XCTAssertTrue("\($0)".contains("preactivation"), "\($0)") }
        config = model.config
        config.neckHiddenSizes = [16, 32, 32]
        XCTAssertThrowsError(try config.validate(file: "x/config.json")) { XCTAssertTrue("\($0)".contains("neck_hidden_sizes"), "\($0)") }
        config = model.config
        config.imageSize = .all(40)  // 40/16 = 2 tokens a side, but BiT's last map is 3×3
        let weights = try SafeTensorsWeights(urls: [Fixtures.url("depth", "hybrid-small", "model.safetensors")])
        XCTAssertThrowsError(try DPTForDepthEstimation(config: config, weights: weights)) { XCTAssertTrue("\($0)".contains("grid") || "\($0)".contains("position"), "\($0)") }
    }

    func testProcessorConfigArithmetic() throws {
        var p = DPTImageProcessorConfig.sd2Depth(side: 384)
        XCTAssertTrue(p.resizedSize(width: 640, height: 480) == (384, 384))
        p.keepAspectRatio = true
        p.ensureMultipleOf = 32
        // Scale as little as possible: 384/480 = 0.8 is closer to 1 than 384/640 = 0.6.
        XCTAssertTrue(p.resizedSize(width: 640, height: 480) == (512, 384))
        let px = DPTImageProcessorConfig.sd2Depth(side: 1).pixelValues(rgb: [0, 128, 255], width: 1, height: 1)
        XCTAssertEqual(px.scalars, [-1, Float(Float(128.0 / 255.0) - 0.5) / 0.5, 1])
    }

    /// The full-size SD2-depth shapes (122M parameters), generated with
    /// `make_depth_fixtures.py --real` into the git-ignored .models/; skipped when absent.
    func testRealShapeModelMatchesTransformers() throws {
        let root = Fixtures.root.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(".models/dpt-hybrid-random")
        guard FileManager.default.fileExists(atPath: root.appendingPathComponent("io.safetensors").path) else {
            throw XCTSkip("no \(root.path); run Tests/Reference/depth/make_depth_fixtures.py --real")
        }
        let estimator = try DPTDepthEstimator.load(root)
        XCTAssertEqual(estimator.model.parameterCount, 122_377_985, "transformers counts 122,377,985 parameters")
        let io = try SafeTensorsFile(url: root.appendingPathComponent("io.safetensors"))
        let start = Date()
        let depth = try estimator.model.predict(try io.tensor("pixel_values"))
        print("real-shape DPT-Hybrid 384² estimate: \(String(format: "%.2f", Date().timeIntervalSince(start))) s")
        assertParity(depth, try io.tensor("predicted_depth"), "depth/real-shape predicted_depth")
    }
}
