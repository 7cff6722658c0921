import AtelierKernels
import Foundation
import XCTest

@testable import AtelierDiffusion

/// Bit-exactness of `TorchRandomSource` against the real `torch.randn`/`torch.rand`
/// (fixture: Tests/Reference/schedulers/make_random_fixtures.py).
final class RandomSourceTests: XCTestCase {
    private struct Fixture: Decodable {
        let torch: String
        let cpu_capability: String
        let edge: Int
        let cases: [Case]
    }

    private struct Case: Decodable {
        let seed: String
        let draws: [Draw]
    }

    private struct Draw: Decodable {
        let kind: String
        let shape: [Int]
        let count: Int
        let head: String
        let tail: String
        let sum: Double
        let fnv1a64: String
    }

    private static func fixtureURL() -> URL {
        URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Reference/schedulers/fixtures/torch_random.json")
    }

    private static func floats(base64 text: String) throws -> [Float] {
        let data = try XCTUnwrap(Data(base64Encoded: text), "bad base64 in fixture")
        return data.withUnsafeBytes { raw in
            (0..<(raw.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
        }
    }

    private static func fnv1a64(_ values: UnsafeBufferPointer<Float>) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for value in values {
            var bits = value.bitPattern.littleEndian
            for _ in 0..<4 {
                hash ^= UInt64(bits & 0xff)
                hash = hash &* 0x0000_0100_0000_01b3
                bits >>= 8
            }
        }
        return hash
    }

    private static func ulpDistance(_ a: Float, _ b: Float) -> Int {
        func ordered(_ x: Float) -> Int {
            let bits = Int(Int32(bitPattern: x.bitPattern))
            return bits < 0 ? Int(Int32.min) - bits : bits
        }
        return abs(ordered(a) - ordered(b))
    }

    func testMatchesTorchBitForBit() throws {
        let data = try Data(contentsOf: Self.fixtureURL())
        let fixture = try JSONDecoder().decode(Fixture.self, from: data)
        var totalValues = 0
        var totalCompared = 0
        var mismatches = 0
        var maxUlp = 0
        for testCase in fixture.cases {
            let seed = try XCTUnwrap(UInt64(testCase.seed))
            var random = TorchRandomSource(seed: seed)
            for (drawIndex, draw) in testCase.draws.enumerated() {
                let tensor = draw.kind == "normal" ? random.normal(shape: draw.shape) : random.uniform(shape: draw.shape)
                XCTAssertEqual(tensor.count, draw.count)
                totalValues += tensor.count
                let values = tensor.scalars
                let head = try Self.floats(base64: draw.head)
                let tail = try Self.floats(base64: draw.tail)
                let expected = head.enumerated().map { ($0.offset, $0.element) }
                    + tail.enumerated().map { (values.count - tail.count + $0.offset, $0.element) }
                for (index, reference) in expected {
                    totalCompared += 1
                    if values[index].bitPattern != reference.bitPattern {
                        mismatches += 1
                        maxUlp = max(maxUlp, Self.ulpDistance(values[index], reference))
                    }
                }
                let sum = values.reduce(0.0) { $0 + Double($1) }
                let hash = tensor.withUnsafeBufferPointer(Self.fnv1a64)
                let label = "seed \(testCase.seed) draw \(drawIndex) \(draw.kind)\(draw.shape)"
                XCTAssertEqual(String(hash), draw.fnv1a64, "\(label): bit-pattern hash differs from torch")
                XCTAssertEqual(sum, draw.sum, accuracy: abs(draw.sum) * 1e-12 + 1e-9, "\(label): sum differs")
            }
        }
        XCTAssertEqual(mismatches, 0, "\(mismatches) of \(totalCompared) stored values differ (max \(maxUlp) ulp)")
        print("TorchRandomSource: \(totalValues) values hashed, \(totalCompared) compared, \(mismatches) mismatches, max ulp \(maxUlp); torch \(fixture.torch) \(fixture.cpu_capability)")
    }

    func testSeedUsesLow32Bits() {
        var a = TorchRandomSource(seed: 5)
        var b = TorchRandomSource(seed: (1 << 32) + 5)
        XCTAssertEqual(a.normal(shape: [40]).scalars, b.normal(shape: [40]).scalars)
    }

    func testEmptyShapeDrawsNothing() {
        var a = TorchRandomSource(seed: 9)
        var b = TorchRandomSource(seed: 9)
        XCTAssertEqual(a.normal(shape: [0, 4]).count, 0)
        XCTAssertEqual(a.normal(shape: [3]).scalars, b.normal(shape: [3]).scalars)
    }
}
