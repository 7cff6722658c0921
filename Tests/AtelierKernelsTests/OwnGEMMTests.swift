import XCTest
import AtelierKernelsC
@testable import AtelierKernels

/// The own GEMM kernels' promise: every C element is one fma chain over k in order, so every
/// instruction set, tile size and thread count gives the same bits — checked against a chain
/// computed here in Swift with `addingProduct` (a fused multiply-add).
final class OwnGEMMTests: XCTestCase {
    override func tearDown() {
        OwnGEMM.select(isa: OwnGEMM.supportedISAs.last ?? "scalar")
        Parallel.threads = ProcessInfo.processInfo.activeProcessorCount
        OwnGEMM.wholeDepthBudget = 8 << 20
    }

    struct Case { var m, n, k: Int; var transA, transB, accumulate: Bool; var alpha: Float; var rowBias, colBias: Bool }

    /// The chain the kernels must reproduce bit for bit.
    static func chain(_ c: Case, a: [Float], b: [Float], c0: [Float], rowBias: [Float], colBias: [Float]) -> [Float] {
        var out = [Float](repeating: 0, count: c.m * c.n)
        for i in 0..<c.m {
            for j in 0..<c.n {
                var acc: Float = c.accumulate ? c0[i * c.n + j] : 0
                for p in 0..<c.k {
                    let av = c.transA ? a[p * c.m + i] : a[i * c.k + p]
                    let bv = c.transB ? b[j * c.k + p] : b[p * c.n + j]
                    acc = acc.addingProduct(av, bv)
                }
                if c.alpha != 1 { acc = acc * c.alpha }
                if c.rowBias { acc = acc + rowBias[i] }
                if c.colBias { acc = acc + colBias[j] }
                out[i * c.n + j] = acc
            }
        }
        return out
    }

    static func run(_ c: Case, a: [Float], b: [Float], c0: [Float], rowBias: [Float], colBias: [Float]) -> [Float] {
        var out = c0
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                rowBias.withUnsafeBufferPointer { rb in
                    colBias.withUnsafeBufferPointer { cb in
                        out.withUnsafeMutableBufferPointer { op in
                            OwnGEMM.multiply(m: c.m, n: c.n, k: c.k, alpha: c.alpha,
                                             a: ap.baseAddress!, lda: c.transA ? c.m : max(c.k, 1), transA: c.transA,
                                             b: .matrix(bp.baseAddress!, ld: c.transB ? max(c.k, 1) : c.n, transposed: c.transB),
                                             accumulate: c.accumulate, c: op.baseAddress!, ldc: c.n,
                                             biasRow: c.rowBias ? rb.baseAddress! : nil,
                                             biasColumn: c.colBias ? cb.baseAddress! : nil)
                        }
                    }
                }
            }
        }
        return out
    }

    func bits(_ x: [Float]) -> [UInt32] { x.map(\.bitPattern) }

    func testEveryInstructionSetGivesTheBitsOfOneFMAChainPerElement() {
        var rng = SplitMix64(seed: 7)
        var cases: [Case] = []
        for (m, n, k) in [(1, 1, 1), (6, 16, 8), (7, 17, 3), (13, 40, 257), (5, 33, 0), (12, 64, 600), (31, 9, 300), (2, 70, 513)] {
            for variant in 0..<4 {
                cases.append(Case(m: m, n: n, k: k, transA: variant & 1 == 1, transB: variant & 2 == 2,
                                  accumulate: variant == 3, alpha: variant == 1 ? 0.125 : 1,
                                  rowBias: variant == 2, colBias: variant >= 1))
            }
        }
        for isa in OwnGEMM.supportedISAs {
            XCTAssertTrue(OwnGEMM.select(isa: isa))
            for c in cases {
                let a = (0..<(c.m * max(c.k, 1))).map { _ in Float(rng.uniform() * 2 - 1) }
                let b = (0..<(max(c.k, 1) * c.n)).map { _ in Float(rng.uniform() * 2 - 1) }
                let c0 = (0..<(c.m * c.n)).map { _ in Float(rng.uniform()) }
                let rb = (0..<c.m).map { _ in Float(rng.uniform()) }, cb = (0..<c.n).map { _ in Float(rng.uniform()) }
                XCTAssertEqual(bits(Self.run(c, a: a, b: b, c0: c0, rowBias: rb, colBias: cb)),
                               bits(Self.chain(c, a: a, b: b, c0: c0, rowBias: rb, colBias: cb)), "\(isa) \(c)")
            }
        }
        if !OwnGEMM.supportedISAs.contains("avx512") {
            print("note: this CPU has no AVX-512; the AVX-512 kernel was not exercised here")
        }
    }

    /// Big enough for the parallel driver (several K-blocks, row blocks, column splits).
    func testResultsAreIdenticalForOneTwoAndThreeThreadsAndEveryInstructionSet() {
        var rng = SplitMix64(seed: 11)
        // Tall (each task packs its rows of A) and wide (A packed once, shared by column chunks).
        for (m, n, k) in [(200, 300, 700), (50, 1300, 500)] {
        let a = (0..<(m * k)).map { _ in Float(rng.uniform() * 2 - 1) }
        let b = (0..<(n * k)).map { _ in Float(rng.uniform() * 2 - 1) }
        let bias = (0..<n).map { _ in Float(rng.uniform()) }
        let c = Case(m: m, n: n, k: k, transA: false, transB: true, accumulate: false, alpha: 1, rowBias: false, colBias: true)
        let expected = bits(Self.chain(c, a: a, b: b, c0: [], rowBias: [], colBias: bias))
        // Every K-block packed at once (the default at these sizes), and one K-block at a time.
        for budget in [8 << 20, 0] {
            OwnGEMM.wholeDepthBudget = budget
            for isa in OwnGEMM.supportedISAs {
                OwnGEMM.select(isa: isa)
                for threads in [1, 2, 3] {
                    Parallel.threads = threads
                    XCTAssertEqual(bits(Self.run(c, a: a, b: b, c0: [Float](repeating: 0, count: m * n), rowBias: [], colBias: bias)),
                                   expected, "\(isa), \(threads) threads, \(m)×\(n)×\(k), whole-depth budget \(budget)")
                }
            }
        }
        }
    }

    /// The implicit im2col (packing straight from the image) is the same matrix as an explicit
    /// one, so the convolution equals the GEMM on the unrolled columns, bit for bit.
    func testImplicitConvolutionEqualsTheGEMMOnExplicitColumns() {
        var rng = SplitMix64(seed: 3)
        for (cin, h, w, cout, kk, stride, pad) in [(3, 9, 13, 5, 3, 1, Padding2D.symmetric(1)), (4, 20, 20, 7, 3, 2, Padding2D(top: 0, left: 0, bottom: 1, right: 1)),
                                                     (2, 5, 37, 3, 1, 1, Padding2D.none), (5, 16, 16, 8, 3, 1, .symmetric(1)),
                                                     (4, 40, 41, 20, 3, 1, .symmetric(1))] {
            let x = rng.normal([2, cin, h, w]), wt = rng.normal([cout, cin, kk, kk]), bias = rng.normal([cout])
            for isa in OwnGEMM.supportedISAs {
                OwnGEMM.select(isa: isa)
                let y = Convolution.conv2d(x, weight: wt, bias: bias, stride: stride, padding: pad)
                let (hout, wout) = (y.shape[2], y.shape[3])
                let kdim = cin * kk * kk
                let cols = UnsafeMutablePointer<Float>.allocate(capacity: kdim * hout * wout)
                defer { cols.deallocate() }
                for bi in 0..<2 {
                    Convolution.im2col(x.pointer + bi * cin * h * w, channels: cin, height: h, width: w, kh: kk, kw: kk,
                                       stride: stride, padding: pad, rowStart: 0, rows: hout, outWidth: wout, into: cols)
                    let ref = Tensor(uninitialized: [cout, hout * wout])
                    OwnGEMM.multiply(m: cout, n: hout * wout, k: kdim, a: wt.pointer, lda: kdim,
                                     b: .matrix(cols, ld: hout * wout, transposed: false), c: ref.pointer, ldc: hout * wout,
                                     biasRow: bias.pointer)
                    let got = Array(UnsafeBufferPointer(start: y.pointer + bi * cout * hout * wout, count: cout * hout * wout))
                    XCTAssertEqual(bits(got), bits(Array(UnsafeBufferPointer(start: ref.pointer, count: ref.count))), "\(isa) cin \(cin) stride \(stride)")
                }
            }
        }
    }

    /// Both backends compute the same products (OpenBLAS rounds differently, so within a bound).
    func testBothBackendsAgreeWithADoublePrecisionProduct() {
        var rng = SplitMix64(seed: 5)
        let (m, n, k) = (70, 90, 300)
        let a = (0..<(m * k)).map { _ in Float(rng.uniform() * 2 - 1) }, b = (0..<(k * n)).map { _ in Float(rng.uniform() * 2 - 1) }
        var ref = [Double](repeating: 0, count: m * n)
        for i in 0..<m { for j in 0..<n { var s = 0.0; for p in 0..<k { s += Double(a[i * k + p]) * Double(b[p * n + j]) }; ref[i * n + j] = s } }
        let saved = BLAS.backend
        defer { BLAS.backend = saved }
        for backend in BLAS.Backend.allCases {
            BLAS.backend = backend
            var c = [Float](repeating: 0, count: m * n)
            a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
                BLAS.gemm(m: m, n: n, k: k, a: ap.baseAddress!, lda: k, b: bp.baseAddress!, ldb: n, c: cp.baseAddress!, ldc: n)
            } } }
            let worst = zip(c, ref).map { abs(Double($0) - $1) }.max() ?? 0
            XCTAssertLessThan(worst, 1e-4, "\(backend)")
        }
    }
}

