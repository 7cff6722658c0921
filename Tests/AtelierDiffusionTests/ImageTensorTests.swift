import AtelierKernels
import XCTest
@testable import AtelierDiffusion

/// Image ↔ tensor conversions against diffusers' `VaeImageProcessor` (pre- and postprocess),
/// compared bit for bit.
final class ImageTensorTests: XCTestCase {
    struct Fixture: Decodable {
        let diffusers: String
        let preprocessInput: [UInt8]
        let preprocessBits: [UInt32]
        let maskBits: [UInt32]
        let postprocessInputBits: [UInt32]
        let postprocessWidth: Int
        let postprocessOutput: [UInt8]
        let exactHalfCount: Int
    }

    struct PipelineFixture: Decodable {
        let file: String
        let height: Int, width: Int
        let fnv1a64: String
        let first: [UInt32]
        let defaultShape: [Int]
        let defaultFnv1a64: String
    }

    func testPreprocessEveryByteValue() throws {
        let f = try ImageFixtures.load("tensor.json", as: Fixture.self)
        let image = try RGBImage(width: 256, height: 1, pixels: f.preprocessInput)
        let t = image.normalizedTensor()
        XCTAssertEqual(t.shape, [1, 3, 1, 256])
        XCTAssertEqual(t.scalars.map(\.bitPattern), f.preprocessBits)
        XCTAssertEqual(ImageTensor.normalize(0), -1)
        XCTAssertEqual(ImageTensor.normalize(255), 1)
    }

    func testMaskEveryByteValue() throws {
        let f = try ImageFixtures.load("tensor.json", as: Fixture.self)
        let mask = try GrayImage(width: 256, height: 1, pixels: (0...255).map { UInt8($0) })
        let t = mask.maskTensor()
        XCTAssertEqual(t.shape, [1, 1, 1, 256])
        XCTAssertEqual(t.scalars.map(\.bitPattern), f.maskBits)
        XCTAssertEqual(t[flat: 127], 0)
        XCTAssertEqual(t[flat: 128], 1)
        XCTAssertEqual(mask.maskTensor(binarize: false)[flat: 51], Float(51) / 255)
    }

    func testPostprocessEdgeValues() throws {
        let f = try ImageFixtures.load("tensor.json", as: Fixture.self)
        XCTAssertGreaterThan(f.exactHalfCount, 100, "the fixture must contain values that land exactly on k + 0.5")
        let n = f.postprocessWidth
        let t = Tensor(shape: [1, 3, 1, n], values: f.postprocessInputBits.map(Float.init(bitPattern:)))
        let image = try ImageTensor.image(from: t)
        XCTAssertEqual(image.width, n)
        XCTAssertEqual(image.height, 1)
        var mismatches = 0
        for i in 0..<image.pixels.count where image.pixels[i] != f.postprocessOutput[i] {
            mismatches += 1
            let c = i % 3, x = i / 3
            if mismatches <= 5 {
                XCTFail("pixel \(x) channel \(c): input \(t[flat: c * n + x]) → \(image.pixels[i]), diffusers \(f.postprocessOutput[i])")
            }
        }
        print("postprocess: \(image.pixels.count - mismatches)/\(image.pixels.count) bytes identical to diffusers \(f.diffusers) (\(f.exactHalfCount) exact .5 ties)")
    }

    func testRoundHalfToEven() {
        // 0.5/255 and 1.5/255 scaled back land on .5: numpy rounds them to 0 and 2.
        XCTAssertEqual(ImageTensor.quantize(-1), 0)
        XCTAssertEqual(ImageTensor.quantize(1), 255)
        XCTAssertEqual(ImageTensor.quantize(5), 255)
        XCTAssertEqual(ImageTensor.quantize(-Float.infinity), 0)
        XCTAssertEqual(ImageTensor.quantize(.nan), 0)
    }

    func testBatchRoundTrip() throws {
        let a = try RGBImage(width: 5, height: 3, pixels: ImageFixtures.noise(width: 5, height: 3, channels: 3, seed: 1))
        let b = try RGBImage(width: 5, height: 3, pixels: ImageFixtures.noise(width: 5, height: 3, channels: 3, seed: 2))
        let t = try ImageTensor.tensor(from: [a, b])
        XCTAssertEqual(t.shape, [2, 3, 3, 5])
        XCTAssertEqual(try ImageTensor.images(from: t), [a, b], "normalise then denormalise is lossless for bytes")
        XCTAssertThrowsError(try ImageTensor.tensor(from: [a, try RGBImage(width: 3, height: 5, red: 0, green: 0, blue: 0)]))
        XCTAssertThrowsError(try ImageTensor.tensor(from: []))
        XCTAssertThrowsError(try ImageTensor.image(from: Tensor(zeros: [1, 4, 2, 2])))
        XCTAssertThrowsError(try ImageTensor.image(from: t, index: 2))
    }

    func testPreprocessPipelineMatchesDiffusers() throws {
        // PNG → RGB → PIL Lanczos to 32x40 → [-1, 1], against VaeImageProcessor.preprocess.
        let f = try ImageFixtures.load("pipeline.json", as: PipelineFixture.self)
        let image = try PNGCodec.read(contentsOf: ImageFixtures.url(f.file)).rgb()
        let t = try VaeImagePreprocessor.preprocess(image, width: f.width, height: f.height)
        XCTAssertEqual(t.shape, [1, 3, f.height, f.width])
        XCTAssertEqual(Array(t.scalars.prefix(16)).map(\.bitPattern), f.first)
        XCTAssertEqual(ImageFixtures.fnv1a64(ImageFixtures.bytes(of: t.scalars)), f.fnv1a64)

        let d = try VaeImagePreprocessor.preprocess(image)  // size floored to multiples of 8
        XCTAssertEqual(d.shape, f.defaultShape)
        XCTAssertEqual(ImageFixtures.fnv1a64(ImageFixtures.bytes(of: d.scalars)), f.defaultFnv1a64)
    }

    func testTargetSize() throws {
        let s = try VaeImagePreprocessor.targetSize(imageWidth: 45, imageHeight: 37)
        XCTAssertEqual(s.width, 40)
        XCTAssertEqual(s.height, 32)
        let u = try VaeImagePreprocessor.targetSize(imageWidth: 45, imageHeight: 37, width: 130, height: 67, scaleFactor: 4)
        XCTAssertEqual(u.width, 128)
        XCTAssertEqual(u.height, 64)
        XCTAssertThrowsError(try VaeImagePreprocessor.targetSize(imageWidth: 7, imageHeight: 100))
    }
}
