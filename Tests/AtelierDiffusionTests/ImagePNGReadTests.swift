import XCTest
@testable import AtelierDiffusion

/// Decoding PNGs of every colour type against what PIL decodes from the same files
/// (`Image.open(f).convert("RGB")`, `.convert("L")`, `im.text`).
final class ImagePNGReadTests: XCTestCase {
    struct Fixture: Decodable {
        let pillow: String
        let images: [Entry]
    }

    struct Entry: Decodable {
        let file: String
        let note: String
        let pilMode: String
        let width: Int, height: Int
        let rgb: [Int]
        let gray: [Int]
        let text: [String: String]
        let gray16: [Int]?
    }

    func testDecodesLikePIL() throws {
        let fixture = try ImageFixtures.load("png.json", as: Fixture.self)
        XCTAssertGreaterThanOrEqual(fixture.images.count, 14)
        for entry in fixture.images {
            let label = "\(entry.file) (\(entry.note))"
            let png = try PNGCodec.read(contentsOf: ImageFixtures.url("png").appendingPathComponent(entry.file))
            XCTAssertEqual(png.width, entry.width, label)
            XCTAssertEqual(png.height, entry.height, label)
            XCTAssertEqual(png.rgb().pixels.map(Int.init), entry.rgb, "\(label): convert(\"RGB\")")
            XCTAssertEqual(png.gray().pixels.map(Int.init), entry.gray, "\(label): convert(\"L\")")
            XCTAssertEqual(png.text, entry.text, "\(label): text chunks")
            if let expected = entry.gray16 {
                XCTAssertEqual(try png.gray16().pixels.map(Int.init), expected, "\(label): 16-bit samples")
                guard case .gray16 = png.pixels else { return XCTFail("\(label): 16-bit gray must stay 16-bit") }
            }
        }
    }

    func testLayoutsFollowPILModes() throws {
        func layout(_ file: String) throws -> DecodedPNG {
            try PNGCodec.read(contentsOf: ImageFixtures.url("png").appendingPathComponent(file))
        }
        guard case .rgb8 = try layout("rgb8.png").pixels else { return XCTFail("rgb8") }
        guard case .rgba8 = try layout("rgba8.png").pixels else { return XCTFail("rgba8") }
        guard case .gray8 = try layout("gray8.png").pixels else { return XCTFail("gray8") }
        guard case .grayAlpha8 = try layout("graya8.png").pixels else { return XCTFail("graya8") }
        guard case .rgb8 = try layout("palette.png").pixels else { return XCTFail("palette") }
        guard case .rgba8 = try layout("palette_trns.png").pixels else { return XCTFail("palette with tRNS") }
        guard case .gray8 = try layout("gray1.png").pixels else { return XCTFail("1-bit gray") }
        guard case .rgb8 = try layout("rgb16.png").pixels else { return XCTFail("16-bit RGB") }
        let depth = try layout("gray16.png")
        XCTAssertEqual(depth.sourceBitDepth, 16)
        XCTAssertEqual(try depth.gray16()[0, 0], 0)
        XCTAssertEqual(try depth.gray16()[2, 0], 65535)
        XCTAssertEqual(depth.gray()[1, 0], 255, "PIL clamps I;16 to 8 bits")
    }

    func testParametersChunkParses() throws {
        let png = try PNGCodec.read(contentsOf: ImageFixtures.url("png/text_utf8.png"))
        let text = try XCTUnwrap(png.parametersText)
        let p = try GenerationParameters.parse(text)
        XCTAssertEqual(p.prompt, "日本の庭園 🌸, façade")
        XCTAssertEqual(p.sampler, "ddim")
        XCTAssertEqual(p.cfgScale, 9)
        XCTAssertEqual(p.seed, 7)
    }

    func testColourDepthMapIsRefused() throws {
        let png = try PNGCodec.read(contentsOf: ImageFixtures.url("png/rgb8.png"))
        XCTAssertThrowsError(try png.gray16()) { error in
            guard case ImageError.unsupportedFormat(let path, _) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(path.hasSuffix("rgb8.png"))
        }
    }
}
