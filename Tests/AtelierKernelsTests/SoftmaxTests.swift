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

    /// Long rows take a four-chain maximum on the avx512 families; rows whose maximum is a zero
    /// (+0 and −0 compare equal, so the order would pick the sign) or that hold a NaN go back to
    /// the ordered pass, and every path keeps the same bits, NaN payloads included.
    func testRowsWithZeroMaximaNaNsAndInfinitiesAreBitIdenticalOnEveryPath() {
        var rng = SplitMix64(seed: 29)
        // One payload: with two, which one a NaN row carries depends on the order of its sums, and
        // the paths' orders differ (a row with a NaN is all NaN on every path all the same).
        let nanScore = Float(bitPattern: 0x7fc0_1234)
        for cols in [64, 65, 127, 200, 4096] {
            let base = (0..<cols).map { _ in -Float(rng.uniform() * 30) - 0.5 }
            var cases: [[Float]] = []
            var zeros = base; zeros[3] = -0.0; zeros[cols - 2] = 0.0; zeros[cols / 2] = -0.0; cases.append(zeros)
            var negativeZero = base; negativeZero[cols - 1] = -0.0; cases.append(negativeZero)
            var nan = base.map { -$0 }; nan[cols / 3] = nanScore; nan[cols - 1] = nanScore; cases.append(nan)
            var infinite = base; infinite[5] = .infinity; infinite[cols - 3] = -.infinity; cases.append(infinite)
            cases.append([Float](repeating: -.infinity, count: cols))
            cases.append(base.map { -$0 })
            var lastIsLargest = base; lastIsLargest[cols - 1] = 2; cases.append(lastIsLargest)  // in the tail
            for (ci, row) in cases.enumerated() {
                var results: [[UInt32]] = []
                for isa in OwnGEMM.supportedISAs {
                    OwnGEMM.select(isa: isa)
                    var r = row, s = row
                    var out = [UInt16](repeating: 0, count: cols)
                    r.withUnsafeMutableBufferPointer { ak_softmax_row_scaled($0.baseAddress!, Int32(cols), Int32(cols), 0.125) }
                    s.withUnsafeMutableBufferPointer { ak_softmax_row_bf16($0.baseAddress!, Int32(cols), Int32(cols), 0.125, &out) }
                    // A NaN row's outputs are all NaN; the exponentials it leaves behind (scratch
                    // to attention) follow each path's own maximum, so they are compared elsewhere only.
                    let kept = ci == 2 ? [] : s.map(\.bitPattern)
                    results.append(r.map(\.bitPattern) + kept + out.map(UInt32.init))
                }
                for (i, other) in results.enumerated().dropFirst() {
                    XCTAssertEqual(other, results[0], "\(OwnGEMM.supportedISAs[i]) cols \(cols) case \(ci)")
                }
                if ci == 5 {  // an ordinary row: still a softmax
                    let mx = row.max()!, ref = row.map { Foundation.exp(Double(($0 - mx) * 0.125)) }, total = ref.reduce(0, +)
                    for j in 0..<cols { XCTAssertEqual(Double(Float(bitPattern: results[0][j])), ref[j] / total, accuracy: 2e-6) }
                }
            }
        }
    }
}
