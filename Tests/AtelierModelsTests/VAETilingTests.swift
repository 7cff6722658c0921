import Foundation
import XCTest
import AtelierKernels
@testable import AtelierModels

/// The row-band VAE pass (exact whole-map GroupNorm statistics) against the whole-map pass.
/// Decoded images are compared in pixel units: the decoder's [-1, 1] output maps to 0…255 as
/// (x + 1)·127.5, so 1/255 of the pixel range is a difference of 2/255 in x.
final class VAETilingTests: XCTestCase {
    /// |Δ| in decoder units that equals 1/255 of the pixel range.
    static let onePixelLevel: Float = 2 / 255

    /// Bands of a few rows even on the fixtures' small maps, so every layer is cut several times.
    static let smallBands = 8 * 1024

    func testRowBandDecodeAndEncodeEqualWholeMapOnTheFixtures() throws {
        let cases = Fixtures.cases("vae")
        XCTAssertGreaterThanOrEqual(cases.count, 2, "expected SD2 and x4 VAE fixtures")
        for name in cases {
            let vae = try StableDiffusionModel.loadVAE(Fixtures.url("vae", name, "vae"))
            let io = try Fixtures.io("vae", name)
            let latents = try io.tensor("latents"), image = try io.tensor("image")
            let whole = vae.decode(latents, tiling: .off)
            let banded = vae.decode(latents, tiling: .on, bandFloats: Self.smallBands)
            let d = whole.maxAbsDifference(banded)
            print("vae/\(name) decode: row bands vs whole map max |Δ| = \(d) (\(d / Self.onePixelLevel) of 1/255)")
            XCTAssertLessThanOrEqual(d, Self.onePixelLevel, "vae/\(name): banded decode differs from the whole-map decode")
            assertParity(banded, try io.tensor("decoded"), "vae/\(name) banded decode")

            let momentsWhole = vae.encode(image, tiling: .off)
            let momentsBanded = vae.encode(image, tiling: .on, bandFloats: Self.smallBands)
            let e = momentsWhole.maxAbsDifference(momentsBanded)
            print("vae/\(name) encode: row bands vs whole map max |Δ| = \(e)")
            XCTAssertLessThanOrEqual(e, Self.onePixelLevel, "vae/\(name): banded encode differs from the whole-map encode")
            assertParity(momentsBanded, try io.tensor("moments"), "vae/\(name) banded encode")
        }
    }

    func testRowBandDecodeOfABatchEqualsWholeMapPerSample() throws {
        let vae = try StableDiffusionModel.loadVAE(Fixtures.url("vae", "sd2", "vae"))
        let one = try Fixtures.io("vae", "sd2").tensor("latents").slice(0)
        let other = Elementwise.scale(one, -0.5)
        let batch = Elementwise.concatBatch([one.reshaped([1] + one.shape), other.reshaped([1] + other.shape)])
        let whole = vae.decode(batch, tiling: .off)
        let banded = vae.decode(batch, tiling: .on, bandFloats: Self.smallBands)
        XCTAssertLessThanOrEqual(whole.maxAbsDifference(banded), Self.onePixelLevel)
        // The second sample is normalised with its own statistics, not the batch's.
        let alone = vae.decode(other.reshaped([1] + other.shape), tiling: .on, bandFloats: Self.smallBands)
        XCTAssertLessThanOrEqual(banded.slice(1).maxAbsDifference(alone.slice(0)), Self.onePixelLevel)
    }

    /// SD2's real VAE widths (128/256/512/512, 2 resnets a level, 32 groups) with random weights,
    /// on a small map: GroupNorm over 32 groups of real width and every up/down level is cut.
    func testRowBandPassEqualsWholeMapWithSD2ChannelCounts() throws {
        var config = AutoencoderKLConfig()
        config.blockOutChannels = [128, 256, 512, 512]
        config.downBlockTypes = Array(repeating: "DownEncoderBlock2D", count: 4)
        config.upBlockTypes = Array(repeating: "UpDecoderBlock2D", count: 4)
        config.layersPerBlock = 2
        config.normNumGroups = 32
        let vae = try AutoencoderKL(config: config, weights: RandomVAEWeights(config: config, seed: 7))
        XCTAssertEqual(vae.parameterCount, 83_653_863, "not SD2's VAE size")

        var state: UInt32 = 12345
        func next() -> Float { state = state &* 1_664_525 &+ 1_013_904_223; return Float(state >> 8) / Float(1 << 24) * 2 - 1 }
        let latents = Tensor(shape: [1, 4, 6, 10], values: (0..<240).map { _ in 2 * next() })
        let whole = vae.decode(latents, tiling: .off)
        let banded = vae.decode(latents, tiling: .on, bandFloats: 64 * 1024)
        XCTAssertEqual(banded.shape, [1, 3, 48, 80])
        let d = whole.maxAbsDifference(banded)
        print("SD2-width random VAE decode: row bands vs whole map max |Δ| = \(d) (\(d / Self.onePixelLevel) of 1/255), max |x| = \(whole.maxAbs)")
        XCTAssertGreaterThan(whole.standardDeviation, 0.05, "the random decoder collapsed; the comparison would be vacuous")
        XCTAssertLessThanOrEqual(d, Self.onePixelLevel)

        let image = Tensor(shape: [1, 3, 40, 56], values: (0..<(3 * 40 * 56)).map { _ in next() })
        let mw = vae.encode(image, tiling: .off)
        let mb = vae.encode(image, tiling: .on, bandFloats: 64 * 1024)
        XCTAssertEqual(mb.shape, [1, 8, 5, 7])
        let e = mw.maxAbsDifference(mb)
        print("SD2-width random VAE encode: row bands vs whole map max |Δ| = \(e), max |moment| = \(mw.maxAbs)")
        XCTAssertGreaterThan(mw.standardDeviation, 0.05)
        XCTAssertLessThanOrEqual(e, Self.onePixelLevel)
    }

    func testAutomaticTilingTakesRowBandsFromTheThresholdUp() {
        // The environment override is for whole-process measurements; tests run without it.
        XCTAssertNil(VAETiling.environmentOverride, "unset ATELIER_VAE_TILING to run this test")
        let t = VAETiling.automaticPixelThreshold
        XCTAssertFalse(VAETiling.automatic.usesBands(pixels: t - 1))
        XCTAssertTrue(VAETiling.automatic.usesBands(pixels: t))
        XCTAssertTrue(VAETiling.automatic.usesBands(pixels: 512 * 512))
        XCTAssertTrue(VAETiling.on.usesBands(pixels: 1))
        XCTAssertFalse(VAETiling.off.usesBands(pixels: 4096 * 4096))
    }
}
