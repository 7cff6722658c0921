import Foundation
import XCTest
import AtelierKernels
@testable import AtelierModels

/// Loading failures a user can hit, each with its specific error, and the loader's adapters.
final class ModelLoadingTests: XCTestCase {
    var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("atelier-load-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: scratch)
    }

    /// Copies a fixture UNet folder, rewriting its weights through `edit`.
    func unetCopy(editing edit: (inout [(name: String, tensor: Tensor)]) -> Void) throws -> URL {
        let src = Fixtures.url("unet", "inpaint", "unet")
        let dst = scratch.appendingPathComponent("unet")
        try FileManager.default.createDirectory(at: dst, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: src.appendingPathComponent("config.json"), to: dst.appendingPathComponent("config.json"))
        let file = try SafeTensorsFile(url: src.appendingPathComponent("diffusion_pytorch_model.safetensors"))
        var tensors = try file.names.map { (name: $0, tensor: try file.tensor($0).copy()) }
        edit(&tensors)
        try SafeTensorsWriter.write(tensors, to: dst.appendingPathComponent("diffusion_pytorch_model.safetensors"))
        return dst
    }

    func testMissingWeightNamesTheKeyAndTheFile() throws {
        let dir = try unetCopy { $0.removeAll { $0.name == "conv_in.weight" } }
        XCTAssertThrowsError(try StableDiffusionModel.loadUNet(dir)) { error in
            guard case ModelError.missingWeight(let key, let source) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(key, "conv_in.weight")
            XCTAssertTrue(source.hasSuffix("diffusion_pytorch_model.safetensors"))
        }
    }

    func testWeightWithWrongShapeIsAShapeMismatch() throws {
        let dir = try unetCopy { t in
            if let i = t.firstIndex(where: { $0.name == "conv_out.bias" }) { t[i].tensor = Tensor(zeros: [5]) }
        }
        XCTAssertThrowsError(try StableDiffusionModel.loadUNet(dir)) { error in
            guard case ModelError.shapeMismatch(let key, let expected, let found, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(key, "conv_out.bias")
            XCTAssertEqual(expected, [4])
            XCTAssertEqual(found, [5])
        }
    }

    func testUnsupportedUNetFeatureIsRefusedAtLoad() throws {
        let dir = try unetCopy { _ in }
        let cfgURL = dir.appendingPathComponent("config.json")
        var json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: cfgURL)) as? [String: Any])
        json["resnet_time_scale_shift"] = "scale_shift"
        try JSONSerialization.data(withJSONObject: json).write(to: cfgURL)
        XCTAssertThrowsError(try StableDiffusionModel.loadUNet(dir)) { error in
            XCTAssertEqual(error as? ModelError, .unsupported("unet resnet_time_scale_shift 'scale_shift'"))
        }
    }

    func testMissingConfigIsAMissingFile() throws {
        let dir = try unetCopy { _ in }
        try FileManager.default.removeItem(at: dir.appendingPathComponent("config.json"))
        XCTAssertThrowsError(try StableDiffusionModel.loadUNet(dir)) { error in
            guard case ModelError.missingFile(let path) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(path.hasSuffix("config.json"))
        }
    }

    func testMalformedConfigNamesTheFile() throws {
        let dir = try unetCopy { _ in }
        try Data("{\"block_out_channels\": \"wide\"}".utf8).write(to: dir.appendingPathComponent("config.json"))
        XCTAssertThrowsError(try StableDiffusionModel.loadUNet(dir)) { error in
            guard case ModelError.invalidConfig(let file, _) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(file.hasSuffix("config.json"))
        }
    }

    func testFolderWithoutSafetensorsWeightsIsReported() throws {
        let dir = try unetCopy { _ in }
        try FileManager.default.removeItem(at: dir.appendingPathComponent("diffusion_pytorch_model.safetensors"))
        XCTAssertThrowsError(try StableDiffusionModel.loadUNet(dir))
    }

    func testSidecarYAMLGivesPredictionTypeAndHeadChannels() {
        let yaml = """
            model:
              base_learning_rate: 1.0e-4
              target: ldm.models.diffusion.ddpm.LatentDiffusion
              params:
                parameterization: "v"
                scale_factor: 0.18215
                unet_config:
                  target: ldm.modules.diffusionmodules.openaimodel.UNetModel
                  params:
                    num_head_channels: 64 # need to fix for flash-attn
                    use_linear_in_transformer: True
                first_stage_config:
                  params:
                    embed_dim: 4
            """
        let s = SingleFileSidecar.parse(yaml)
        XCTAssertEqual(s.predictionType, "v_prediction")
        XCTAssertEqual(s.numHeadChannels, 64)
        XCTAssertEqual(s.scaleFactor, 0.18215)
    }

    func testSingleFileWithoutSidecarDefaultsToEpsilonAnd64ChannelHeads() throws {
        let copy = scratch.appendingPathComponent("plain.safetensors")
        try FileManager.default.copyItem(at: Fixtures.url("singlefile", "tiny-sd2.safetensors"), to: copy)
        let ckpt = try SingleFileCheckpoint(url: copy)
        XCTAssertNil(ckpt.sidecar)
        XCTAssertEqual(ckpt.predictionType, "epsilon")
        XCTAssertEqual(try ckpt.unetConfig.resolved().heads, [1, 1])  // 32 channels / 64, at least one head
        let withSidecar = try SingleFileCheckpoint(url: Fixtures.url("singlefile", "tiny-sd2.safetensors"))
        XCTAssertEqual(try withSidecar.unetConfig.resolved().heads, [2, 2])
    }

    func testPredictionTypeIsGuessedFromOfficialFileNames() {
        XCTAssertEqual(SingleFileCheckpoint.guessPredictionType(fileName: "v2-1_768-ema-pruned.safetensors"), "v_prediction")
        XCTAssertEqual(SingleFileCheckpoint.guessPredictionType(fileName: "768-v-ema.safetensors"), "v_prediction")
        XCTAssertEqual(SingleFileCheckpoint.guessPredictionType(fileName: "v2-1_512-ema-pruned.safetensors"), "epsilon")
        XCTAssertEqual(SingleFileCheckpoint.guessPredictionType(fileName: "512-base-ema.safetensors"), "epsilon")
        XCTAssertEqual(SingleFileCheckpoint.guessPredictionType(fileName: "my-finetune.safetensors"), "epsilon")
    }

    func testSingleFileWithoutUNetIsRejectedWithAReason() throws {
        let url = scratch.appendingPathComponent("vae-only.safetensors")
        try SafeTensorsWriter.write([(name: "first_stage_model.encoder.conv_in.weight", tensor: Tensor(zeros: [8, 3, 3, 3]))], to: url)
        XCTAssertThrowsError(try StableDiffusionModel.load(url)) { error in
            guard case ModelError.cannotInferConfig = error else { return XCTFail("\(error)") }
        }
    }

    func testLegacyVAEAttentionNamesAreRenamed() throws {
        let src = Fixtures.url("vae", "legacy-attn", "vae", "diffusion_pytorch_model.safetensors")
        let renamed = RenamedWeights.legacyVAEAttention(SafeTensorsWeights(files: [try SafeTensorsFile(url: src)]))
        XCTAssertTrue(renamed.contains("encoder.mid_block.attentions.0.to_q.weight"))
        XCTAssertTrue(renamed.contains("decoder.mid_block.attentions.0.to_out.0.bias"))
        XCTAssertFalse(renamed.contains("encoder.mid_block.attentions.0.query.weight"))
    }

    func testTextEncoderRejectsTokenIdsOutsideItsVocabulary() throws {
        let model = try StableDiffusionModel.loadTextEncoder(Fixtures.url("clip", "h48-l2-b1", "text_encoder"))
        XCTAssertThrowsError(try model([[0, model.config.vocabSize]]))
    }
}

final class ModelHashTests: XCTestCase {
    func testSHA256MatchesKnownVectors() {
        XCTAssertEqual(SHA256.hex([]), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hex(Array("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }
}
