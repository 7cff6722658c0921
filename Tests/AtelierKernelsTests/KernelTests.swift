import Foundation
import XCTest
import AtelierKernelsC
@testable import AtelierKernels

/// Kernels against direct textbook loops (computed in Double), on odd sizes that exercise
/// padding, strides, row bands and score blocks.
final class KernelTests: XCTestCase {
    var rng = SystemRandomNumberGenerator()

    func random(_ shape: [Int], seed: UInt64) -> Tensor {
        var state = seed &* 0x9E3779B97F4A7C15 | 1
        let t = Tensor(uninitialized: shape)
        for i in 0..<t.count {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            t[flat: i] = Float(Double(state % 2_000_001) / 1_000_000.0 - 1.0)
        }
        return t
    }

    func naiveConv(_ x: Tensor, _ w: Tensor, _ b: Tensor, stride: Int, pad: Padding2D) -> Tensor {
        let (n, cin, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (cout, _, kh, kw) = (w.shape[0], w.shape[1], w.shape[2], w.shape[3])
        let ho = (h + pad.top + pad.bottom - kh) / stride + 1, wo = (wd + pad.left + pad.right - kw) / stride + 1
        let y = Tensor(zeros: [n, cout, ho, wo])
        for bi in 0..<n { for o in 0..<cout { for oy in 0..<ho { for ox in 0..<wo {
            var acc = Double(b[flat: o])
            for c in 0..<cin { for i in 0..<kh { for j in 0..<kw {
                let iy = oy * stride - pad.top + i, ix = ox * stride - pad.left + j
                if iy >= 0 && iy < h && ix >= 0 && ix < wd {
                    acc += Double(x[flat: ((bi * cin + c) * h + iy) * wd + ix]) * Double(w[flat: ((o * cin + c) * kh + i) * kw + j])
                }
            }}}
            y[flat: ((bi * cout + o) * ho + oy) * wo + ox] = Float(acc)
        }}}}
        return y
    }

    func testConvolutionMatchesDirectLoopsForEveryPaddingAndStride() {
        let x = random([2, 5, 9, 7], seed: 1)
        let cases: [(Int, Int, Padding2D)] = [(3, 1, .symmetric(1)), (3, 2, .symmetric(1)), (3, 2, .init(top: 0, left: 0, bottom: 1, right: 1)),
                                              (1, 1, .none), (3, 1, .none), (7, 2, .init(top: 2, left: 3, bottom: 3, right: 2))]
        for (k, s, p) in cases {
            let w = random([4, 5, k, k], seed: UInt64(k * 10 + s)), b = random([4], seed: 9)
            let ref = naiveConv(x, w, b, stride: s, pad: p)
            for budget in [8 << 20, 50] {  // whole image, and one output row per band
                Convolution.columnBudget = budget
                let y = Convolution.conv2d(x, weight: w, bias: b, stride: s, padding: p)
                XCTAssertEqual(y.shape, ref.shape)
                XCTAssertLessThan(y.maxAbsDifference(ref), 1e-4, "k\(k) s\(s) \(p) budget \(budget)")
            }
        }
        Convolution.columnBudget = 8 << 20
    }

    func naiveAttention(_ q: Tensor, _ k: Tensor, _ v: Tensor, heads: Int, causal: Bool) -> Tensor {
        let (b, n, c) = (q.shape[0], q.shape[1], q.shape[2]), m = k.shape[1], d = c / heads
        let y = Tensor(zeros: [b, n, c])
        for bi in 0..<b { for h in 0..<heads { for i in 0..<n {
            var s = [Double](repeating: -.infinity, count: m)
            for j in 0..<m where !causal || j <= i {
                var acc = 0.0
                for e in 0..<d { acc += Double(q[flat: (bi * n + i) * c + h * d + e]) * Double(k[flat: (bi * m + j) * c + h * d + e]) }
                s[j] = acc / Double(d).squareRoot()
            }
            let mx = s.max()!
            let ex = s.map { exp($0 - mx) }, sum = ex.reduce(0, +)
            for e in 0..<d {
                var acc = 0.0
                for j in 0..<m { acc += ex[j] / sum * Double(v[flat: (bi * m + j) * c + h * d + e]) }
                y[flat: (bi * n + i) * c + h * d + e] = Float(acc)
            }
        }}}
        return y
    }

    func testBlockedAttentionMatchesFullSoftmax() {
        let q = random([2, 13, 12], seed: 3), k = random([2, 13, 12], seed: 4), v = random([2, 13, 12], seed: 5)
        for causal in [false, true] {
            let ref = naiveAttention(q, k, v, heads: 3, causal: causal)
            for budget in [4 << 20, 13 * 2, 13] {  // one block, 2-row blocks, 1-row blocks
                AttentionOp.scoreBudget = budget
                let y = AttentionOp.attention(q: q, k: k, v: v, heads: 3, causal: causal)
                XCTAssertLessThan(y.maxAbsDifference(ref), 1e-5, "causal \(causal) budget \(budget)")
            }
        }
        AttentionOp.scoreBudget = 4 << 20
    }

    func testCrossAttentionWithDifferentKeyLength() {
        let q = random([1, 10, 8], seed: 6), k = random([1, 7, 8], seed: 7), v = random([1, 7, 8], seed: 8)
        let ref = naiveAttention(q, k, v, heads: 2, causal: false)
        XCTAssertLessThan(AttentionOp.attention(q: q, k: k, v: v, heads: 2).maxAbsDifference(ref), 1e-5)
    }

    func testGroupNormNormalisesEachGroupThenAppliesAffine() {
        let x = random([2, 6, 5, 3], seed: 11), w = random([6], seed: 12), b = random([6], seed: 13)
        let y = Normalization.groupNorm(x, groups: 3, weight: w, bias: b, eps: 1e-6)
        for n in 0..<2 { for g in 0..<3 {
            let base = (n * 6 + g * 2) * 15
            let vals = (0..<30).map { Double(x[flat: base + $0]) }
            let mean = vals.reduce(0, +) / 30, variance = vals.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 30
            for i in 0..<30 {
                let ch = g * 2 + i / 15
                let ref = (vals[i] - mean) / (variance + 1e-6).squareRoot() * Double(w[flat: ch]) + Double(b[flat: ch])
                XCTAssertEqual(Double(y[flat: base + i]), ref, accuracy: 1e-5)
            }
        }}
    }

    func testNearestUpsampleToOddSizeTakesFloorIndices() {
        let x = Tensor(shape: [1, 1, 2, 3], values: [1, 2, 3, 4, 5, 6])
        let y = Elementwise.upsampleNearest(x, height: 3, width: 5)
        // torch: src = floor(dst · in / out)
        XCTAssertEqual(y.scalars, [1, 1, 2, 2, 3, 1, 1, 2, 2, 3, 4, 4, 5, 5, 6])
    }

    func testGegluUsesFirstHalfAsValueAndSecondAsGate() {
        let x = Tensor(shape: [1, 4], values: [2, -1, 0.5, 3])
        let y = Activation.geglu(x)
        let gelu = { (v: Double) in 0.5 * v * (1 + erf(v / 2.0.squareRoot())) }
        XCTAssertEqual(Double(y[flat: 0]), 2 * gelu(0.5), accuracy: 1e-6)
        XCTAssertEqual(Double(y[flat: 1]), -1 * gelu(3), accuracy: 1e-6)
    }
}

final class BLASCoreTypeTests: XCTestCase {
    func testGenericKernelIsUpgradedToWhatTheCPUCanRun() {
        let avx512: Set<String> = ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"]
        XCTAssertEqual(BLAS.betterCoreType(cpuFlags: avx512, current: "Prescott"), "SkylakeX")
        XCTAssertEqual(BLAS.betterCoreType(cpuFlags: ["avx", "avx2", "fma"], current: "Prescott"), "Haswell")
        XCTAssertNil(BLAS.betterCoreType(cpuFlags: ["sse4_2"], current: "Prescott"))
    }

    func testOpenBLASOwnRecognisedChoiceIsKept() {
        XCTAssertNil(BLAS.betterCoreType(cpuFlags: ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"], current: "Haswell"))
        XCTAssertNil(BLAS.betterCoreType(cpuFlags: ["avx2", "fma"], current: "Zen"))
    }

    func testCoreNameIsReported() {
        XCTAssertFalse(BLAS.coreName.isEmpty)
    }
}

/// The kernels' one exponential (FastExp.h), through `ak_exp`: accurate, and the same bits on
/// every instruction set (the vector path fuses exactly the multiply-adds the scalar one does).
final class FastExpTests: XCTestCase {
    override func tearDown() { OwnGEMM.select(isa: OwnGEMM.supportedISAs.last ?? "scalar") }

    func exps(_ xs: [Float]) -> [Float] {
        var ys = [Float](repeating: .nan, count: xs.count)
        xs.withUnsafeBufferPointer { x in ys.withUnsafeMutableBufferPointer { y in ak_exp(x.baseAddress!, y.baseAddress!, xs.count) } }
        return ys
    }

    func testFastExpIsWithinTwoUlpOfLibmOverTheWholeRange() {
        let xs = stride(from: Float(-87), through: 88, by: 0.00731).map { $0 }
        for isa in OwnGEMM.supportedISAs {
            OwnGEMM.select(isa: isa)
            var worst: Float = 0
            for (x, got) in zip(xs, exps(xs)) { worst = max(worst, abs(got - expf(x)) / expf(x).ulp) }
            XCTAssertLessThanOrEqual(worst, 2, "\(isa): max error \(worst) ulp")
            XCTAssertEqual(exps([-.infinity, -100, 0]), [0, 0, 1], isa)
            XCTAssertTrue(exps([.nan])[0].isNaN, isa)
        }
    }

    func testFastExpGivesTheSameBitsOnEveryInstructionSet() {
        var rng = SplitMix64(seed: 3)
        let xs = (0..<10_003).map { _ in Float(rng.uniform() * 180 - 90) }  // both clamps, and a tail
        var results: [[UInt32]] = []
        for isa in OwnGEMM.supportedISAs {
            OwnGEMM.select(isa: isa)
            results.append(exps(xs).map(\.bitPattern))
        }
        XCTAssertTrue(results.allSatisfy { $0 == results[0] })
    }
}
