import AtelierKernels
@testable import AtelierModels
import Foundation
import XCTest

/// The VAE scaling factor of a single-file checkpoint is decided by model type, as diffusers'
/// `from_single_file` decides it — not guessed from the VAE's level count.
final class SingleFileScalingFactorTests: XCTestCase {
    var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("atelier-scale-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: scratch) }

    /// The tiny SD2 single file (2 VAE levels), edited by `edit`, written without a sidecar
    /// unless `yaml` is given.
    private func checkpoint(named name: String, yaml: String? = nil,
                            editing edit: (inout [(name: String, tensor: Tensor)]) -> Void) throws -> SingleFileCheckpoint {
        let file = try SafeTensorsFile(url: Fixtures.url("singlefile", "tiny-sd2.safetensors"))
        var tensors = try file.names.map { (name: $0, tensor: try file.tensor($0).copy()) }
        edit(&tensors)
        let url = scratch.appendingPathComponent("\(name).safetensors")
        try SafeTensorsWriter.write(tensors, to: url)
        if let yaml { try Data(yaml.utf8).write(to: scratch.appendingPathComponent("\(name).yaml")) }
        return try SingleFileCheckpoint(url: url)
    }

    /// Adds a third VAE encoder level (what config inference counts).
    private func addThirdVAELevel(_ t: inout [(name: String, tensor: Tensor)]) {
        let conv = t.first { $0.name == "first_stage_model.encoder.down.1.block.0.conv1.weight" }!.tensor
        t.append((name: "first_stage_model.encoder.down.2.block.0.conv1.weight", tensor: Tensor(zeros: conv.shape)))
    }

    func testThreeLevelVAEInATextToImageFileGetsTheSD2Factor() throws {
        let ckpt = try checkpoint(named: "three-level", editing: addThirdVAELevel)
        XCTAssertEqual(ckpt.vaeConfig.blockOutChannels.count, 3)
        XCTAssertEqual(ckpt.unetConfig.inChannels, 4)
        XCTAssertEqual(ckpt.vaeConfig.scalingFactor, 0.18215)
    }

    func testTwoLevelVAEInATextToImageFileGetsTheSD2Factor() throws {
        let ckpt = try checkpoint(named: "plain") { _ in }
        XCTAssertEqual(ckpt.vaeConfig.scalingFactor, 0.18215)
    }

    func testX4UpscalerFileGetsTheUpscalerFactorWhateverItsVAEOrSidecarSays() throws {
        func sevenChannels(_ t: inout [(name: String, tensor: Tensor)]) {
            let i = t.firstIndex { $0.name == "model.diffusion_model.input_blocks.0.0.weight" }!
            let s = t[i].tensor.shape
            t[i].tensor = Tensor(zeros: [s[0], 7, s[2], s[3]])
        }
        XCTAssertEqual(try checkpoint(named: "x4", editing: sevenChannels).vaeConfig.scalingFactor, 0.08333)
        let x4Stated = try checkpoint(named: "x4-yaml", yaml: "model:\n  params:\n    scale_factor: 0.18215\n") {
            sevenChannels(&$0); addThirdVAELevel(&$0)
        }
        XCTAssertEqual(x4Stated.vaeConfig.scalingFactor, 0.08333)
    }

    func testSidecarScaleFactorIsUsedForTextToImageFiles() throws {
        let yaml = "model:\n  params:\n    parameterization: \"eps\"\n    scale_factor: 0.13025\n"
        let ckpt = try checkpoint(named: "stated", yaml: yaml, editing: addThirdVAELevel)
        XCTAssertEqual(ckpt.vaeConfig.scalingFactor, 0.13025)
        let noFactor = try checkpoint(named: "unstated", yaml: "model:\n  params:\n    parameterization: \"eps\"\n") { _ in }
        XCTAssertEqual(noFactor.vaeConfig.scalingFactor, 0.18215)
    }

    func testNonPositiveSidecarScaleFactorIsATypedError() throws {
        XCTAssertThrowsError(try checkpoint(named: "zero", yaml: "model:\n  params:\n    scale_factor: 0\n") { _ in }) { error in
            guard case ModelError.cannotInferConfig(let reason)? = error as? ModelError else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.contains("scale_factor"), reason)
        }
    }
}
