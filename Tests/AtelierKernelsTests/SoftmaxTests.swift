import XCTest
import AtelierKernelsC
@testable import AtelierKernels

/// The attention softmax gives the same bits on the scalar and the AVX2 path (one exp polynomial,
/// eight partial sums in a fixed tree), and is a softmax.
final class SoftmaxTests: XCTestCase {
    override func tearDown() { OwnGEMM.select(isa: OwnGEMM.supportedISAs.last ?? "scalar") }

    func testSoftmaxRowIsBitIdenticalOnEveryPathAndSumsToOne() {
        var rng = SplitMix64(seed: 21)
        for (cols, valid) in [(1, 1), (7, 7), (8, 8), (13, 9), (24, 24), (41, 41), (77, 77), (77, 30), (4096, 4096), (100, 0)] {
            let row = (0..<cols).map { _ in Float(rng.uniform() * 40 - 20) }
            var results: [[UInt32]] = []
            for isa in OwnGEMM.supportedISAs {
                OwnGEMM.select(isa: isa)
                var r = row
                r.withUnsafeMutableBufferPointer { ak_softmax_row($0.baseAddress!, Int32(cols), Int32(valid)) }
                results.append(r.map(\.bitPattern))
                if valid > 0 {
                    let mx = row[..<valid].max()!
                    let ref = row[..<valid].map { Foundation.exp(Double($0 - mx)) }
                    let total = ref.reduce(0, +)
                    for j in 0..<valid { XCTAssertEqual(Double(r[j]), ref[j] / total, accuracy: 2e-6, "\(isa) \(cols)/\(valid) [\(j)]") }
                }
                for j in valid..<cols { XCTAssertEqual(r[j], 0) }
            }
            for other in results.dropFirst() { XCTAssertEqual(other, results[0], "cols \(cols) valid \(valid)") }
        }
    }

    /// Attention's form (the scale folded in, the normalised row written as bf16 for P·V) gives the
    /// same bits on every path too, the exponentials kept in the row included: on the avx512
    /// families 16 at a time, then 8, then one by one, each lane's partial sum in the same order.
    func testScaledBF16SoftmaxIsBitIdenticalOnEveryPath() {
        var rng = SplitMix64(seed: 23)
        for (cols, valid) in [(1, 1), (16, 16), (24, 24), (41, 41), (77, 70), (4096, 4096), (33, 0)] {
            var row = (0..<cols).map { _ in Float(rng.uniform() * 60 - 30) }
            if valid > 3 { row[valid / 2] = -1e30; row[1] = 0x1p-140 }  // an exponential of 0, a denormal score
            var results: [[UInt32]] = []
            for isa in OwnGEMM.supportedISAs {
                OwnGEMM.select(isa: isa)
                var r = row
                var out = [UInt16](repeating: 0xffff, count: cols)
                r.withUnsafeMutableBufferPointer { ak_softmax_row_bf16($0.baseAddress!, Int32(cols), Int32(valid), 0.125, &out) }
                results.append(r[..<valid].map(\.bitPattern) + out.map(UInt32.init))
                for j in valid..<cols { XCTAssertEqual(out[j], 0, "\(isa): past the valid columns") }
            }
            for (i, other) in results.enumerated().dropFirst() {
                XCTAssertEqual(other, results[0], "\(OwnGEMM.supportedISAs[i]) cols \(cols) valid \(valid)")
            }
        }
    }
}
