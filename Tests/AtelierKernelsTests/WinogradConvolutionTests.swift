import XCTest
import AtelierKernelsC
@testable import AtelierKernels

/// Winograd F(2×2, 3×3) and F(4×4, 3×3) convolutions: close to a double-precision sum (F(2×2) as
/// close as the direct form), and deterministic: the same bits on every ISA, thread count, band
/// split and weight K-blocking, and from plain or packed weights.
final class WinogradConvolutionTests: XCTestCase {
    override func tearDown() {
        OwnGEMM.select(isa: OwnGEMM.supportedISAs.last ?? "scalar")
        Parallel.threads = ProcessInfo.processInfo.activeProcessorCount
        WinogradConvolution.enabled = true
        WinogradConvolution.largeTiles = true
        WinogradConvolution.minimumPixels = 1024
        WinogradConvolution.minimumPixelsLarge = 512
        WinogradConvolution.budget = 4 << 20
        WinogradConvolution.weightBudget = 8 << 20
        WinogradConvolution.fusedMaxTiles = 64
        WinogradConvolution.fusedRows = 48
    }

    /// Every layer of a test runs `form` (where its output is at least 4×4 for F(4×4)).
    func use(_ form: WinogradConvolution.Form) {
        WinogradConvolution.enabled = true
        WinogradConvolution.largeTiles = form == .f4
        WinogradConvolution.minimumPixels = 1
        WinogradConvolution.minimumPixelsLarge = 1
    }

    func bits(_ t: Tensor) -> [UInt32] { Array(UnsafeBufferPointer(start: t.pointer, count: t.count)).map(\.bitPattern) }

    /// Odd and even sizes (partial last tiles), asymmetric padding (the VAE's row bands), no bias,
    /// more input channels than a K-block (F(4×4) then transforms its weights in blocks), and rows
    /// wide enough for every path of the F(4×4) input gather (32 columns inside the row, the first
    /// block of a padding-1 row, the edges), with padding 1 and 0.
    static let cases: [(n: Int, cin: Int, h: Int, w: Int, cout: Int, pad: Padding2D, bias: Bool)] = [
        (2, 16, 16, 16, 24, .symmetric(1), true), (1, 9, 13, 21, 10, .symmetric(1), true),
        (1, 12, 11, 17, 8, Padding2D(top: 0, left: 1, bottom: 2, right: 1), false), (2, 8, 7, 5, 9, .none, true),
        (1, Int(AK_KC) + 17, 7, 9, 13, .symmetric(1), true),
        (1, 8, 6, 70, 8, .symmetric(1), true), (1, 8, 5, 41, 9, .none, false),
    ]

    /// Random input, 3×3 weights and (when the case has one) bias for a case.
    static func operands(_ c: (n: Int, cin: Int, h: Int, w: Int, cout: Int, pad: Padding2D, bias: Bool),
                         _ rng: inout SplitMix64) -> (Tensor, Tensor, Tensor?) {
        let x = rng.normal([c.n, c.cin, c.h, c.w]), wt = rng.normal([c.cout, c.cin, 3, 3])
        return (x, wt, c.bias ? rng.normal([c.cout]) : nil)
    }

    func reference(_ x: Tensor, _ wt: Tensor, _ bias: Tensor?, _ pad: Padding2D) -> (value: [Double], magnitude: [Double]) {
        let (n, cin, h, w, cout) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3], wt.shape[0])
        let hout = h + pad.top + pad.bottom - 2, wout = w + pad.left + pad.right - 2
        var value = [Double](), magnitude = [Double]()
        for b in 0..<n { for o in 0..<cout { for oy in 0..<hout { for ox in 0..<wout {
            var acc = Double(bias?[flat: o] ?? 0), mag = abs(acc)
            for c in 0..<cin { for ki in 0..<3 { for kj in 0..<3 {
                let iy = oy - pad.top + ki, ix = ox - pad.left + kj
                guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                let p = Double(x[flat: ((b * cin + c) * h + iy) * w + ix]) * Double(wt[flat: ((o * cin + c) * 3 + ki) * 3 + kj])
                acc += p; mag += abs(p)
            }}}
            value.append(acc); magnitude.append(mag)
        }}}}
        return (value, magnitude)
    }

    func testWinogradIsAsAccurateAsTheDirectConvolution() {
        // Relative to the sum of |products|: a few ulps of fp32 for F(2×2) and the direct form; the
        // F(4×4) transforms (±2, ±4, ±8, 1/6, 1/24) grow the rounding errors about tenfold.
        for (form, bound) in [(WinogradConvolution.Form.f2, 2e-6), (.f4, 2e-5)] {
            var rng = SplitMix64(seed: 31)
            for c in Self.cases {
                let (x, wt, bias) = Self.operands(c, &rng)
                let ref = reference(x, wt, bias, c.pad)
                use(form)
                let y = Convolution.conv2d(x, weight: wt, bias: bias, stride: 1, padding: c.pad)
                WinogradConvolution.enabled = false
                let direct = Convolution.conv2d(x, weight: wt, bias: bias, stride: 1, padding: c.pad)
                XCTAssertEqual(y.count, ref.value.count)
                var worst = 0.0, worstDirect = 0.0
                for i in 0..<ref.value.count {
                    let scale = max(ref.magnitude[i], 1e-3)
                    worst = max(worst, abs(Double(y[flat: i]) - ref.value[i]) / scale)
                    worstDirect = max(worstDirect, abs(Double(direct[flat: i]) - ref.value[i]) / scale)
                }
                XCTAssertLessThan(worst, bound, "\(form), \(c)")
                XCTAssertLessThan(worstDirect, 2e-6, "\(c)")
                XCTAssertNotEqual(bits(y), bits(direct), "the Winograd path did not run for \(c)")
            }
        }
    }

    func testTheLargeTileFormRunsWhereTheOutputAllowsIt() {
        var rng = SplitMix64(seed: 35)
        let c = Self.cases[0]
        let (x, wt, bias) = Self.operands(c, &rng)
        use(.f2)
        let small = bits(Convolution.conv2d(x, weight: wt, bias: bias, stride: 1, padding: c.pad))
        use(.f4)
        let large = bits(Convolution.conv2d(x, weight: wt, bias: bias, stride: 1, padding: c.pad))
        XCTAssertNotEqual(small, large, "F(4×4) did not run")
        XCTAssertEqual(WinogradConvolution.form(kh: 3, kw: 3, stride: 1, cin: 8, cout: 8, images: 1, hout: 3, wout: 40), .f2)
    }

    /// Plain, packed and bf16 weights: the same bits on every family, thread count, band split,
    /// weight K-blocking, and with F(4×4)'s weights transformed inside the GEMMs (in blocks of 6 or
    /// 48 output channels) or into a buffer first. A bf16 model's 3×3 layers run Winograd in fp32 on the bf16 weights' exact
    /// values, so their bits are those of fp32 weights holding those values — on every family but
    /// AMX, which keeps the direct bf16 form.
    func testWinogradGivesTheSameBitsOnEveryISAThreadCountBandSplitAndWeightLayout() {
        for form in [WinogradConvolution.Form.f2, .f4] {
            var rng = SplitMix64(seed: 33)
            use(form)
            for c in Self.cases {
                let (x, wt, bias) = Self.operands(c, &rng)
                let expected = bits(Convolution.conv2d(x, weight: wt, bias: bias, stride: 1, padding: c.pad))
                let packed = LayerWeight.fp32Packed(PackedWeightMatrix(packing: wt))
                let wb = BF16Tensor(rounding: wt)
                let expectedBF16 = bits(Convolution.conv2d(x, weight: wb.widened(), bias: bias, stride: 1, padding: c.pad))
                for isa in OwnGEMM.supportedISAs {
                    OwnGEMM.select(isa: isa)
                    for threads in [1, 2, 3] {
                        Parallel.threads = threads
                        // All at once, or two-tile-row bands; weights whole, or a K-block at a time.
                        for (budget, weights, fused, rows) in [(8 << 20, 8 << 20, 1 << 30, 48), (8 << 20, 8 << 20, 0, 48),
                                                                (form.planes * max(c.cin, c.cout) * 2, 1, 0, 48),
                                                                (form.planes * max(c.cin, c.cout) * 2, 1, 1 << 30, 6)] {
                            WinogradConvolution.budget = budget
                            WinogradConvolution.weightBudget = weights
                            WinogradConvolution.fusedMaxTiles = fused
                            WinogradConvolution.fusedRows = rows
                            let what = "\(form), \(isa), \(threads) threads, budget \(budget)/\(weights), fused \(fused)/\(rows), \(c)"
                            XCTAssertEqual(bits(Convolution.conv2d(x, weight: wt, bias: bias, stride: 1, padding: c.pad)), expected, what)
                            XCTAssertEqual(bits(Convolution.conv2d(x, weight: packed, bias: bias, stride: 1, padding: c.pad)), expected,
                                           "packed: " + what)
                            guard isa != "amxbf16" else { continue }
                            XCTAssertTrue(WinogradConvolution.takesBF16Weights || BLAS.backend != .atelier, what)
                            XCTAssertEqual(bits(Convolution.conv2d(x, weight: .bf16(wb), bias: bias, stride: 1, padding: c.pad)),
                                           expectedBF16, "bf16: " + what)
                        }
                    }
                }
            }
        }
    }

    /// Why bf16 models take this path: against a double-precision sum of the bf16 weights' own
    /// values, fp32 F(4×4) is far closer than the direct bf16 form, which rounds every activation
    /// to 8 bits (and no slower: a quarter of the multiplies at the fp32 rate).
    func testBF16WinogradIsMoreExactThanTheDirectBF16Convolution() {
        var rng = SplitMix64(seed: 39)
        let x = rng.normal([1, 64, 20, 20]), wb = BF16Tensor(rounding: rng.normal([32, 64, 3, 3])), bias = rng.normal([32])
        let ref = reference(x, wb.widened(), bias, .symmetric(1))
        use(.f4)
        let winograd = Convolution.conv2d(x, weight: .bf16(wb), bias: bias, stride: 1, padding: .symmetric(1))
        WinogradConvolution.enabled = false
        let direct = Convolution.conv2d(x, weight: .bf16(wb), bias: bias, stride: 1, padding: .symmetric(1))
        var worst = 0.0, worstDirect = 0.0
        for i in 0..<ref.value.count {
            let scale = max(ref.magnitude[i], 1e-3)
            worst = max(worst, abs(Double(winograd[flat: i]) - ref.value[i]) / scale)
            worstDirect = max(worstDirect, abs(Double(direct[flat: i]) - ref.value[i]) / scale)
        }
        if OwnGEMM.isaName == "amxbf16" { return }  // both direct bf16 there
        XCTAssertLessThan(worst, 2e-5)
        XCTAssertGreaterThan(worstDirect, 10 * worst, "direct bf16 \(worstDirect), Winograd \(worst)")
    }

    func testSmallImagesAndOtherKernelsKeepTheDirectForm() {
        XCTAssertFalse(WinogradConvolution.applies(kh: 3, kw: 3, stride: 1, cin: 320, cout: 320, images: 2, hout: 8, wout: 8))
        XCTAssertTrue(WinogradConvolution.applies(kh: 3, kw: 3, stride: 1, cin: 320, cout: 320, images: 2, hout: 64, wout: 64))
        XCTAssertFalse(WinogradConvolution.applies(kh: 3, kw: 3, stride: 2, cin: 320, cout: 320, images: 2, hout: 64, wout: 64))
        XCTAssertFalse(WinogradConvolution.applies(kh: 1, kw: 1, stride: 1, cin: 320, cout: 320, images: 2, hout: 64, wout: 64))
        XCTAssertFalse(WinogradConvolution.applies(kh: 3, kw: 3, stride: 1, cin: 4, cout: 320, images: 2, hout: 64, wout: 64))
    }

    /// The SD2 UNet at 512 with guidance (a batch of 2): F(4×4) down to the 16×16 level, whose 32
    /// tiles per plane make it transform its weights inside the GEMMs; the 8×8 level stays direct,
    /// and so does 16×16 without guidance (256 output pixels).
    func testTheUNetsSixteenLevelTakesTheFusedLargeTilesAtACFGBatch() {
        XCTAssertEqual(WinogradConvolution.form(kh: 3, kw: 3, stride: 1, cin: 1280, cout: 1280, images: 2, hout: 16, wout: 16), .f4)
        XCTAssertLessThanOrEqual(2 * 4 * 4, WinogradConvolution.fusedMaxTiles)
        XCTAssertGreaterThan(2 * 8 * 8, WinogradConvolution.fusedMaxTiles, "the 32×32 level keeps the unfused GEMMs")
        XCTAssertNil(WinogradConvolution.form(kh: 3, kw: 3, stride: 1, cin: 1280, cout: 1280, images: 2, hout: 8, wout: 8))
        XCTAssertNil(WinogradConvolution.form(kh: 3, kw: 3, stride: 1, cin: 1280, cout: 1280, images: 1, hout: 16, wout: 16))
        XCTAssertEqual(BLAS.numericsClass(.fp32), BLAS.backend == .atelier ? "atelier-gemm4" : BLAS.numericsClass(.fp32))
    }

    /// A layer big enough for the AVX-512 transform's whole groups (48-channel blocks of 8 full
    /// panels, 8 input channels at a time, K-blocks of the packed weights straddled) and the fused
    /// K-blocks (more than AK_W4_FUSED_KC input channels): fused and unfused, packed and plain
    /// weights, every ISA, the same bits.
    func testTheFusedTransformGivesTheUnfusedBitsOnABigLayer() {
        var rng = SplitMix64(seed: 41)
        let x = rng.normal([2, 300, 8, 8]), wt = rng.normal([100, 300, 3, 3]), bias = rng.normal([100])
        let packed = LayerWeight.fp32Packed(PackedWeightMatrix(packing: wt))
        use(.f4)
        WinogradConvolution.fusedMaxTiles = 0
        let expected = bits(Convolution.conv2d(x, weight: wt, bias: bias, stride: 1, padding: .symmetric(1)))
        WinogradConvolution.fusedMaxTiles = 1 << 30
        for isa in OwnGEMM.supportedISAs {
            OwnGEMM.select(isa: isa)
            for rows in [6, 48, 96] {
                WinogradConvolution.fusedRows = rows
                XCTAssertEqual(bits(Convolution.conv2d(x, weight: packed, bias: bias, stride: 1, padding: .symmetric(1))), expected,
                               "packed, \(isa), \(rows) rows")
                XCTAssertEqual(bits(Convolution.conv2d(x, weight: wt, bias: bias, stride: 1, padding: .symmetric(1))), expected,
                               "plain, \(isa), \(rows) rows")
            }
        }
    }
}
