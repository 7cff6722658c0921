import Foundation
import XCTest
import AtelierKernels
@testable import AtelierModels

/// Mapped weights a network uses once per job (the text encoder) can leave the resident set
/// between uses and read back unchanged.
final class ResidentWeightPagesTests: XCTestCase {
    var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("atelier-pages-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: scratch)
    }

    /// Resident bytes of this process's mappings of `path` (sum of `Rss:` in /proc/self/smaps).
    func residentBytes(of path: String) throws -> Int {
        // Read to the end: a single read of a /proc file stops after one page.
        let data = try FileHandle(forReadingFrom: URL(fileURLWithPath: "/proc/self/smaps")).readToEnd() ?? Data()
        let smaps = String(decoding: data, as: UTF8.self)
        XCTAssertTrue(smaps.contains("[stack]"), "could not read /proc/self/smaps")
        var total = 0, inside = false
        for line in smaps.split(separator: "\n") {
            let head = line.prefix { $0 != " " }
            if head.contains("-"), head.allSatisfy({ $0.isHexDigit || $0 == "-" }) {
                inside = line.hasSuffix(path)
            } else if inside, line.hasPrefix("Rss:") {
                total += (line.split(separator: " ").compactMap { Int($0) }.first ?? 0) * 1024
            }
        }
        return total
    }

    func testReleasedPagesLeaveTheResidentSetAndReadBackUnchanged() throws {
        #if os(Linux)
        let url = scratch.appendingPathComponent("w.safetensors")
        let values = (0..<(1 << 20)).map { Float($0 % 977) * 0.25 - 7 }
        try SafeTensorsWriter.write([(name: "w", tensor: Tensor(shape: [1 << 20], values: values))], to: url)
        let file = try SafeTensorsFile(url: url)
        let t = try file.tensor("w")
        XCTAssertTrue(file.isMapped(t))
        XCTAssertEqual(t.scalars, values)
        XCTAssertGreaterThanOrEqual(try residentBytes(of: url.path), 4 << 20, "reading 4 MiB of mapped floats made them resident")
        file.releaseResidentPages()
        XCTAssertLessThan(try residentBytes(of: url.path), 64 << 10, "the released mapping is still resident")
        XCTAssertEqual(t.scalars, values, "the mapping reads back different values after the release")
        XCTAssertGreaterThanOrEqual(try residentBytes(of: url.path), 4 << 20)
        #endif
    }

    /// A folder whose text encoder is stored as F32 keeps its file for release; the encoder gives
    /// the same embeddings after its pages were dropped. An F16 text encoder (converted at load)
    /// keeps nothing mapped.
    func testTextEncoderPagesAreReleasedWithoutChangingItsOutput() throws {
        let fixture = Fixtures.url("pipelines", "models", "tiny-base")
        let f16 = try StableDiffusionModel.openTextEncoder(fixture.appendingPathComponent("text_encoder"))
        XCTAssertEqual(f16.files.count, 0, "an F16 text encoder's file is converted, not used in place")

        let dir = scratch.appendingPathComponent("text_encoder")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: fixture.appendingPathComponent("text_encoder/config.json"),
                                         to: dir.appendingPathComponent("config.json"))
        let src = try SafeTensorsFile(url: fixture.appendingPathComponent("text_encoder/model.safetensors"))
        try SafeTensorsWriter.write(try src.names.map { (name: $0, tensor: try src.tensor($0).copy()) },
                                    to: dir.appendingPathComponent("model.safetensors"))
        let f32 = try StableDiffusionModel.openTextEncoder(dir)
        XCTAssertEqual(f32.files.count, 1)
        let model = StableDiffusionModel(location: scratch, format: .diffusersFolder, textEncoder: f32.model,
                                         unet: try StableDiffusionModel.loadUNet(fixture.appendingPathComponent("unet")),
                                         vae: try StableDiffusionModel.loadVAE(fixture.appendingPathComponent("vae")),
                                         textEncoderFiles: f32.files)
        let ids = [[912, 320, 816, 531, 0, 913] + Array(repeating: 0, count: 71)]
        let before = try model.textEncoder(ids)
        #if os(Linux)
        let path = dir.appendingPathComponent("model.safetensors").path
        XCTAssertGreaterThan(try residentBytes(of: path), 0, "the encoder ran on its mapped weights")
        model.releaseTextEncoderPages()
        XCTAssertEqual(try residentBytes(of: path), 0)
        #endif
        XCTAssertEqual(try model.textEncoder(ids).scalars, before.scalars)
    }

    /// In bf16 mode each mapped fp32 layer weight is rounded and its pages are dropped at once,
    /// weight by weight, so loading a bf16 UNet never holds the whole fp32 file resident (peak
    /// RSS 4.87 GiB without this, 1.72 GiB with it, for the SD2 UNet). In fp32 mode the mapped
    /// weight is used in place and stays.
    func testBF16LayerWeightsDropTheirMappedFP32PagesAsTheyAreRounded() throws {
        #if os(Linux)
        let url = scratch.appendingPathComponent("layers.safetensors")
        let values = (0..<(1024 * 1024)).map { Float($0 % 613) * 0.125 - 3 }
        try SafeTensorsWriter.write([(name: "a.weight", tensor: Tensor(shape: [1024, 1024], values: values)),
                                     (name: "b.weight", tensor: Tensor(shape: [1024, 1024], values: values))], to: url)
        let source = SafeTensorsWeights(files: [try SafeTensorsFile(url: url)])

        let fp32 = try Weights(source, precision: .fp32).loadLayerWeight("a.weight", shape: [1024, 1024])
        guard case .fp32(let mapped) = fp32 else { return XCTFail("fp32 mode gave a bf16 weight") }
        XCTAssertEqual(mapped.scalars.count, values.count)  // touch every page
        XCTAssertGreaterThanOrEqual(try residentBytes(of: url.path), 4 << 20, "the fp32 weight is used in place")

        let bf16 = try Weights(source, precision: .bf16).loadLayerWeight("b.weight", shape: [1024, 1024])
        guard case .bf16(let rounded) = bf16 else { return XCTFail("bf16 mode gave an fp32 weight") }
        XCTAssertEqual(rounded.shape, [1024, 1024])
        let resident = try residentBytes(of: url.path)
        // a.weight's 4 MiB are still in use; b.weight's 4 MiB, just read to round them, are gone.
        XCTAssertLessThan(resident, (4 << 20) + (64 << 10), "b.weight's fp32 pages stayed resident after rounding")
        let expected = BF16Tensor(rounding: Tensor(shape: [1024, 1024], values: values))
        XCTAssertEqual(Array(UnsafeBufferPointer(start: rounded.pointer, count: rounded.count)),
                       Array(UnsafeBufferPointer(start: expected.pointer, count: expected.count)),
                       "the rounded weight is the rounding of the file's values")
        #endif
    }
}
