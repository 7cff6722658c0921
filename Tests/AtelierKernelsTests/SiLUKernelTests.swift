import XCTest
import AtelierKernelsC
@testable import AtelierKernels

/// The kernels' own SiLU: close to x·sigmoid(x) and the same bits on every path.
final class SiLUKernelTests: XCTestCase {
    override func tearDown() { OwnGEMM.select(isa: OwnGEMM.supportedISAs.last ?? "scalar") }

    func testSiLUIsWithinAMillionthOfTheExactValueAndBitIdenticalOnEveryPath() {
        var rng = SplitMix64(seed: 12)
        let xs = (0..<1001).map { _ in Float(rng.uniform() * 60 - 30) } + [0, -0, 100, -100, 1e-20, -1e-20]
        var outputs: [[UInt32]] = []
        for isa in OwnGEMM.supportedISAs {
            OwnGEMM.select(isa: isa)
            let y = Activation.silu(Tensor(shape: [xs.count], values: xs))
            for (i, x) in xs.enumerated() {
                let ref = Double(x) / (1 + Foundation.exp(-Double(x)))
                XCTAssertEqual(Double(y.pointer[i]), ref, accuracy: 1e-6 * max(1, abs(ref)), "\(isa) silu(\(x))")
            }
            outputs.append((0..<xs.count).map { y.pointer[$0].bitPattern })
        }
        for other in outputs.dropFirst() { XCTAssertEqual(other, outputs[0]) }
    }
}
