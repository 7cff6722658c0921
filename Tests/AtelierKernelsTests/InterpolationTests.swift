import Foundation
import XCTest
@testable import AtelierKernels

/// `Interpolation` against torch's `F.interpolate` (CPU, float32). The fixture is written by
/// Tests/Reference/image/make_image_fixtures.py; inputs are regenerated here from the same LCG.
final class InterpolationTests: XCTestCase {
    struct Fixture: Decodable {
        let torch: String
        let cpuCapability: String
        let cases: [Case]
    }

    struct Case: Decodable {
        let mode: String
        let shape: [Int]
        let outHeight: Int, outWidth: Int
        let seed: UInt32
        let output: String  // base64 float32 little-endian
    }

    static let fixtureURL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("AtelierDiffusionTests/Fixtures/image/interpolation.json")

    static func lcgFloats(count: Int, seed: UInt32) -> [Float] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 1_664_525 &+ 1_013_904_223
            return -1 + Float(state >> 8) / Float(1 << 24) * 2
        }
    }

    func testMatchesTorch() throws {
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: Self.fixtureURL))
        var total = 0, identical = 0
        var worst: Float = 0
        for c in fixture.cases {
            let x = Tensor(shape: c.shape, values: Self.lcgFloats(count: c.shape.reduce(1, *), seed: c.seed))
            let y: Tensor
            switch c.mode {
            case "bicubic": y = Interpolation.bicubic(x, height: c.outHeight, width: c.outWidth)
            case "bilinearAlignCorners": y = Interpolation.bilinearAlignCorners(x, height: c.outHeight, width: c.outWidth)
            default: return XCTFail("unknown mode \(c.mode)")
            }
            let data = try XCTUnwrap(Data(base64Encoded: c.output))
            let expected = data.withUnsafeBytes { raw in
                (0..<(data.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
            }
            let label = "\(c.mode) \(c.shape) → \(c.outHeight)x\(c.outWidth)"
            XCTAssertEqual(y.shape, [c.shape[0], c.shape[1], c.outHeight, c.outWidth], label)
            XCTAssertEqual(y.count, expected.count, label)
            var caseWorst: Float = 0
            for i in 0..<min(y.count, expected.count) {
                let d = abs(y[flat: i] - expected[i])
                caseWorst = max(caseWorst, d)
                if y[flat: i].bitPattern == expected[i].bitPattern { identical += 1 }
            }
            total += expected.count
            worst = max(worst, caseWorst)
            XCTAssertLessThanOrEqual(caseWorst, 1e-6, "\(label): max |Δ| = \(caseWorst)")
        }
        print("interpolation: \(identical)/\(total) values bit-identical to torch \(fixture.torch) (\(fixture.cpuCapability)), max |Δ| = \(worst)")
        // The fused multiply-adds reproduced here are those of torch's AVX-512 kernels; fixtures
        // written on another capability only have to meet the tolerance.
        if fixture.cpuCapability == "AVX512" {
            XCTAssertEqual(identical, total, "every value should be bit-identical to torch's AVX-512 kernels")
        }
    }

    func testBicubicSameSizeIsIdentity() {
        let x = Tensor(shape: [1, 2, 5, 7], values: Self.lcgFloats(count: 70, seed: 3))
        XCTAssertEqual(Interpolation.bicubic(x, height: 5, width: 7).scalars, x.scalars)
        XCTAssertEqual(Interpolation.bilinearAlignCorners(x, height: 5, width: 7).scalars, x.scalars)
    }

    func testAlignCornersKeepsCorners() {
        let x = Tensor(shape: [1, 1, 3, 4], values: Self.lcgFloats(count: 12, seed: 8))
        let y = Interpolation.bilinearAlignCorners(x, height: 7, width: 10)
        XCTAssertEqual(y[flat: 0], x[flat: 0])
        XCTAssertEqual(y[flat: 9], x[flat: 3])
        XCTAssertEqual(y[flat: 60], x[flat: 8])
        XCTAssertEqual(y[flat: 69], x[flat: 11])
    }

    func testCubicWeightsSumToOne() {
        for t in stride(from: Float(0), through: 1, by: 0.0625) {
            XCTAssertEqual(Interpolation.cubicCoefficients(t).reduce(0, +), 1, accuracy: 1e-6)
        }
        XCTAssertEqual(Interpolation.cubicCoefficients(0), [0, 1, 0, 0])
    }
}
