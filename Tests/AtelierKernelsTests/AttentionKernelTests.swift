import XCTest
import AtelierKernelsC
@testable import AtelierKernels

/// `ak_attention_rows` only re-orders the work of the three-call form (Q·Kᵀ GEMM, softmax rows,
/// P·V GEMM): same bits on every ISA and thread count, whatever the row split.
final class AttentionKernelTests: XCTestCase {
    override func tearDown() {
        OwnGEMM.select(isa: OwnGEMM.supportedISAs.last ?? "scalar")
        Parallel.threads = ProcessInfo.processInfo.activeProcessorCount
    }

    func bits(_ t: Tensor) -> [UInt32] { Array(UnsafeBufferPointer(start: t.pointer, count: t.count)).map(\.bitPattern) }

    /// The three-call form, one head at a time: the own serial GEMM (fp32), or OwnGEMM's bf16
    /// precision (Q·Kᵀ scaled in the epilogue, P·V), with the fp32 softmax rows between.
    static func threeCalls(q: Tensor, k: Tensor, v: Tensor, heads: Int, causal: Bool, precision: OwnGEMM.Precision = .fp32) -> Tensor {
        let (b, n, cq, m, cv) = (q.shape[0], q.shape[1], q.shape[2], k.shape[1], v.shape[2])
        let (d, dv) = (cq / heads, cv / heads)
        let s = 1 / Float(d).squareRoot()
        let out = Tensor(uninitialized: [b, n, cv])
        let scores = UnsafeMutablePointer<Float>.allocate(capacity: max(1, n * m))
        defer { scores.deallocate() }
        for bi in 0..<b {
            for h in 0..<heads {
                let (qh, kh) = (q.pointer + bi * n * cq + h * d, k.pointer + bi * m * cq + h * d)
                let (vh, oh) = (v.pointer + bi * m * cv + h * dv, out.pointer + bi * n * cv + h * dv)
                if precision == .bf16 {
                    OwnGEMM.multiply(m: n, n: m, k: d, alpha: s, a: .matrix(qh, ld: cq, transposed: false),
                                     b: .matrix(kh, ld: cq, transposed: true), c: scores, ldc: m, precision: .bf16)
                } else {
                    ak_sgemm_serial(Int32(n), Int32(m), Int32(d), s, qh, cq, 0, kh, cq, 1, scores, m, 0, nil, nil)
                }
                for r in 0..<n { ak_softmax_row(scores + r * m, Int32(m), Int32(causal ? min(m, r + 1) : m)) }
                if precision == .bf16 {
                    OwnGEMM.multiply(m: n, n: dv, k: m, a: .matrix(scores, ld: m, transposed: false),
                                     b: .matrix(vh, ld: cv, transposed: false), c: oh, ldc: cv, precision: .bf16)
                } else {
                    ak_sgemm_serial(Int32(n), Int32(dv), Int32(m), 1, scores, m, 0, vh, cv, 0, oh, cv, 0, nil, nil)
                }
            }
        }
        return out
    }

    func testPackedHeadAttentionIsBitIdenticalToTheThreeCallFormOnEveryISAAndThreadCount() {
        var rng = SplitMix64(seed: 17)
        // (batch, queries, keys, heads, head width, value width, causal): rows not a multiple of the
        // 48-row block, keys across K-blocks (900 > 384), a head deeper than a K-block (400),
        // one head (rows split across threads), causal text-encoder shape.
        let cases: [(Int, Int, Int, Int, Int, Int, Bool)] = [
            (2, 100, 77, 5, 8, 8, false), (1, 130, 900, 2, 16, 24, false), (1, 61, 50, 1, 400, 40, false),
            (2, 77, 77, 2, 12, 12, true), (1, 1, 3, 1, 4, 4, false),
        ]
        for (b, n, m, heads, d, dv, causal) in cases {
            let q = rng.normal([b, n, heads * d]), k = rng.normal([b, m, heads * d]), v = rng.normal([b, m, heads * dv])
            let expected = bits(Self.threeCalls(q: q, k: k, v: v, heads: heads, causal: causal))
            for isa in OwnGEMM.supportedISAs {
                OwnGEMM.select(isa: isa)
                for threads in [1, 2, 3] {
                    Parallel.threads = threads
                    let y = AttentionOp.attention(q: q, k: k, v: v, heads: heads, causal: causal)
                    XCTAssertEqual(bits(y), expected, "\(isa), \(threads) threads, b \(b) n \(n) m \(m) heads \(heads) d \(d)")
                }
            }
        }
    }

    /// bf16 attention (a bf16 UNet's) is the three-call form on the bf16 GEMM, bit for bit, on every
    /// instruction set and thread count; and it is not the fp32 attention (the precision is used).
    func testBF16AttentionIsTheThreeCallFormOnTheBF16GEMMOnEveryISAAndThreadCount() {
        var rng = SplitMix64(seed: 29)
        // Keys across K-blocks and of odd count (pairs with a missing k), a head of 64 (SD2's: 32
        // pairs, AMX tiles where present) and one of 8 (4 pairs: vdpbf16ps even there), causal.
        let cases: [(Int, Int, Int, Int, Int, Int, Bool)] = [
            (2, 100, 77, 2, 64, 64, false), (1, 130, 901, 1, 8, 24, false), (1, 61, 50, 1, 400, 40, false),
            (2, 77, 77, 2, 12, 12, true),
        ]
        for (b, n, m, heads, d, dv, causal) in cases {
            let q = rng.normal([b, n, heads * d]), k = rng.normal([b, m, heads * d]), v = rng.normal([b, m, heads * dv])
            for isa in OwnGEMM.supportedISAs {
                OwnGEMM.select(isa: isa)
                Parallel.threads = 2
                let expected = bits(Self.threeCalls(q: q, k: k, v: v, heads: heads, causal: causal, precision: .bf16))
                XCTAssertNotEqual(expected, bits(Self.threeCalls(q: q, k: k, v: v, heads: heads, causal: causal)), "bf16 is not fp32")
                for threads in [1, 2, 3] {
                    Parallel.threads = threads
                    let y = AttentionOp.attention(q: q, k: k, v: v, heads: heads, causal: causal, precision: .bf16)
                    XCTAssertEqual(bits(y), expected, "\(isa), \(threads) threads, b \(b) n \(n) m \(m) heads \(heads) d \(d)")
                }
            }
        }
    }
}
