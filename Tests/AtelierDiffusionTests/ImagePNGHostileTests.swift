import XCTest
@testable import AtelierDiffusion
@testable import AtelierImaging

/// Hostile and broken inputs: every one must come back as a typed `ImageError` naming the file,
/// never a crash (libpng's longjmp stays inside the C shim).
final class ImagePNGHostileTests: XCTestCase {
    var valid: [UInt8] = []

    override func setUpWithError() throws {
        valid = try [UInt8](Data(contentsOf: ImageFixtures.url("png/rgb8.png")))
    }

    /// Decodes and returns the error, failing the test if decoding succeeds.
    func decodeError(_ bytes: [UInt8], _ label: String, file: StaticString = #filePath, line: UInt = #line) -> ImageError? {
        do {
            _ = try PNGCodec.decode(bytes, source: "hostile.png")
            XCTFail("\(label): decoding succeeded", file: file, line: line)
            return nil
        } catch let error as ImageError {
            XCTAssertTrue(error.description.contains("hostile.png"), "\(label): \(error)", file: file, line: line)
            return error
        } catch {
            XCTFail("\(label): untyped error \(error)", file: file, line: line)
            return nil
        }
    }

    // MARK: Not PNG at all

    func testZeroByteFile() {
        guard case .notPNG(_, let detected)? = decodeError([], "empty") else { return XCTFail("empty") }
        XCTAssertEqual(detected, "an empty file")
    }

    func testJPEGSignature() {
        let jpeg: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10] + Array("JFIF".utf8) + [UInt8](repeating: 0, count: 40)
        guard case .notPNG(_, let detected)? = decodeError(jpeg, "jpeg") else { return XCTFail("jpeg") }
        XCTAssertEqual(detected, "a JPEG image")
        XCTAssertTrue(ImageError.notPNG(path: "x.jpg", detectedFormat: detected).description.contains("JPEG"))
    }

    func testLineEndingDamagedSignature() {
        var damaged = valid
        damaged.remove(at: 4)  // "\r\n" → "\n", as a text-mode transfer does
        guard case .notPNG(_, let detected)? = decodeError(damaged, "crlf") else { return XCTFail("crlf") }
        XCTAssertTrue(detected?.contains("signature was damaged") ?? false)
    }

    func testRandomBytes() {
        var state: UInt64 = 0x1234_5678
        for trial in 0..<200 {
            let count = trial % 50 == 0 ? 4096 : Int(state % 300)
            var bytes = [UInt8]()
            for _ in 0..<count {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                bytes.append(UInt8(truncatingIfNeeded: state >> 56))
            }
            _ = decodeError(bytes, "random #\(trial)")
            // The same garbage behind a valid signature reaches libpng.
            let error = decodeError(PNGCodec.signature + bytes, "signature + random #\(trial)")
            switch error {
            case .truncated?, .corrupt?, .unsupportedFormat?, .tooLarge?: break
            default: XCTFail("signature + random #\(trial): \(String(describing: error))")
            }
        }
    }

    // MARK: Truncated and corrupt PNGs

    func testEveryTruncation() throws {
        let withText = try [UInt8](Data(contentsOf: ImageFixtures.url("png/text_utf8.png")))
        for source in [valid, withText] {
            for length in 0..<source.count {
                let error = decodeError(Array(source[0..<length]), "prefix \(length)/\(source.count)")
                if length < 8 {
                    guard case .notPNG? = error else { return XCTFail("prefix \(length): \(String(describing: error))") }
                } else {
                    switch error {
                    case .truncated?, .corrupt?: break
                    default: XCTFail("prefix \(length): \(String(describing: error))")
                    }
                }
            }
        }
        // Cut inside the image data: the message says truncated, not corrupt.
        guard case .truncated? = decodeError(Array(valid[0..<(valid.count / 2)]), "half") else { return XCTFail("half") }
    }

    func testBadCRCInImageData() throws {
        let idat = try XCTUnwrap(PNGBytes.chunkOffset(valid, type: "IDAT"))
        let length = Int(PNGBytes.readUInt32(valid, idat))
        // The stored CRC is wrong, the data intact.
        var badCRC = valid
        badCRC[idat + 8 + length] ^= 0x55
        guard case .corrupt(_, let detail)? = decodeError(badCRC, "IDAT CRC") else { return XCTFail("IDAT CRC") }
        XCTAssertTrue(detail.lowercased().contains("crc"), detail)
        // A data byte flipped: libpng inflates before it reaches the CRC, so zlib may object first.
        var badData = valid
        badData[idat + 8 + 3] ^= 0x55
        guard case .corrupt? = decodeError(badData, "IDAT data") else { return XCTFail("IDAT data") }
    }

    func testBadCRCInHeader() throws {
        var bytes = valid
        bytes[8 + 8 + 13] ^= 0x01  // IHDR's CRC
        guard case .corrupt? = decodeError(bytes, "IHDR CRC") else { return XCTFail("IHDR CRC") }
    }

    func testBrokenCompressedStreamWithValidCRC() throws {
        let idat = try XCTUnwrap(PNGBytes.chunkOffset(valid, type: "IDAT"))
        let length = Int(PNGBytes.readUInt32(valid, idat))
        let garbage = [UInt8](repeating: 0xA5, count: length)
        let bytes = Array(valid[0..<idat]) + PNGBytes.chunk("IDAT", garbage) + Array(valid[(idat + 12 + length)...])
        guard case .corrupt? = decodeError(bytes, "zlib garbage") else { return XCTFail("zlib garbage") }
    }

    func testHugeDimensionsAreRefusedBeforeAllocation() {
        let ihdr = PNGBytes.ihdr(width: 100_000, height: 100_000, bitDepth: 8, colorType: 2)
        let bytes = PNGCodec.signature + ihdr + PNGBytes.chunk("IDAT", [0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])
            + PNGBytes.chunk("IEND", [])
        guard case .tooLarge(_, let w, let h, _)? = decodeError(bytes, "huge") else { return XCTFail("huge") }
        XCTAssertEqual(w, 100_000)
        XCTAssertEqual(h, 100_000)
        XCTAssertThrowsError(try PNGCodec.decode(valid, source: "small-limit.png",
                                                 limits: PNGReadLimits(maxDimension: 8, maxPixels: 1000)))
    }

    func testInvalidHeaderFields() {
        let badDepth = PNGCodec.signature + PNGBytes.ihdr(width: 4, height: 4, bitDepth: 3, colorType: 2)
            + PNGBytes.chunk("IEND", [])
        guard case .corrupt? = decodeError(badDepth, "bit depth 3") else { return XCTFail("bit depth 3") }
        let zeroWidth = PNGCodec.signature + PNGBytes.ihdr(width: 0, height: 4, bitDepth: 8, colorType: 2)
            + PNGBytes.chunk("IEND", [])
        guard case .corrupt? = decodeError(zeroWidth, "zero width") else { return XCTFail("zero width") }
    }

    func testMissingImageData() {
        let bytes = PNGCodec.signature + PNGBytes.ihdr(width: 4, height: 4, bitDepth: 8, colorType: 2)
            + PNGBytes.chunk("IEND", [])
        switch decodeError(bytes, "no IDAT") {
        case .corrupt?, .truncated?: break
        case let other: XCTFail("no IDAT: \(String(describing: other))")
        }
    }

    func testOversizedChunkLength() throws {
        // A tEXt chunk claiming 2 GB right after IHDR.
        let ihdrEnd = 8 + 25
        var bytes = Array(valid[0..<ihdrEnd])
        bytes += [0x7F, 0xFF, 0xFF, 0xF0] + Array("tEXt".utf8) + Array("key\0value".utf8)
        switch decodeError(bytes, "2 GB chunk") {
        case .corrupt?, .truncated?: break
        case let other: XCTFail("2 GB chunk: \(String(describing: other))")
        }
    }

    func testBadCRCInTextChunkDropsOnlyThatChunk() throws {
        // libpng's default for ancillary chunks: discard with a warning, keep the image (PIL would
        // refuse the file; losing a text chunk is the friendlier failure for an input image).
        var bytes = try [UInt8](Data(contentsOf: ImageFixtures.url("png/text_latin1.png")))
        let text = try XCTUnwrap(PNGBytes.chunkOffset(bytes, type: "tEXt"))
        bytes[text + 8] ^= 0x20
        let png = try PNGCodec.decode(bytes, source: "text-crc.png")
        XCTAssertEqual(png.width, 13)
        XCTAssertEqual(png.text.count, 1)
    }

    // MARK: Files

    func testMissingFileAndDirectory() throws {
        let dir = try ImageFixtures.temporaryDirectory(self)
        let missing = dir.appendingPathComponent("nope.png")
        XCTAssertThrowsError(try PNGCodec.read(contentsOf: missing)) { error in
            XCTAssertEqual(error as? ImageError, .fileNotFound(path: missing.path))
            XCTAssertTrue("\(error)".contains("nope.png"))
        }
        XCTAssertThrowsError(try PNGCodec.read(contentsOf: dir)) { error in
            guard case ImageError.unreadable(let path, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(path, dir.path)
        }
        let empty = dir.appendingPathComponent("empty.png")
        _ = FileManager.default.createFile(atPath: empty.path, contents: Data())
        XCTAssertThrowsError(try PNGCodec.read(contentsOf: empty)) { error in
            XCTAssertEqual(error as? ImageError, .notPNG(path: empty.path, detectedFormat: "an empty file"))
        }
    }
}

/// Builds and inspects raw PNG chunks for the hostile-input tests.
enum PNGBytes {
    static let crcTable: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = crcTable[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }

    static func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }

    static func readUInt32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        bytes[at..<(at + 4)].reduce(0) { $0 << 8 | UInt32($1) }
    }

    static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let body = Array(type.utf8) + data
        return be32(UInt32(data.count)) + body + be32(crc32(body))
    }

    static func ihdr(width: UInt32, height: UInt32, bitDepth: UInt8, colorType: UInt8) -> [UInt8] {
        chunk("IHDR", be32(width) + be32(height) + [bitDepth, colorType, 0, 0, 0])
    }

    /// Offset of the first chunk of `type` (its length field).
    static func chunkOffset(_ bytes: [UInt8], type: String) -> Int? {
        var at = 8
        let tag = Array(type.utf8)
        while at + 8 <= bytes.count {
            let length = Int(readUInt32(bytes, at))
            if Array(bytes[(at + 4)..<(at + 8)]) == tag { return at }
            at += 12 + length
        }
        return nil
    }
}
