import XCTest
import AtelierKernelsC
@testable import AtelierKernels

/// The bf16 precision's promise: both operands rounded to bf16 (nearest even), each C element one
/// fp32 chain over k pairs in order, odd k then even k, denormals read as zero and flushed —
/// `vdpbf16ps`'s arithmetic — on every instruction set and thread count, bit for bit. The
/// reference chain is computed here in Swift with `addingProduct` and explicit flushing, under
/// the test thread's default floating-point mode.
final class BF16GEMMTests: XCTestCase {
    override func tearDown() {
        OwnGEMM.select(isa: OwnGEMM.supportedISAs.last ?? "scalar")
        Parallel.threads = ProcessInfo.processInfo.activeProcessorCount
    }

    /// bf16 rounding as the kernels must do it, written independently of the C code.
    static func roundBF16(_ x: Float) -> Float {
        if x.isNaN { return x }
        if x.isSubnormal || x == 0 { return x.sign == .minus ? -0.0 : 0.0 }
        let u = x.bitPattern
        let r = (u &+ 0x7fff &+ ((u >> 16) & 1)) & 0xffff_0000
        return Float(bitPattern: r)
    }

    /// Flush-to-zero of a result (FTZ), keeping the sign.
    static func ftz(_ x: Float) -> Float { x.isSubnormal ? (x.sign == .minus ? -0.0 : 0.0) : x }

    /// C = A·B (A m×k row-major, B k×n row-major) + biasColumn, the vdpbf16ps chain.
    static func chain(m: Int, n: Int, k: Int, a: [Float], b: [Float], rowBias: [Float]?, colBias: [Float]?) -> [Float] {
        let ar = a.map(roundBF16), br = b.map(roundBF16)
        var out = [Float](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var acc: Float = 0
                var p = 0
                while p < k {
                    if p + 1 < k { acc = ftz(acc.addingProduct(ar[i * k + p + 1], br[(p + 1) * n + j])) }
                    acc = ftz(acc.addingProduct(ar[i * k + p], br[p * n + j]))
                    p += 2
                }
                if let rowBias { acc = ftz(acc + rowBias[i]) }
                if let colBias { acc = ftz(acc + colBias[j]) }
                out[i * n + j] = acc
            }
        }
        return out
    }

    func bits(_ x: [Float]) -> [UInt32] { x.map(\.bitPattern) }
    func bits(_ t: Tensor) -> [UInt32] { Array(UnsafeBufferPointer(start: t.pointer, count: t.count)).map(\.bitPattern) }

    /// Asserts equal bits, reporting the first difference instead of both arrays.
    func assertSameBits(_ got: [UInt32], _ expected: [UInt32], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.count, expected.count, what, file: file, line: line)
        if let i = got.indices.first(where: { $0 < expected.count && got[$0] != expected[$0] }) {
            let mismatches = zip(got, expected).filter { $0 != $1 }.count
            XCTFail("\(what): \(mismatches) of \(got.count) differ; first at \(i): \(Float(bitPattern: got[i])) vs \(Float(bitPattern: expected[i]))", file: file, line: line)
        }
    }

    func testRoundingIsNearestEvenKeepsNaNAndInfinityAndFlushesDenormals() {
        let cases: [(Float, UInt16)] = [
            (1.0, 0x3f80), (-2.5, 0xc020),
            (Float(bitPattern: 0x3f80_8000), 0x3f80),  // a tie rounds to even (down)
            (Float(bitPattern: 0x3f81_8000), 0x3f82),  // a tie rounds to even (up)
            (Float(bitPattern: 0x3f80_8001), 0x3f81),  // above the tie rounds up
            (.infinity, 0x7f80), (-.infinity, 0xff80),
            (Float(bitPattern: 0x7f7f_ffff), 0x7f80),  // the largest float rounds to infinity
            (Float.leastNonzeroMagnitude, 0x0000), (-Float.leastNormalMagnitude / 2, 0x8000),
            (Float.leastNormalMagnitude, 0x0080),
        ]
        for (x, expected) in cases {
            XCTAssertEqual(ak_bf16_from_float(x), expected, "\(x) (0x\(String(x.bitPattern, radix: 16)))")
        }
        let nan = ak_bf16_from_float(Float(bitPattern: 0x7f80_0001))  // a signalling NaN whose payload is all in the low half
        XCTAssertTrue(ak_float_from_bf16(nan).isNaN)
        XCTAssertEqual(ak_float_from_bf16(0x0001), 0, "a denormal bf16 reads as zero")
        var rng = SplitMix64(seed: 5)
        for _ in 0..<10_000 {
            let x = Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))
            let r = ak_float_from_bf16(ak_bf16_from_float(x))
            if x.isNaN { XCTAssertTrue(r.isNaN); continue }
            XCTAssertEqual(r.bitPattern, Self.roundBF16(x).bitPattern, "0x\(String(x.bitPattern, radix: 16))")
        }
    }

    /// fp32 activations × bf16 weights stored transposed (a linear layer), against the chain, on
    /// every instruction set and for 1, 2 and 3 threads; odd k and k across K-blocks included.
    func testLinearProductIsTheVdpbf16psChainOnEveryInstructionSetAndThreadCount() {
        var rng = SplitMix64(seed: 17)
        for (m, n, k) in [(7, 19, 5), (61, 37, 384), (100, 70, 769), (13, 600, 130)] {
            let x = rng.normal([m, k])
            let w = rng.normal([n, k])  // [out, in]
            let bias = rng.normal([n])
            let wb = BF16Tensor(rounding: w)
            let xs = Array(UnsafeBufferPointer(start: x.pointer, count: x.count))
            // B = Wᵀ for the reference, from the already rounded weights.
            let widened = wb.widened()
            let wr = Array(UnsafeBufferPointer(start: widened.pointer, count: n * k))
            var bT = [Float](repeating: 0, count: k * n)
            for j in 0..<n { for p in 0..<k { bT[p * n + j] = wr[j * k + p] } }
            let expected = bits(Self.chain(m: m, n: n, k: k, a: xs, b: bT, rowBias: nil,
                                           colBias: Array(UnsafeBufferPointer(start: bias.pointer, count: n))))
            for isa in OwnGEMM.supportedISAs {
                OwnGEMM.select(isa: isa)
                for threads in [1, 2, 3] {
                    Parallel.threads = threads
                    let y = LinearOp.linear(x, weight: .bf16(wb), bias: bias)
                    assertSameBits(bits(y), expected, "\(isa), \(threads) threads, \(m)×\(n)×\(k)")
                }
            }
        }
    }

    /// bf16 weights × the implicit im2col of fp32 activations (a convolution), against the chain
    /// on explicitly unrolled columns, on every instruction set and for 1, 2 and 3 threads.
    func testConvolutionIsTheVdpbf16psChainOnEveryInstructionSetAndThreadCount() {
        var rng = SplitMix64(seed: 23)
        for (cin, h, w, cout, kk, stride, pad) in [(3, 9, 13, 5, 3, 1, Padding2D.symmetric(1)), (5, 20, 21, 7, 3, 2, Padding2D(top: 0, left: 0, bottom: 1, right: 1)),
                                                     (43, 12, 12, 13, 3, 1, .symmetric(1)), (6, 7, 40, 9, 1, 1, Padding2D.none)] {
            let x = rng.normal([1, cin, h, w]), wt = rng.normal([cout, cin, kk, kk]), bias = rng.normal([cout])
            let wb = BF16Tensor(rounding: wt)
            let hout = (h + pad.top + pad.bottom - kk) / stride + 1, wout = (w + pad.left + pad.right - kk) / stride + 1
            let kdim = cin * kk * kk, cols = hout * wout
            let column = UnsafeMutablePointer<Float>.allocate(capacity: kdim * cols)
            defer { column.deallocate() }
            Convolution.im2col(x.pointer, channels: cin, height: h, width: w, kh: kk, kw: kk, stride: stride, padding: pad,
                               rowStart: 0, rows: hout, outWidth: wout, into: column)
            let widened = wb.widened()
            let expected = bits(Self.chain(m: cout, n: cols, k: kdim,
                                           a: Array(UnsafeBufferPointer(start: widened.pointer, count: cout * kdim)),
                                           b: Array(UnsafeBufferPointer(start: column, count: kdim * cols)),
                                           rowBias: Array(UnsafeBufferPointer(start: bias.pointer, count: cout)), colBias: nil))
            for isa in OwnGEMM.supportedISAs {
                OwnGEMM.select(isa: isa)
                for threads in [1, 2, 3] {
                    Parallel.threads = threads
                    let y = Convolution.conv2d(x, weight: .bf16(wb), bias: bias, stride: stride, padding: pad)
                    assertSameBits(bits(y), expected, "\(isa), \(threads) threads, cin \(cin) k \(kk) stride \(stride)")
                }
            }
        }
    }

    /// Denormal operands read as zero and denormal partial sums flush, as `vdpbf16ps` does: the
    /// emulation sets DAZ/FTZ for the GEMM, so tiny products vanish the same way everywhere.
    func testDenormalProductsAndSumsFlushToZeroOnEveryInstructionSet() {
        let (m, n, k) = (6, 16, 4)
        // Row i · column j: k=1 gives 2^-70 · 2^-70 = 2^-140, a denormal partial sum that must
        // flush; k=0 reads the denormal 2^-130 as zero; k=3 gives the normal v_j = 2^-126·(j+1).
        // Without DAZ/FTZ the result would be v_j + 2^-130 + 2^-140, different bits.
        var a = [Float](repeating: 0, count: m * k)
        var b = [Float](repeating: 0, count: k * n)
        for i in 0..<m { a[i * k + 0] = 0x1p-130; a[i * k + 1] = 0x1p-70; a[i * k + 3] = 1 }
        for j in 0..<n { b[0 * n + j] = 1; b[1 * n + j] = 0x1p-70; b[3 * n + j] = 0x1p-126 * Float(j + 1) }
        let expected = Self.chain(m: m, n: n, k: k, a: a, b: b, rowBias: nil, colBias: nil)
        XCTAssertEqual(expected[0], 0x1p-126, "the reference itself flushes the denormal sums")
        XCTAssertNotEqual(Float(0x1p-126).addingProduct(0x1p-70, 0x1p-70) + 0x1p-130, 0x1p-126, "without flushing the bits would differ")
        for isa in OwnGEMM.supportedISAs {
            OwnGEMM.select(isa: isa)
            let bT = (0..<(n * k)).map { idx in b[(idx % k) * n + idx / k] }  // [n][k]
            let wb = BF16Tensor(rounding: Tensor(shape: [n, k], values: bT))
            let y = LinearOp.linear(Tensor(shape: [m, k], values: a), weight: .bf16(wb), bias: nil)
            assertSameBits(bits(y), bits(expected), isa)
        }
    }

    /// The GEMM sets DAZ/FTZ only while it runs: the caller's floating-point mode is unchanged.
    func testTheCallersFloatingPointModeIsRestored() {
        let wb = BF16Tensor(rounding: Tensor(shape: [16, 8], repeating: 0.5))
        _ = LinearOp.linear(Tensor(shape: [64, 8], repeating: 1), weight: .bf16(wb), bias: nil)
        var tiny = Float.leastNormalMagnitude
        withExtendedLifetime(tiny) {}
        tiny = tiny / 4
        XCTAssertTrue(tiny.isSubnormal, "denormals must still exist on the calling thread after a bf16 GEMM")
    }

    /// On CPUs with AVX512_BF16, the instruction itself equals the emulated chain (odd pair first,
    /// DAZ/FTZ) on random lanes, denormal lanes included: the fact the numerics class rests on.
    func testVdpbf16psEqualsTheOddThenEvenFMAPairWhereTheCPUHasIt() throws {
        guard ak_isa_detected() >= Int32(AK_ISA_AVX512BF16.rawValue) else {
            throw XCTSkip("this CPU has no AVX512_BF16; the emulated path is checked by the other tests")
        }
        var rng = SplitMix64(seed: 99)
        let n = 1 << 16
        var a = [UInt32](repeating: 0, count: n), b = a
        var acc = [Float](repeating: 0, count: n), out = acc
        func randomBF16() -> UInt16 {
            let r = rng.next()
            let exponent = r % 8 == 0 ? 0 : UInt64(127 - 20) + (r >> 8) % 40  // 1 in 8 denormal
            return UInt16(truncatingIfNeeded: ((r >> 60) & 1) << 15 | exponent << 7 | (r >> 20) & 0x7f)
        }
        for i in 0..<n {
            a[i] = UInt32(randomBF16()) | UInt32(randomBF16()) << 16
            b[i] = UInt32(randomBF16()) | UInt32(randomBF16()) << 16
            acc[i] = Float(rng.uniform() * 2 - 1) * (i % 5 == 0 ? 0x1p-125 : 1)
        }
        let done = ak_dpbf16_hardware(a, b, acc, n, &out)
        XCTAssertEqual(done, n)
        for i in 0..<n {
            let wide = { (h: UInt32) in Float(bitPattern: h << 16).isSubnormal ? 0 : Float(bitPattern: h << 16) }
            let c0 = Self.ftz(acc[i])
            let odd = Self.ftz(c0.addingProduct(wide(a[i] >> 16), wide(b[i] >> 16)))
            let both = Self.ftz(odd.addingProduct(wide(a[i] & 0xffff), wide(b[i] & 0xffff)))
            XCTAssertEqual(out[i].bitPattern, both.bitPattern, "lane \(i)")
            if out[i].bitPattern != both.bitPattern { break }
        }
    }
}
