import XCTest
import AtelierKernelsC
@testable import AtelierKernels

/// The kernels' own GELU/GEGLU: close to the exact erf form and the same bits on every path.
final class GELUKernelTests: XCTestCase {
    override func tearDown() { OwnGEMM.select(isa: OwnGEMM.supportedISAs.last ?? "scalar") }

    func testGELUIsWithinAMillionthOfTheErfFormAndBitIdenticalOnEveryPath() {
        var rng = SplitMix64(seed: 9)
        let xs = (0..<1003).map { _ in Float(rng.uniform() * 24 - 12) } + [0, -0, 1e-30, -1e-30, 40, -40, 1e-4]
        var outputs: [[UInt32]] = []
        for isa in OwnGEMM.supportedISAs {
            OwnGEMM.select(isa: isa)
            var y = [Float](repeating: .nan, count: xs.count)
            xs.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { ak_gelu(xp.baseAddress!, $0.baseAddress!, xs.count) } }
            for (x, v) in zip(xs, y) {
                let ref = 0.5 * Double(x) * (1 + erf(Double(x) / 2.0.squareRoot()))
                XCTAssertEqual(Double(v), ref, accuracy: 1e-6 * max(1, abs(ref)), "\(isa) gelu(\(x))")
            }
            outputs.append(y.map(\.bitPattern))
        }
        for other in outputs.dropFirst() { XCTAssertEqual(other, outputs[0]) }
    }

    func testGEGLUMultipliesTheValueHalfByTheGELUOfTheGateHalf() {
        var rng = SplitMix64(seed: 10)
        let x = rng.normal([3, 2, 22])  // 6 rows of 2·11
        let y = Activation.geglu(x)
        XCTAssertEqual(y.shape, [3, 2, 11])
        for r in 0..<6 {
            for i in 0..<11 {
                let v = Double(x.pointer[r * 22 + i]), g = Double(x.pointer[r * 22 + 11 + i])
                XCTAssertEqual(Double(y.pointer[r * 11 + i]), v * 0.5 * g * (1 + erf(g / 2.0.squareRoot())), accuracy: 1e-6)
            }
        }
    }
}
