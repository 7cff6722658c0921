import AtelierKernels
@testable import AtelierModels
import Foundation
import XCTest

/// Format detection: safetensors and diffusers folders are accepted, pickles refused with advice.
final class CheckpointFormatTests: XCTestCase {
    private var scratch: SafeTensorsScratch!

    override func setUpWithError() throws { scratch = try SafeTensorsScratch() }
    override func tearDown() { scratch.remove() }

    private func makeFolder(_ name: String, files: [String]) throws -> URL {
        let folder = scratch.url(name)
        for file in files {
            let url = folder.appendingPathComponent(file)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data("{}".utf8).write(to: url)
        }
        return folder
    }

    private func assertPickleRefused(_ url: URL, evidence: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try CheckpointFormat.detect(url: url), file: file, line: line) { error in
            guard case .pickleCheckpoint(url.path, let found)? = error as? CheckpointFormatError else {
                return XCTFail("expected pickleCheckpoint, got \(error)", file: file, line: line)
            }
            XCTAssertTrue(found.contains(evidence), found, file: file, line: line)
            let message = "\(error)"
            XCTAssertTrue(message.hasPrefix(url.path + ": refusing"), message, file: file, line: line)
            XCTAssertTrue(message.contains("python -c \"import torch, safetensors.torch as st;"), message, file: file, line: line)
            XCTAssertTrue(message.contains("weights_only=True"), message, file: file, line: line)
            XCTAssertTrue(message.contains("from_single_file"), message, file: file, line: line)
        }
    }

    // MARK: - Accepted

    func testSafetensorsFileIsDetected() throws {
        let url = scratch.url("model.safetensors")
        try SafeTensorsWriter.write([("x", Tensor(zeros: [1]))], to: url)
        XCTAssertEqual(try CheckpointFormat.detect(url: url), .safetensors)
    }

    func testSafetensorsContentIsDetectedWhateverTheExtension() throws {
        let url = scratch.url("model.bin")
        try SafeTensorsWriter.write([("x", Tensor(zeros: [1]))], to: url)
        XCTAssertEqual(try CheckpointFormat.detect(url: url), .safetensors)
    }

    func testDamagedSafetensorsFileIsLeftForTheReaderToDiagnose() throws {
        let url = try scratch.craft(header: "{}", declaredLength: 1 << 40, name: "truncated.safetensors")
        XCTAssertEqual(try CheckpointFormat.detect(url: url), .safetensors)
        XCTAssertThrowsError(try SafeTensorsFile(url: url)) { error in
            guard case .headerPastEnd? = error as? SafeTensorsError else { return XCTFail("got \(error)") }
        }
    }

    func testDiffusersPipelineFolderIsDetected() throws {
        let folder = try makeFolder("sd2", files: ["model_index.json", "unet/config.json",
                                                   "unet/diffusion_pytorch_model.safetensors", "vae/config.json",
                                                   "vae/diffusion_pytorch_model.safetensors", "tokenizer/vocab.json"])
        XCTAssertEqual(try CheckpointFormat.detect(url: folder), .diffusersFolder)
    }

    func testSingleComponentFolderWithConfigIsDetected() throws {
        let folder = try makeFolder("unet", files: ["config.json", "diffusion_pytorch_model.safetensors"])
        XCTAssertEqual(try CheckpointFormat.detect(url: folder), .diffusersFolder)
    }

    func testFolderWithBothPickleAndSafetensorsWeightsIsAccepted() throws {
        let folder = try makeFolder("both", files: ["model_index.json", "unet/config.json",
                                                    "unet/diffusion_pytorch_model.bin",
                                                    "unet/diffusion_pytorch_model.safetensors"])
        XCTAssertEqual(try CheckpointFormat.detect(url: folder), .diffusersFolder)
    }

    // MARK: - Refused

    func testCkptFileIsRefusedWithConversionInstructions() throws {
        // A legacy torch.save pickle: protocol 2 header.
        let url = try scratch.write([0x80, 0x02, 0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20], to: "sd-v2.ckpt")
        assertPickleRefused(url, evidence: "pickle")
        XCTAssertThrowsError(try CheckpointFormat.detect(url: url)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("torch.load('\(url.path)', map_location='cpu', weights_only=True)"), text)
            XCTAssertTrue(text.contains("'\(scratch.url("sd-v2.safetensors").path)'"), text)
        }
    }

    func testFilesWithPickleExtensionsAreRefusedEvenWithUnrecognisedContent() throws {
        for ext in ["ckpt", "bin", "pt", "pth", "CKPT"] {
            let url = try scratch.write(Array("not really a pickle".utf8), to: "weights.\(ext)")
            assertPickleRefused(url, evidence: "extension")
        }
    }

    func testZipArchiveNamedSafetensorsIsRefusedAsAPickle() throws {
        let url = try scratch.write([0x50, 0x4B, 0x03, 0x04, 0x14, 0x00, 0x00, 0x08, 0x08, 0x00, 0x00], to: "model.safetensors")
        assertPickleRefused(url, evidence: "zip archive")
    }

    func testPickleNamedSafetensorsIsRefused() throws {
        let url = try scratch.write([0x80, 0x04, 0x95, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00], to: "renamed.safetensors")
        assertPickleRefused(url, evidence: "pickle header")
    }

    func testDiffusersFolderWithOnlyPickleWeightsIsRefused() throws {
        let folder = try makeFolder("old", files: ["model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.bin",
                                                   "vae/config.json", "vae/diffusion_pytorch_model.safetensors"])
        XCTAssertThrowsError(try CheckpointFormat.detect(url: folder)) { error in
            XCTAssertEqual(error as? CheckpointFormatError,
                           .pickleWeightsInFolder(path: folder.path,
                                                  files: [folder.appendingPathComponent("unet/diffusion_pytorch_model.bin").path]))
            let message = "\(error)"
            XCTAssertTrue(message.contains("save_pretrained"), message)
            XCTAssertTrue(message.contains("safe_serialization=True"), message)
        }
    }

    func testMissingPathIsReportedByName() throws {
        let url = scratch.url("does-not-exist.safetensors")
        XCTAssertThrowsError(try CheckpointFormat.detect(url: url)) { error in
            XCTAssertEqual(error as? CheckpointFormatError, .notFound(path: url.path))
            XCTAssertTrue("\(error)".hasPrefix(url.path + ": no such file"))
        }
    }

    func testFolderWithoutModelIndexOrConfigIsUnrecognised() throws {
        let folder = try makeFolder("random", files: ["notes.txt"])
        XCTAssertThrowsError(try CheckpointFormat.detect(url: folder)) { error in
            guard case .unrecognized(folder.path, _)? = error as? CheckpointFormatError else { return XCTFail("got \(error)") }
        }
    }

    func testUnrelatedFileIsUnrecognised() throws {
        let url = try scratch.write(Array("hello".utf8), to: "readme.txt")
        XCTAssertThrowsError(try CheckpointFormat.detect(url: url)) { error in
            guard case .unrecognized(url.path, _)? = error as? CheckpointFormatError else { return XCTFail("got \(error)") }
        }
    }

    func testConversionCommandEscapesQuotesInPaths() {
        let command = CheckpointFormatError.conversionOneLiner(input: "/m/it's \"x\" $HOME.ckpt", output: "/o.safetensors")
        XCTAssertTrue(command.contains(#"torch.load('/m/it\'s \"x\" \$HOME.ckpt'"#), command)
    }
}
