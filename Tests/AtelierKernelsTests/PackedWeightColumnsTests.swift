import XCTest
import AtelierKernelsC
@testable import AtelierKernels

/// A linear layer's weights packed once as GEMM's B must be a pure re-ordering: the bits of the
/// plain weights on every instruction set, thread count and K-blocking, and the exact values back.
final class PackedWeightColumnsTests: XCTestCase {
    override func tearDown() {
        OwnGEMM.select(isa: OwnGEMM.supportedISAs.last ?? "scalar")
        Parallel.threads = ProcessInfo.processInfo.activeProcessorCount
        OwnGEMM.wholeDepthBudget = 8 << 20
        BLAS.backend = .atelier
    }

    func bits(_ t: Tensor) -> [UInt32] { Array(UnsafeBufferPointer(start: t.pointer, count: t.count)).map(\.bitPattern) }

    /// Column counts that do and do not fill the last NR panel, depths below, at and across
    /// K-block boundaries (an odd last block), and more columns than one column block (4096).
    static let shapes: [(rows: Int, inF: Int, outF: Int)] = [
        (1, 1, 1), (7, 5, 3), (13, Int(AK_KC), 70), (300, 64, 33), (40, 2 * Int(AK_KC) + 7, 96), (3, 769, 4100),
    ]

    func testUnpackingGivesBackTheExactWeights() {
        var rng = SplitMix64(seed: 31)
        for s in Self.shapes {
            let w = rng.normal([s.outF, s.inF])
            let p = PackedWeightColumns(packing: w)
            XCTAssertEqual(p.columns, s.outF)
            XCTAssertEqual(p.depth, s.inF)
            XCTAssertEqual(p.unpacked().shape, [s.outF, s.inF])
            XCTAssertEqual(bits(p.unpacked()), bits(w), "\(s)")
            let nr = Int(ak_nr())
            XCTAssertEqual(p.byteCount, 4 * ((s.outF + nr - 1) / nr * nr) * s.inF, "\(s)")
        }
    }

    func testPackedLinearIsBitIdenticalToThePlainOneOnEveryISAThreadCountAndBlocking() {
        var rng = SplitMix64(seed: 37)
        for s in Self.shapes {
            let x = rng.normal([s.rows, s.inF]), w = rng.normal([s.outF, s.inF]), bias = rng.normal([s.outF])
            for isa in OwnGEMM.supportedISAs {
                OwnGEMM.select(isa: isa)
                // Packed under this family, so its NR is the panels' width.
                let packed = LayerWeight.fp32PackedColumns(PackedWeightColumns(packing: w))
                for budget in [8 << 20, 0] {
                    OwnGEMM.wholeDepthBudget = budget
                    for threads in [1, 2, 3] {
                        Parallel.threads = threads
                        for b in [bias, nil] {
                            let plain = LinearOp.linear(x, weight: .fp32(w), bias: b)
                            let fast = LinearOp.linear(x, weight: packed, bias: b)
                            XCTAssertEqual(fast.shape, plain.shape)
                            XCTAssertEqual(bits(fast), bits(plain),
                                           "\(isa), \(threads) threads, budget \(budget), bias \(b != nil), \(s)")
                        }
                    }
                }
            }
        }
    }

    /// Panels packed for one NR, used under a family with another (AVX-512's 32 → AVX2's 16): the
    /// layer runs on the plain values, with the plain path's bits.
    func testPanelsPackedForAnotherFamilyFallBackToThePlainValues() throws {
        let isas = OwnGEMM.supportedISAs
        guard isas.contains("avx512"), isas.contains("avx2") else { throw XCTSkip("needs both AVX2 and AVX-512 families") }
        var rng = SplitMix64(seed: 41)
        let x = rng.normal([20, 100]), w = rng.normal([50, 100]), bias = rng.normal([50])
        OwnGEMM.select(isa: "avx512")
        let p = PackedWeightColumns(packing: w)
        OwnGEMM.select(isa: "avx2")
        XCTAssertNil(p.operand, "NR 32 panels offered to an NR 16 kernel")
        XCTAssertEqual(bits(LinearOp.linear(x, weight: .fp32PackedColumns(p), bias: bias)),
                       bits(LinearOp.linear(x, weight: .fp32(w), bias: bias)))
        OwnGEMM.select(isa: "avx512")
        XCTAssertNotNil(p.operand)
    }

    /// The OpenBLAS backend cannot read packed panels: it gets the plain weights back.
    func testOpenBLASBackendRunsPackedWeightsThroughAnUnpackedCopy() {
        var rng = SplitMix64(seed: 43)
        let x = rng.normal([9, 30]), w = rng.normal([17, 30]), bias = rng.normal([17])
        let p = PackedWeightColumns(packing: w)
        BLAS.backend = .openblas
        XCTAssertEqual(bits(LinearOp.linear(x, weight: .fp32PackedColumns(p), bias: bias)),
                       bits(LinearOp.linear(x, weight: .fp32(w), bias: bias)))
    }
}
