import XCTest
@testable import AtelierDiffusion
@testable import AtelierImaging

/// Writing: round trips through our own reader, the chunk types PIL/A1111 would choose, and
/// atomicity (a failed write leaves the destination as it was and no temp files behind).
final class ImagePNGWriteTests: XCTestCase {
    func chunkTypes(_ bytes: [UInt8]) -> [String] {
        var types = [String]()
        var at = 8
        while at + 8 <= bytes.count {
            let length = Int(PNGBytes.readUInt32(bytes, at))
            types.append(String(decoding: bytes[(at + 4)..<(at + 8)], as: UTF8.self))
            at += 12 + length
        }
        return types
    }

    func testRGBRoundTripWithLatin1Text() throws {
        let image = try RGBImage(width: 23, height: 11, pixels: ImageFixtures.noise(width: 23, height: 11, channels: 3, seed: 9))
        let text = [PNGTextChunk(key: "parameters", value: "a café\nSteps: 20, Sampler: DDIM, CFG scale: 7.0, Seed: 1, Size: 23x11"),
                    PNGTextChunk(key: "Software", value: "Atelier")]
        let bytes = try PNGCodec.encode(image, text: text)
        XCTAssertEqual(chunkTypes(bytes).prefix(3), ["IHDR", "tEXt", "tEXt"], "text goes before the image data, as tEXt")
        XCTAssertTrue(bytes.starts(with: PNGCodec.signature))
        let decoded = try PNGCodec.decode(bytes)
        XCTAssertEqual(decoded.rgb(), image)
        guard case .rgb8 = decoded.pixels else { return XCTFail("RGB written as \(decoded.pixels)") }
        XCTAssertEqual(decoded.text, ["parameters": text[0].value, "Software": "Atelier"])
        // Latin-1 is stored as Latin-1 (one byte for é), like PIL's add_text.
        let stored = bytes.firstRange(of: Array("a caf".utf8)).map { bytes[$0.upperBound] }
        XCTAssertEqual(stored, 0xE9)
    }

    func testNonLatin1TextBecomesITXt() throws {
        let image = try RGBImage(width: 2, height: 2, red: 10, green: 20, blue: 30)
        let value = "日本の庭園 🌸, \"quoted\"\nSteps: 20, Sampler: Euler a, CFG scale: 7.5, Seed: 3, Size: 2x2"
        let bytes = try PNGCodec.encode(image, text: [PNGTextChunk(key: "parameters", value: value)])
        XCTAssertTrue(chunkTypes(bytes).contains("iTXt"))
        XCTAssertFalse(chunkTypes(bytes).contains("tEXt"))
        XCTAssertEqual(try PNGCodec.decode(bytes).text["parameters"], value)
    }

    func testGray16RoundTrip() throws {
        var samples = (0..<(19 * 7)).map { UInt16(truncatingIfNeeded: $0 &* 4099) }
        samples[0] = 0; samples[1] = 255; samples[2] = 256; samples[3] = 65535
        let depth = try GrayImage16(width: 19, height: 7, pixels: samples)
        let decoded = try PNGCodec.decode(PNGCodec.encode(depth))
        XCTAssertEqual(decoded.sourceBitDepth, 16)
        XCTAssertEqual(try decoded.gray16(), depth)
    }

    func testGray8RoundTrip() throws {
        let mask = try GrayImage(width: 9, height: 5, pixels: ImageFixtures.noise(width: 9, height: 5, channels: 1, seed: 4))
        let decoded = try PNGCodec.decode(PNGCodec.encode(mask))
        guard case .gray8 = decoded.pixels else { return XCTFail("gray written as \(decoded.pixels)") }
        XCTAssertEqual(decoded.gray(), mask)
    }

    func testWriteWithParametersReadsBack() throws {
        let dir = try ImageFixtures.temporaryDirectory(self)
        let url = dir.appendingPathComponent("out.png")
        let image = try RGBImage(width: 8, height: 8, pixels: ImageFixtures.noise(width: 8, height: 8, channels: 3, seed: 2))
        let params = GenerationParameters(prompt: "a red fox, snow\nsecond line", negativePrompt: "blurry", steps: 20,
                                          sampler: "dpm++2m-karras", cfgScale: 7.5, seed: 42, width: 8, height: 8,
                                          modelName: "sd2-1, base", modelHash: "abcdef1234", strength: 0.8)
        try PNGCodec.write(image, to: url, parameters: params)
        let png = try PNGCodec.read(contentsOf: url)
        XCTAssertEqual(png.rgb(), image)
        XCTAssertEqual(try GenerationParameters.parse(XCTUnwrap(png.parametersText)), params)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["out.png"], "no temp files left")
    }

    func testOverwriteReplacesWholeFile() throws {
        let dir = try ImageFixtures.temporaryDirectory(self)
        let url = dir.appendingPathComponent("out.png")
        try Data(repeating: 0x42, count: 100_000).write(to: url)
        let image = try RGBImage(width: 3, height: 3, red: 1, green: 2, blue: 3)
        try PNGCodec.write(image, to: url)
        XCTAssertEqual(try PNGCodec.read(contentsOf: url).rgb(), image)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["out.png"])
    }

    func testFailedWritesLeaveDestinationUntouched() throws {
        let dir = try ImageFixtures.temporaryDirectory(self)
        let url = dir.appendingPathComponent("keep.png")
        let original = Data("previous contents".utf8)
        try original.write(to: url)
        let image = try RGBImage(width: 3, height: 3, red: 1, green: 2, blue: 3)

        // Encoding fails (invalid keyword): nothing is written.
        XCTAssertThrowsError(try PNGCodec.write(image, to: url, text: [PNGTextChunk(key: "", value: "x")])) { error in
            guard case ImageError.writeFailed(let path, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(path, url.path)
        }
        // A NUL cannot be stored in PNG text.
        XCTAssertThrowsError(try PNGCodec.write(image, to: url, text: [PNGTextChunk(key: "parameters", value: "a\u{0}b")]))
        XCTAssertEqual(try Data(contentsOf: url), original)

        // Missing directory: a typed error that names it.
        let nowhere = dir.appendingPathComponent("missing/out.png")
        XCTAssertThrowsError(try PNGCodec.write(image, to: nowhere)) { error in
            guard case ImageError.writeFailed(_, let reason) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.contains("does not exist"), reason)
        }
        // The destination is a directory: rename fails, the directory survives, the temp file is gone.
        let sub = dir.appendingPathComponent("adir.png")
        try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: false)
        XCTAssertThrowsError(try PNGCodec.write(image, to: sub))
        var isDirectory: ObjCBool = false
        XCTAssertTrue(FileManager.default.fileExists(atPath: sub.path, isDirectory: &isDirectory) && isDirectory.boolValue)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted(), ["adir.png", "keep.png"])
    }

    func testKeywordValidation() throws {
        let image = try RGBImage(width: 1, height: 1, red: 0, green: 0, blue: 0)
        for bad in ["", String(repeating: "k", count: 80), " lead", "trail ", "dou  ble", "ключ", "tab\tkey"] {
            XCTAssertThrowsError(try PNGCodec.encode(image, text: [PNGTextChunk(key: bad, value: "v")]), "keyword \"\(bad)\"") { error in
                guard case ImageError.invalidArgument = error else { return XCTFail("\(error)") }
            }
        }
        XCTAssertNoThrow(try PNGCodec.encode(image, text: [PNGTextChunk(key: "Größe", value: "v")]))
    }

    func testInvalidImageBuffersAreRejected() {
        XCTAssertThrowsError(try RGBImage(width: 2, height: 2, pixels: [1, 2, 3]))
        XCTAssertThrowsError(try RGBImage(width: 0, height: 2, pixels: []))
        XCTAssertThrowsError(try GrayImage(width: 3, height: 1, pixels: [1, 2]))
        XCTAssertThrowsError(try GrayImage16(width: Int.max, height: 2, pixels: []))
    }
}
