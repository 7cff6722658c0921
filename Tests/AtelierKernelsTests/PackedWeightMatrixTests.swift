import XCTest
import AtelierKernelsC
@testable import AtelierKernels

/// Weights packed once at load must be a pure re-ordering: the same convolution bits as the
/// plain weights on every instruction set and thread count, and the exact values back.
final class PackedWeightMatrixTests: XCTestCase {
    override func tearDown() {
        OwnGEMM.select(isa: OwnGEMM.supportedISAs.last ?? "scalar")
        Parallel.threads = ProcessInfo.processInfo.activeProcessorCount
        BLAS.backend = .atelier
    }

    func bits(_ t: Tensor) -> [UInt32] { Array(UnsafeBufferPointer(start: t.pointer, count: t.count)).map(\.bitPattern) }

    /// Rows not a multiple of MR, depths below, at and across K-block boundaries.
    func testUnpackingGivesBackTheExactWeights() {
        var rng = SplitMix64(seed: 21)
        for shape in [[1, 1, 1, 1], [4, 3, 3, 3], [7, 1, 1, 1], [13, 43, 3, 3], [6, Int(AK_KC), 1, 1], [320, 2, 1, 1]] {
            let w = rng.normal(shape)
            let p = PackedWeightMatrix(packing: w)
            XCTAssertEqual(p.rows, shape[0])
            XCTAssertEqual(p.depth, w.count / shape[0])
            XCTAssertEqual(p.unpacked().shape, shape)
            XCTAssertEqual(bits(p.unpacked()), bits(w), "\(shape)")
            XCTAssertEqual(p.byteCount, 4 * ((shape[0] + 5) / 6 * 6) * p.depth, "\(shape)")
        }
    }

    /// Tall row counts with padding, several K-blocks, wide images (A shared by column chunks)
    /// and small ones (each task reads its own rows), 3×3 with padding, strided, and 1×1.
    func testPackedConvolutionIsBitIdenticalToThePlainOneOnEveryISAAndThreadCount() {
        var rng = SplitMix64(seed: 5)
        let cases: [(cin: Int, h: Int, w: Int, cout: Int, k: Int, stride: Int, pad: Padding2D)] = [
            (3, 9, 13, 5, 3, 1, .symmetric(1)), (50, 20, 20, 13, 3, 1, .symmetric(1)),
            (20, 24, 40, 31, 3, 2, Padding2D(top: 0, left: 0, bottom: 1, right: 1)),
            (500, 6, 5, 8, 1, 1, .none), (45, 48, 48, 19, 3, 1, .symmetric(1)),
        ]
        for c in cases {
            let x = rng.normal([2, c.cin, c.h, c.w]), wt = rng.normal([c.cout, c.cin, c.k, c.k]), bias = rng.normal([c.cout])
            let packed = LayerWeight.fp32Packed(PackedWeightMatrix(packing: wt))
            for isa in OwnGEMM.supportedISAs {
                OwnGEMM.select(isa: isa)
                for threads in [1, 2, 3] {
                    Parallel.threads = threads
                    let plain = Convolution.conv2d(x, weight: wt, bias: bias, stride: c.stride, padding: c.pad)
                    let fast = Convolution.conv2d(x, weight: packed, bias: bias, stride: c.stride, padding: c.pad)
                    XCTAssertEqual(fast.shape, plain.shape)
                    XCTAssertEqual(bits(fast), bits(plain), "\(isa), \(threads) threads, \(c)")
                }
            }
        }
    }

    /// One Winograd plane's product runs on one thread (`ak_sgemm_packed_a_serial`): it must give
    /// the bits of the parallel driver's product with the same packed A, continuing a chain too.
    func testSerialPackedProductEqualsTheParallelOne() {
        var rng = SplitMix64(seed: 13)
        for (m, n, k) in [(7, 5, 3), (13, 37, Int(AK_KC) + 5), (250, 130, 2 * Int(AK_KC) + 1), (6, 2100, 40)] {
            let a = rng.normal([m, k]), b = rng.normal([k, n]), start = rng.normal([m, n])
            let packed = PackedWeightMatrix(packing: a)
            for isa in OwnGEMM.supportedISAs {
                OwnGEMM.select(isa: isa)
                for accumulate in [false, true] {
                    let parallel = start.copy(), serial = start.copy()
                    OwnGEMM.multiply(m: m, n: n, k: k, a: packed.operand, b: .matrix(b.pointer, ld: n, transposed: false),
                                     accumulate: accumulate, c: parallel.pointer, ldc: n, precision: .fp32)
                    ak_sgemm_packed_a_serial(Int32(m), Int32(n), Int32(k), packed.pointer, b.pointer, n,
                                             serial.pointer, n, accumulate ? 1 : 0)
                    XCTAssertEqual(bits(serial), bits(parallel), "\(isa), \(m)×\(n)×\(k), accumulate \(accumulate)")
                }
            }
        }
    }

    /// The OpenBLAS backend cannot read packed panels: it gets the plain weights back and computes
    /// what it computes for them.
    func testOpenBLASBackendRunsPackedWeightsThroughAnUnpackedCopy() {
        var rng = SplitMix64(seed: 9)
        let x = rng.normal([1, 7, 11, 10]), wt = rng.normal([9, 7, 3, 3]), bias = rng.normal([9])
        BLAS.backend = .openblas
        let plain = Convolution.conv2d(x, weight: wt, bias: bias, stride: 1, padding: .symmetric(1))
        let fromPacked = Convolution.conv2d(x, weight: LayerWeight.fp32Packed(PackedWeightMatrix(packing: wt)), bias: bias,
                                            stride: 1, padding: .symmetric(1))
        XCTAssertEqual(bits(fromPacked), bits(plain))
    }

    /// Weights are packed (and their mapped source released) when the layer first runs, once:
    /// packing at load made layers that never run (a txt2img render's VAE encoder) resident and
    /// raised an x4 upscale's peak by 0.27 GB.
    func testWeightsArePackedAndReleasedAtFirstUseOnlyOnce() {
        var rng = SplitMix64(seed: 13)
        let wt = rng.normal([8, 5, 3, 3]), x = rng.normal([1, 5, 6, 7])
        var released = 0
        let packed = PackedWeightMatrix(lazilyPacking: wt, release: { _ in released += 1 })
        let weight = LayerWeight.fp32Packed(packed)
        XCTAssertEqual(released, 0, "packed before the layer ran")
        XCTAssertEqual(bits(packed.unpacked()), bits(wt))
        XCTAssertEqual(released, 0, "reading the plain values must not pack them")
        let first = Convolution.conv2d(x, weight: weight, bias: nil, stride: 1, padding: .symmetric(1))
        XCTAssertEqual(released, 1)
        let second = Convolution.conv2d(x, weight: weight, bias: nil, stride: 1, padding: .symmetric(1))
        XCTAssertEqual(released, 1, "packed twice")
        XCTAssertEqual(bits(first), bits(second))
        XCTAssertEqual(bits(first), bits(Convolution.conv2d(x, weight: wt, bias: nil, stride: 1, padding: .symmetric(1))))
        XCTAssertEqual(bits(packed.unpacked()), bits(wt))
    }

    func testPackedWeightsKeepTheirShapeAndPrecision() {
        var rng = SplitMix64(seed: 1)
        let w = LayerWeight.fp32Packed(PackedWeightMatrix(packing: rng.normal([10, 4, 3, 3])))
        XCTAssertEqual(w.shape, [10, 4, 3, 3])
        XCTAssertEqual(w.precision, .fp32)
        XCTAssertEqual(w.fp32Values.shape, [10, 4, 3, 3])
    }
}
