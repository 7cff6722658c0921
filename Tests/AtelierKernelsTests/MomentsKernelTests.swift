import XCTest
import AtelierKernelsC
@testable import AtelierKernels

/// GroupNorm/LayerNorm statistics: exact to double rounding, the same bits on every path.
final class MomentsKernelTests: XCTestCase {
    override func tearDown() { OwnGEMM.select(isa: OwnGEMM.supportedISAs.last ?? "scalar") }

    func testMomentsMatchAPlainDoubleSumAndAreBitIdenticalOnEveryPath() {
        var rng = SplitMix64(seed: 13)
        for n in [1, 7, 8, 9, 1000, 65_537] {
            let xs = (0..<n).map { _ in Float(rng.uniform() * 10 - 3) }
            let refMean = xs.reduce(0.0) { $0 + Double($1) } / Double(n)
            let refSq = xs.reduce(0.0) { $0 + (Double($1) - refMean) * (Double($1) - refMean) }
            var results: [(UInt64, UInt64)] = []
            for isa in OwnGEMM.supportedISAs {
                OwnGEMM.select(isa: isa)
                var mean = 0.0, sq = 0.0
                xs.withUnsafeBufferPointer { ak_moments($0.baseAddress!, n, &mean, &sq) }
                XCTAssertEqual(mean, refMean, accuracy: 1e-12 * max(1, abs(refMean)), "\(isa) n \(n)")
                XCTAssertEqual(sq, refSq, accuracy: 1e-9 * max(1, refSq), "\(isa) n \(n)")
                results.append((mean.bitPattern, sq.bitPattern))
            }
            for r in results.dropFirst() { XCTAssertTrue(r == results[0], "n \(n)") }
        }
    }
}
