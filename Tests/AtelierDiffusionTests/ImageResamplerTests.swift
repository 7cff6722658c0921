import XCTest
@testable import AtelierDiffusion
@testable import AtelierImaging

/// The PIL port against `PIL.Image.resize` from the pinned Pillow: every output byte must match
/// (compared through an FNV-1a hash of the whole output, plus sampled pixels for diagnosis).
final class ImageResamplerTests: XCTestCase {
    struct Fixture: Decodable {
        let pillow: String
        let cases: [Case]
    }

    struct Case: Decodable {
        let mode: String
        let input: String
        let width: Int, height: Int, seed: Int
        let outWidth: Int, outHeight: Int
        let filter: String
        let fnv1a64: String
        let samples: [Sample]
    }

    /// `[x, y, [values]]` in the JSON.
    struct Sample: Decodable {
        let x: Int, y: Int, values: [Int]
        init(from decoder: Decoder) throws {
            var c = try decoder.unkeyedContainer()
            x = try c.decode(Int.self)
            y = try c.decode(Int.self)
            values = try c.decode([Int].self)
        }
    }

    func testBitIdenticalToPillow() throws {
        let fixture = try ImageFixtures.load("resample.json", as: Fixture.self)
        XCTAssertGreaterThan(fixture.cases.count, 30)
        var exact = 0
        for c in fixture.cases {
            let channels = c.mode == "RGB" ? 3 : 1
            let source = ImageFixtures.input(c.input, width: c.width, height: c.height, channels: channels, seed: c.seed)
            let filter = try XCTUnwrap(ResampleFilter(pilName: c.filter))
            let out: [UInt8]
            if channels == 3 {
                out = try RGBImage(width: c.width, height: c.height, pixels: source)
                    .resized(width: c.outWidth, height: c.outHeight, filter: filter).pixels
            } else {
                out = try GrayImage(width: c.width, height: c.height, pixels: source)
                    .resized(width: c.outWidth, height: c.outHeight, filter: filter).pixels
            }
            let label = "\(c.mode) \(c.input) \(c.width)x\(c.height) → \(c.outWidth)x\(c.outHeight) \(c.filter)"
            XCTAssertEqual(out.count, c.outWidth * c.outHeight * channels, label)
            var sampleMismatches = 0
            for s in c.samples {
                let i = (s.y * c.outWidth + s.x) * channels
                let ours = out[i..<(i + channels)].map(Int.init)
                if ours != s.values {
                    sampleMismatches += 1
                    if sampleMismatches <= 3 { XCTFail("\(label): pixel (\(s.x), \(s.y)) is \(ours), PIL \(s.values)") }
                }
            }
            let hash = ImageFixtures.fnv1a64(out)
            XCTAssertEqual(hash, c.fnv1a64, "\(label): output differs from PIL \(fixture.pillow)")
            if hash == c.fnv1a64 { exact += 1 }
        }
        print("resample: \(exact)/\(fixture.cases.count) cases bit-identical to Pillow \(fixture.pillow)")
    }

    func testSameSizeIsACopy() throws {
        let pixels = ImageFixtures.noise(width: 17, height: 9, channels: 3, seed: 5)
        let image = try RGBImage(width: 17, height: 9, pixels: pixels)
        for filter in ResampleFilter.allCases {
            XCTAssertEqual(try image.resized(width: 17, height: 9, filter: filter), image)
        }
    }

    func testUniformImageStaysUniform() throws {
        // Normalised weights must reproduce a constant exactly after fixed-point rounding.
        let image = try RGBImage(width: 31, height: 29, red: 0, green: 128, blue: 255)
        for filter in ResampleFilter.allCases {
            let out = try image.resized(width: 64, height: 13, filter: filter)
            for y in 0..<out.height {
                for x in 0..<out.width {
                    let p = out[x, y]
                    XCTAssertTrue(p == (0, 128, 255), "\(filter) (\(x), \(y)) = \(p)")
                }
            }
        }
    }

    func testCoefficientsAreNormalised() {
        for filter in ResampleFilter.allCases {
            for (inSize, outSize) in [(640, 512), (37, 512), (700, 128), (5, 3)] {
                let c = ImageResampler.coefficients(inSize: inSize, in0: 0, in1: Float(inSize), outSize: outSize, filter: filter)
                for x in 0..<outSize {
                    let count = c.bounds[2 * x + 1]
                    XCTAssertGreaterThan(count, 0)
                    XCTAssertLessThanOrEqual(c.bounds[2 * x] + count, inSize)
                    let sum = c.weights[(x * c.ksize)..<(x * c.ksize + count)].reduce(0, +)
                    XCTAssertEqual(sum, 1, accuracy: 1e-12, "\(filter) \(inSize)→\(outSize) at \(x)")
                }
            }
        }
    }

    func testPillow13PassOrderRule() {
        XCTAssertFalse(ImageResampler.verticalFirst(width: 120, height: 100, toWidth: 110, toHeight: 80), "20 == 2·10")
        XCTAssertTrue(ImageResampler.verticalFirst(width: 120, height: 101, toWidth: 110, toHeight: 80), "21 > 2·10")
        XCTAssertTrue(ImageResampler.verticalFirst(width: 64, height: 200, toWidth: 96, toHeight: 120), "wider and shorter")
        XCTAssertFalse(ImageResampler.verticalFirst(width: 640, height: 480, toWidth: 512, toHeight: 384))
        XCTAssertFalse(ImageResampler.verticalFirst(width: 37, height: 23, toWidth: 512, toHeight: 512), "upscales")
        XCTAssertFalse(ImageResampler.verticalFirst(width: 100, height: 100, toWidth: 200, toHeight: 100), "height unchanged")
    }

    func testInvalidTargetSizeThrows() throws {
        let image = try RGBImage(width: 4, height: 4, red: 1, green: 2, blue: 3)
        XCTAssertThrowsError(try image.resized(width: 0, height: 4, filter: .lanczos)) { error in
            guard case ImageError.invalidArgument = error else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try image.resized(width: 4, height: -1, filter: .bilinear))
    }

    func testFilterNames() {
        XCTAssertEqual(ResampleFilter(pilName: "lanczos"), .lanczos)
        XCTAssertEqual(ResampleFilter(pilName: "BICUBIC"), .bicubic)
        XCTAssertNil(ResampleFilter(pilName: "nearest"))
    }
}
