import XCTest
import AtelierKernelsC
@testable import AtelierKernels

/// The bf16 precision's promise: both operands rounded to bf16 (nearest even), each C element one
/// fp32 chain over k pairs in order, odd k then even k, denormals read as zero and flushed —
/// `vdpbf16ps`'s arithmetic — on every instruction set and thread count, bit for bit; on AMX tiles
/// (family "amxbf16") the tiles' own sums, bit for bit, for every thread count. The
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
        product(m: m, n: n, k: k, a: a, b: b, rowBias: rowBias, colBias: colBias, amx: false)
    }

    /// The same product as AMX tiles sum it (family "amxbf16", the Intel SDM's `tdpbf16ps`): each
    /// K-block (`AK_KC` deep) of at least 16 pairs in 16-pair steps, per step an even and an odd
    /// chain from zero (pairs past the block count as zero), their sum added to C; shorter K-blocks
    /// as the vdpbf16ps chain.
    static func chainAMX(m: Int, n: Int, k: Int, a: [Float], b: [Float], rowBias: [Float]?, colBias: [Float]?) -> [Float] {
        product(m: m, n: n, k: k, a: a, b: b, rowBias: rowBias, colBias: colBias, amx: true)
    }

    static func product(m: Int, n: Int, k: Int, a: [Float], b: [Float], rowBias: [Float]?, colBias: [Float]?, amx: Bool) -> [Float] {
        let ar = a.map(roundBF16), br = b.map(roundBF16)
        let kcMax = amx ? Int(AK_KC) : max(1, k)  // the vdpbf16ps chain does not depend on K-blocks
        var out = [Float](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var acc: Float = 0
                for k0 in stride(from: 0, to: k, by: kcMax) {
                    let kc = min(kcMax, k - k0), kp = (kc + 1) / 2
                    if amx && kp >= 16 {
                        for s in 0..<((kp + 15) / 16) {
                            var even: Float = 0, odd: Float = 0
                            for q in (16 * s)..<(16 * s + 16) {
                                let pe = k0 + 2 * q, po = pe + 1
                                let ae: Float = q < kp ? ar[i * k + pe] : 0, be: Float = q < kp ? br[pe * n + j] : 0
                                let ao: Float = 2 * q + 1 < kc ? ar[i * k + po] : 0, bo: Float = 2 * q + 1 < kc ? br[po * n + j] : 0
                                even = ftz(even.addingProduct(ae, be))
                                odd = ftz(odd.addingProduct(ao, bo))
                            }
                            acc = ftz(acc + ftz(even + odd))
                        }
                        continue
                    }
                    // vdpbf16ps: one chain through C, each pair odd k first, then even k.
                    for p in stride(from: k0, to: k0 + kc, by: 2) {
                        if p + 1 < k0 + kc { acc = ftz(acc.addingProduct(ar[i * k + p + 1], br[(p + 1) * n + j])) }
                        acc = ftz(acc.addingProduct(ar[i * k + p], br[p * n + j]))
                    }
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

    /// Weights are rounded in bulk at load (16 at a time on AVX2): every bit pattern — NaNs,
    /// infinities, denormals, ties — rounds as the scalar rule does, on every instruction set and
    /// for lengths that end mid-vector.
    func testBulkRoundingEqualsTheScalarRuleOnEveryInstructionSet() {
        var rng = SplitMix64(seed: 71)
        var src = (0..<10_007).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: rng.next())) }
        src += [.nan, -.infinity, .infinity, 0, -0.0, .leastNonzeroMagnitude, -.leastNormalMagnitude / 2,
                Float(bitPattern: 0x3f80_8000), Float(bitPattern: 0x3f81_8000), Float(bitPattern: 0x7f7f_ffff)]
        let expected = src.map { ak_bf16_from_float($0) }
        for isa in OwnGEMM.supportedISAs {
            OwnGEMM.select(isa: isa)
            for n in [src.count, 31, 16, 5] {
                var dst = [UInt16](repeating: 0xdead, count: n)
                ak_f32_to_bf16(src, &dst, n)
                XCTAssertEqual(dst, Array(expected.prefix(n)), "\(isa), \(n) values")
            }
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
            let colBias = Array(UnsafeBufferPointer(start: bias.pointer, count: n))
            let expected = bits(Self.chain(m: m, n: n, k: k, a: xs, b: bT, rowBias: nil, colBias: colBias))
            let expectedAMX = bits(Self.chainAMX(m: m, n: n, k: k, a: xs, b: bT, rowBias: nil, colBias: colBias))
            // Every K-block packed at once (the default), and one K-block at a time.
            for budget in [8 << 20, 0] {
                OwnGEMM.wholeDepthBudget = budget
                defer { OwnGEMM.wholeDepthBudget = 8 << 20 }
                for isa in OwnGEMM.supportedISAs {
                    OwnGEMM.select(isa: isa)
                    for threads in [1, 2, 3] {
                        Parallel.threads = threads
                        let y = LinearOp.linear(x, weight: .bf16(wb), bias: bias)
                        assertSameBits(bits(y), isa == "amxbf16" ? expectedAMX : expected,
                                       "\(isa), \(threads) threads, \(m)×\(n)×\(k), whole-depth budget \(budget)")
                    }
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
            let av = Array(UnsafeBufferPointer(start: widened.pointer, count: cout * kdim))
            let bv = Array(UnsafeBufferPointer(start: column, count: kdim * cols))
            let rowBias = Array(UnsafeBufferPointer(start: bias.pointer, count: cout))
            let expected = bits(Self.chain(m: cout, n: cols, k: kdim, a: av, b: bv, rowBias: rowBias, colBias: nil))
            let expectedAMX = bits(Self.chainAMX(m: cout, n: cols, k: kdim, a: av, b: bv, rowBias: rowBias, colBias: nil))
            for isa in OwnGEMM.supportedISAs {
                OwnGEMM.select(isa: isa)
                for threads in [1, 2, 3] {
                    Parallel.threads = threads
                    let y = Convolution.conv2d(x, weight: .bf16(wb), bias: bias, stride: stride, padding: pad)
                    assertSameBits(bits(y), isa == "amxbf16" ? expectedAMX : expected,
                                   "\(isa), \(threads) threads, cin \(cin) k \(kk) stride \(stride)")
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
            // A denormal input reads as zero of its own sign (x86's DAZ), as the packers make it.
            let wide = { (h: UInt32) -> Float in
                let f = Float(bitPattern: h << 16)
                return f.isSubnormal ? (f.sign == .minus ? -0.0 : 0.0) : f
            }
            let c0 = Self.ftz(acc[i])
            let odd = Self.ftz(c0.addingProduct(wide(a[i] >> 16), wide(b[i] >> 16)))
            let both = Self.ftz(odd.addingProduct(wide(a[i] & 0xffff), wide(b[i] & 0xffff)))
            XCTAssertEqual(out[i].bitPattern, both.bitPattern, "lane \(i)")
            if out[i].bitPattern != both.bitPattern { break }
        }
    }

    /// The default family multiplies bf16 on whichever unit is faster on this CPU: with AVX512_BF16
    /// (and no AMX), avx512bf16 where `vdpbf16ps` out-runs the fp32 FMAs and avx512 (the emulated
    /// layout on the fp32 kernels: the same bits, as the tests above check) where it does not,
    /// as on a Xeon model 0xCF, where it issues every other cycle; elsewhere the best family the CPU has.
    func testTheDefaultFamilyMultipliesBF16OnTheFasterUnit() {
        let detected = ak_isa_detected(), ratio = ak_vdpbf16ps_rate_ratio()
        let bf16 = Int32(AK_ISA_AVX512BF16.rawValue)
        if detected >= bf16 {
            // Measured issue rates (in scripts/avx512-emulation-check.sh, of the emulations).
            XCTAssertGreaterThan(ratio, 0)
            XCTAssertTrue(ratio.isFinite)
        } else {
            XCTAssertEqual(ratio, 0, "a CPU without AVX512_BF16 has no vdpbf16ps rate")
        }
        let expected = detected == bf16 ? (ratio < 1 ? Int32(AK_ISA_AVX512.rawValue) : bf16) : detected
        XCTAssertEqual(ak_isa_default(), expected, "ratio \(ratio)")
        XCTAssertEqual(OwnGEMM.bf16ProductsNote != nil, ak_isa_current() == Int32(AK_ISA_AVX512.rawValue) && ratio > 0)
    }

    /// On CPUs with AVX512_BF16, the activations' rounding runs on `vcvtne2ps2bf16`: it must equal
    /// the scalar rule the other families use (nearest even, NaN quieted, denormals to signed zero)
    /// on every kind of value, or a bf16 image would depend on the CPU.
    func testVcvtne2ps2bf16RoundsAsTheScalarRuleWhereTheCPUHasIt() throws {
        guard ak_isa_detected() >= Int32(AK_ISA_AVX512BF16.rawValue) else {
            throw XCTSkip("this CPU has no AVX512_BF16; the emulation check covers the instruction's SDM form")
        }
        let saved = OwnGEMM.isaName
        defer { OwnGEMM.select(isa: saved) }
        XCTAssertTrue(OwnGEMM.select(isa: "avx512bf16"))
        var rng = SplitMix64(seed: 7)
        let n = 1 << 18 + 13  // a ragged tail: the last values take the AVX2 and scalar paths
        var bits = [UInt32](repeating: 0, count: n)
        for i in 0..<n {
            let r = rng.next()
            switch i % 8 {
            case 0: bits[i] = UInt32(truncatingIfNeeded: r) & 0x807f_ffff  // zero or denormal
            case 1: bits[i] = UInt32(truncatingIfNeeded: r) | 0x7f80_0000  // NaN (quiet or signalling) or infinity
            case 2: bits[i] = UInt32(truncatingIfNeeded: r) & 0xffff_0000 | 0x8000  // a tie
            case 3: bits[i] = UInt32(truncatingIfNeeded: r) & 0x8000_7fff | 0x7f7f_8000  // rounds up to infinity or not
            default: bits[i] = UInt32(truncatingIfNeeded: r)
            }
        }
        let values = bits.map { Float(bitPattern: $0) }
        var out = [UInt16](repeating: 0, count: n)
        ak_f32_to_bf16(values, &out, n)
        for i in 0..<n where out[i] != ak_bf16_from_float(values[i]) {
            XCTFail(String(format: "0x%08x: instruction 0x%04x, rule 0x%04x", bits[i], out[i], ak_bf16_from_float(values[i])))
            break
        }
    }

    /// The AMX family is a bf16 numerics class of its own and is named so; every other family is
    /// the vdpbf16ps class (with fp32 Winograd convolutions). A CPU without AMX refuses the family rather than faking it.
    func testAMXTilesAreANumericsClassOfTheirOwn() {
        for isa in OwnGEMM.supportedISAs {
            XCTAssertTrue(OwnGEMM.select(isa: isa))
            let products = isa == "amxbf16" ? "atelier-bf16amxa" : "atelier-bf16dpw"
            if BLAS.backend == .atelier { XCTAssertTrue(BLAS.numericsClass(.bf16).hasPrefix(products), "\(isa): \(BLAS.numericsClass(.bf16))") }
        }
        if !OwnGEMM.supportedISAs.contains("amxbf16") {
            XCTAssertFalse(OwnGEMM.select(isa: "amxbf16"), "a CPU without AMX must refuse the family")
            var c = [Float](repeating: 0, count: 256)
            XCTAssertEqual(ak_tdpbf16ps_hardware([UInt32](repeating: 0, count: 256), [UInt32](repeating: 0, count: 256), &c), 0)
        }
    }

    /// On CPUs with AMX-BF16, `tdpbf16ps` itself equals the Intel SDM's definition that the AMX
    /// macro-kernel's emulation check and `chainAMX` rest on: per output an even and an odd chain
    /// from zero, their sum added to C, denormals read as zero and flushed.
    func testTdpbf16psEqualsTheSDMSumsWhereTheCPUHasAMX() throws {
        guard ak_isa_detected() >= Int32(AK_ISA_AMXBF16.rawValue) else {
            throw XCTSkip("this CPU has no AMX-BF16 (or the OS refused the tile state); the emulation check covers the kernel")
        }
        var rng = SplitMix64(seed: 101)
        func randomBF16() -> UInt16 {
            let r = rng.next()
            let exponent = r % 8 == 0 ? 0 : UInt64(127 - 20) + (r >> 8) % 40  // 1 in 8 denormal
            return UInt16(truncatingIfNeeded: ((r >> 60) & 1) << 15 | exponent << 7 | (r >> 20) & 0x7f)
        }
        let wide = { (h: UInt32) -> Float in
            let f = Float(bitPattern: (h & 0xffff) << 16)
            return f.isSubnormal ? (f.sign == .minus ? -0.0 : 0.0) : f
        }
        for trial in 0..<64 {
            let a = (0..<256).map { _ in UInt32(randomBF16()) | UInt32(randomBF16()) << 16 }  // [16 rows][16 pairs]
            let b = (0..<256).map { _ in UInt32(randomBF16()) | UInt32(randomBF16()) << 16 }  // [16 pairs][16 cols]
            var c = (0..<256).map { i in Float(rng.uniform() * 2 - 1) * (i % 7 == 0 ? 0x1p-120 : 1) }
            var expected = c
            for m in 0..<16 {
                for n in 0..<16 {
                    var even: Float = 0, odd: Float = 0
                    for k in 0..<16 {
                        even = Self.ftz(even.addingProduct(wide(a[m * 16 + k]), wide(b[k * 16 + n])))
                        odd = Self.ftz(odd.addingProduct(wide(a[m * 16 + k] >> 16), wide(b[k * 16 + n] >> 16)))
                    }
                    expected[m * 16 + n] = Self.ftz(Self.ftz(c[m * 16 + n]) + Self.ftz(even + odd))
                }
            }
            XCTAssertEqual(ak_tdpbf16ps_hardware(a, b, &c), 1)
            assertSameBits(bits(c), bits(expected), "trial \(trial)")
        }
    }
}
