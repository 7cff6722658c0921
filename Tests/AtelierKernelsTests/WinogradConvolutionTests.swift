import XCTest
import AtelierKernelsC
@testable import AtelierKernels

/// Winograd F(2×2, 3×3) 3×3 convolutions: as accurate as the direct form against a double-precision
/// sum, and deterministic: the same bits on every ISA, thread count and band split, and from plain
/// or packed weights.
final class WinogradConvolutionTests: XCTestCase {
    override func tearDown() {
        OwnGEMM.select(isa: OwnGEMM.supportedISAs.last ?? "scalar")
        Parallel.threads = ProcessInfo.processInfo.activeProcessorCount
        WinogradConvolution.enabled = true
        WinogradConvolution.minimumTiles = 256
        WinogradConvolution.budget = 4 << 20
    }

    func bits(_ t: Tensor) -> [UInt32] { Array(UnsafeBufferPointer(start: t.pointer, count: t.count)).map(\.bitPattern) }

    /// Odd and even sizes (partial last tiles), asymmetric padding (the VAE's row bands), no bias.
    static let cases: [(n: Int, cin: Int, h: Int, w: Int, cout: Int, pad: Padding2D, bias: Bool)] = [
        (2, 16, 16, 16, 24, .symmetric(1), true), (1, 9, 13, 21, 10, .symmetric(1), true),
        (1, 12, 11, 17, 8, Padding2D(top: 0, left: 1, bottom: 2, right: 1), false), (2, 8, 7, 5, 9, .none, true),
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
        var rng = SplitMix64(seed: 31)
        WinogradConvolution.minimumTiles = 1
        for c in Self.cases {
            let (x, wt, bias) = Self.operands(c, &rng)
            let ref = reference(x, wt, bias, c.pad)
            WinogradConvolution.enabled = true
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
            // Relative to the sum of |products|: a few ulps of fp32 for both forms.
            XCTAssertLessThan(worst, 2e-6, "\(c)")
            XCTAssertLessThan(worstDirect, 2e-6, "\(c)")
            XCTAssertNotEqual(bits(y), bits(direct), "the Winograd path did not run for \(c)")
        }
    }

    func testWinogradGivesTheSameBitsOnEveryISAThreadCountBandSplitAndWeightLayout() {
        var rng = SplitMix64(seed: 33)
        WinogradConvolution.minimumTiles = 1
        for c in Self.cases {
            let (x, wt, bias) = Self.operands(c, &rng)
            let expected = bits(Convolution.conv2d(x, weight: wt, bias: bias, stride: 1, padding: c.pad))
            let packed = LayerWeight.fp32Packed(PackedWeightMatrix(packing: wt))
            for isa in OwnGEMM.supportedISAs {
                OwnGEMM.select(isa: isa)
                for threads in [1, 2, 3] {
                    Parallel.threads = threads
                    for budget in [8 << 20, 16 * max(c.cin, c.cout) * 2] {  // all at once; two-tile-row bands
                        WinogradConvolution.budget = budget
                        XCTAssertEqual(bits(Convolution.conv2d(x, weight: wt, bias: bias, stride: 1, padding: c.pad)), expected,
                                       "\(isa), \(threads) threads, budget \(budget), \(c)")
                        XCTAssertEqual(bits(Convolution.conv2d(x, weight: packed, bias: bias, stride: 1, padding: c.pad)), expected,
                                       "packed: \(isa), \(threads) threads, budget \(budget), \(c)")
                    }
                }
            }
        }
    }

    func testSmallImagesAndOtherKernelsKeepTheDirectForm() {
        XCTAssertFalse(WinogradConvolution.applies(kh: 3, kw: 3, stride: 1, cin: 320, cout: 320, images: 2, hout: 8, wout: 8))
        XCTAssertTrue(WinogradConvolution.applies(kh: 3, kw: 3, stride: 1, cin: 320, cout: 320, images: 2, hout: 64, wout: 64))
        XCTAssertFalse(WinogradConvolution.applies(kh: 3, kw: 3, stride: 2, cin: 320, cout: 320, images: 2, hout: 64, wout: 64))
        XCTAssertFalse(WinogradConvolution.applies(kh: 1, kw: 1, stride: 1, cin: 320, cout: 320, images: 2, hout: 64, wout: 64))
        XCTAssertFalse(WinogradConvolution.applies(kh: 3, kw: 3, stride: 1, cin: 4, cout: 320, images: 2, hout: 64, wout: 64))
    }
}
