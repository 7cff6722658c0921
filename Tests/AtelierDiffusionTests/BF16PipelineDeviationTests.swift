import Foundation
import XCTest
import AtelierKernels
@testable import AtelierDiffusion

/// `--precision bf16` on the pipeline parity fixtures: its image-level deviation from diffusers
/// fp32 (the committed parity PNGs) and from diffusers bf16 (Tests/Reference/pipelines/
/// make_bf16_fixtures.py), printed per case and bounded. bf16 is not bit-compatible with either:
/// Atelier keeps norms, softmax, the text encoder and the VAE in fp32 and rounds only the UNet's
/// GEMM operands (linear, convolution, attention; the 3×3 layers big enough for Winograd run it in
/// fp32 on the bf16 weights, which these small fixtures' layers are not: the 192 px render test and
/// WinogradConvolutionTests cover that path), while diffusers bf16 runs everything in bf16, so the
/// bounds are measured ones, not the 2/255 of fp32 parity.
final class BF16PipelineDeviationTests: XCTestCase {
    struct BF16Cases: Decodable {
        struct Entry: Decodable { let name: String; let expected_bf16: String }
        let cases: [Entry]
    }

    /// Per-channel absolute differences of two same-size images: (max, mean).
    static func deviation(_ a: RGBImage, _ b: RGBImage) -> (max: Int, mean: Double) {
        var worst = 0, sum = 0
        for (x, y) in zip(a.pixels, b.pixels) {
            let d = abs(Int(x) - Int(y))
            worst = max(worst, d)
            sum += d
        }
        return (worst, Double(sum) / Double(max(1, a.pixels.count)))
    }

    func testBF16RendersStayCloseToDiffusersFP32AndToDiffusersBF16() throws {
        let root = PipelineParityTests.root
        let all = Dictionary(uniqueKeysWithValues: try PipelineParityTests.loadCases().map { ($0.name, $0) })
        let listed = try JSONDecoder().decode(BF16Cases.self, from: Data(contentsOf: root.appendingPathComponent("cases-bf16.json")))
        XCTAssertGreaterThanOrEqual(listed.cases.count, 30)
        var pipelines: [String: StableDiffusionPipeline] = [:]
        var sumFP32 = 0.0, sumBF16 = 0.0, sumOwnFP32 = 0.0
        var worstFP32 = 0, worstBF16 = 0, worstOwnFP32 = 0
        for entry in listed.cases {
            let c = try XCTUnwrap(all[entry.name], entry.name)
            let key = c.model
            let pipe = try pipelines[key] ?? StableDiffusionPipeline.load(root.appendingPathComponent("models/\(c.model)"), precision: .bf16)
            pipelines[key] = pipe
            XCTAssertEqual(pipe.precision, .bf16)
            let image = try pipe.generate(try PipelineParityTests.request(for: c)).image
            let fp32 = try PNGCodec.read(path: root.appendingPathComponent(c.expected).path).rgb()
            let bf16 = try PNGCodec.read(path: root.appendingPathComponent(entry.expected_bf16).path).rgb()
                        let vsFP32 = Self.deviation(image, fp32), vsBF16 = Self.deviation(image, bf16), torchGap = Self.deviation(bf16, fp32)
            print(String(format: "bf16 %-26@ vs diffusers fp32 max %3d mean %.2f | vs diffusers bf16 max %3d mean %.2f | diffusers bf16 vs fp32 max %3d mean %.2f",
                         c.name, vsFP32.max, vsFP32.mean, vsBF16.max, vsBF16.mean, torchGap.max, torchGap.mean))
            worstFP32 = max(worstFP32, vsFP32.max); worstBF16 = max(worstBF16, vsBF16.max); worstOwnFP32 = max(worstOwnFP32, torchGap.max)
            sumFP32 += vsFP32.mean; sumBF16 += vsBF16.mean; sumOwnFP32 += torchGap.mean
        }
        let n = Double(listed.cases.count)
        print(String(format: "bf16 over %d cases: vs diffusers fp32 worst max %d, mean of means %.2f; vs diffusers bf16 worst max %d, mean of means %.2f; diffusers bf16 vs its fp32 worst max %d, mean of means %.2f",
                     listed.cases.count, worstFP32, sumFP32 / n, worstBF16, sumBF16 / n, worstOwnFP32, sumOwnFP32 / n))
        // Atelier's bf16 must be closer to fp32 than diffusers' own bf16 is, on average.
        XCTAssertLessThan(sumFP32 / n, sumOwnFP32 / n)
        // Measured (46 cases, diffusers 0.42 / torch 2.13, attention in bf16 too): worst max 14
        // (inp-ddim, where diffusers' own bf16 is 34 off its fp32), mean of means 0.48 (fp32
        // attention gave 18 and 0.48). Bounds with room for other machines' torch builds, not for a
        // regression of the arithmetic.
        XCTAssertLessThanOrEqual(worstFP32, 32)
        XCTAssertLessThanOrEqual(sumFP32 / n, 1.0)
    }
}
