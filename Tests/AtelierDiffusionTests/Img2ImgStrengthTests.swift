import AtelierKernels
import Foundation
import XCTest

@testable import AtelierDiffusion

/// img2img's first step against diffusers' `get_timesteps`, with the strength a Python float:
/// `init_timestep = min(int(num_inference_steps * strength), num_inference_steps)`,
/// `t_start = max(num_inference_steps - init_timestep, 0)`, begin index `t_start * order`.
/// When strength travelled as Float, 10 × Float(0.7) = 6.99999988 gave 6 and the render started
/// one step late (t_start 4 instead of 3).
final class Img2ImgStrengthTests: XCTestCase {
    /// `t_start` for steps 1…60 at each strength, printed by CPython 3 from the literal strength:
    /// `[max(n - min(int(n * s), n), 0) for n in range(1, 61)]`.
    static let pythonTStart: [String: [Int]] = [
        "0.05": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 57],
        "0.10": [1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 54],
        "0.15": [1, 2, 3, 4, 5, 6, 6, 7, 8, 9, 10, 11, 12, 12, 13, 14, 15, 16, 17, 17, 18, 19, 20, 21, 22, 23, 23, 24, 25, 26, 27, 28, 29, 29, 30, 31, 32, 33, 34, 34, 35, 36, 37, 38, 39, 40, 40, 41, 42, 43, 44, 45, 46, 46, 47, 48, 49, 50, 51, 51],
        "0.20": [1, 2, 3, 4, 4, 5, 6, 7, 8, 8, 9, 10, 11, 12, 12, 13, 14, 15, 16, 16, 17, 18, 19, 20, 20, 21, 22, 23, 24, 24, 25, 26, 27, 28, 28, 29, 30, 31, 32, 32, 33, 34, 35, 36, 36, 37, 38, 39, 40, 40, 41, 42, 43, 44, 44, 45, 46, 47, 48, 48],
        "0.25": [1, 2, 3, 3, 4, 5, 6, 6, 7, 8, 9, 9, 10, 11, 12, 12, 13, 14, 15, 15, 16, 17, 18, 18, 19, 20, 21, 21, 22, 23, 24, 24, 25, 26, 27, 27, 28, 29, 30, 30, 31, 32, 33, 33, 34, 35, 36, 36, 37, 38, 39, 39, 40, 41, 42, 42, 43, 44, 45, 45],
        "0.30": [1, 2, 3, 3, 4, 5, 5, 6, 7, 7, 8, 9, 10, 10, 11, 12, 12, 13, 14, 14, 15, 16, 17, 17, 18, 19, 19, 20, 21, 21, 22, 23, 24, 24, 25, 26, 26, 27, 28, 28, 29, 30, 31, 31, 32, 33, 33, 34, 35, 35, 36, 37, 38, 38, 39, 40, 40, 41, 42, 42],
        "0.35": [1, 2, 2, 3, 4, 4, 5, 6, 6, 7, 8, 8, 9, 10, 10, 11, 12, 12, 13, 13, 14, 15, 15, 16, 17, 17, 18, 19, 19, 20, 21, 21, 22, 23, 23, 24, 25, 25, 26, 26, 27, 28, 28, 29, 30, 30, 31, 32, 32, 33, 34, 34, 35, 36, 36, 37, 38, 38, 39, 39],
        "0.40": [1, 2, 2, 3, 3, 4, 5, 5, 6, 6, 7, 8, 8, 9, 9, 10, 11, 11, 12, 12, 13, 14, 14, 15, 15, 16, 17, 17, 18, 18, 19, 20, 20, 21, 21, 22, 23, 23, 24, 24, 25, 26, 26, 27, 27, 28, 29, 29, 30, 30, 31, 32, 32, 33, 33, 34, 35, 35, 36, 36],
        "0.45": [1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 13, 13, 14, 14, 15, 15, 16, 16, 17, 18, 18, 19, 19, 20, 20, 21, 21, 22, 22, 23, 24, 24, 25, 25, 26, 26, 27, 27, 28, 29, 29, 30, 30, 31, 31, 32, 32, 33, 33],
        "0.50": [1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15, 16, 16, 17, 17, 18, 18, 19, 19, 20, 20, 21, 21, 22, 22, 23, 23, 24, 24, 25, 25, 26, 26, 27, 27, 28, 28, 29, 29, 30, 30],
        "0.55": [1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 14, 15, 15, 16, 16, 17, 17, 18, 18, 18, 19, 19, 20, 20, 21, 21, 22, 22, 23, 23, 23, 24, 24, 25, 25, 26, 26, 27, 27, 27],
        "0.60": [1, 1, 2, 2, 2, 3, 3, 4, 4, 4, 5, 5, 6, 6, 6, 7, 7, 8, 8, 8, 9, 9, 10, 10, 10, 11, 11, 12, 12, 12, 13, 13, 14, 14, 14, 15, 15, 16, 16, 16, 17, 17, 18, 18, 18, 19, 19, 20, 20, 20, 21, 21, 22, 22, 22, 23, 23, 24, 24, 24],
        "0.65": [1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 6, 7, 7, 7, 8, 8, 9, 9, 9, 10, 10, 10, 11, 11, 11, 12, 12, 12, 13, 13, 13, 14, 14, 14, 15, 15, 16, 16, 16, 17, 17, 17, 18, 18, 18, 19, 19, 19, 20, 20, 20, 21, 21, 21],
        "0.70": [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 8, 8, 8, 9, 9, 9, 9, 10, 10, 10, 11, 11, 11, 12, 12, 12, 12, 13, 13, 13, 14, 14, 14, 15, 15, 15, 15, 16, 16, 16, 17, 17, 17, 18, 18, 18, 18],
        "0.75": [1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7, 8, 8, 8, 8, 9, 9, 9, 9, 10, 10, 10, 10, 11, 11, 11, 11, 12, 12, 12, 12, 13, 13, 13, 13, 14, 14, 14, 14, 15, 15, 15, 15],
        "0.80": [1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 8, 8, 8, 8, 8, 9, 9, 9, 9, 9, 10, 10, 10, 10, 10, 11, 11, 11, 11, 11, 12, 12, 12, 12, 12],
        "0.85": [1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 8, 8, 8, 8, 8, 8, 8, 9, 9, 9, 9, 9, 9, 9],
        "0.90": [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6],
        "0.95": [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3],
        "1.00": [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    ]

    private func sd2Config() -> SchedulerConfig {
        var c = SchedulerConfig()
        c.className = "DDIMScheduler"
        c.numTrainTimesteps = 1000
        c.betaStart = 0.00085
        c.betaEnd = 0.012
        c.betaSchedule = "scaled_linear"
        c.stepsOffset = 1
        c.setAlphaToOne = false
        c.skipPrkSteps = true
        c.clipSample = false
        return c
    }

    func testSevenTenthsOfTenStepsStartsAtTheFourthTimestepAsDiffusers() throws {
        for name in SchedulerName.allCases {
            var scheduler = try makeScheduler(name: name.rawValue, config: sd2Config())
            try scheduler.setTimesteps(10)
            XCTAssertEqual(scheduler.img2imgBeginIndex(strength: 0.7), 3, name.rawValue)
            XCTAssertEqual(scheduler.img2imgBeginIndex(strength: 0.9), 1, name.rawValue)
            XCTAssertEqual(scheduler.img2imgBeginIndex(strength: Double("0.7")!), 3, name.rawValue)
        }
    }

    func testEveryStrengthAndStepCountMatchesPythonsIntOfTheDoubleProduct() throws {
        XCTAssertEqual(Self.pythonTStart.count, 20)
        for (text, expected) in Self.pythonTStart {
            let strength = try XCTUnwrap(Double(text))
            XCTAssertEqual(expected.count, 60)
            for name in SchedulerName.allCases {
                var scheduler = try makeScheduler(name: name.rawValue, config: sd2Config())
                for steps in 1...60 {
                    try scheduler.setTimesteps(steps)
                    // Every scheduler here has diffusers `order` 1, so the index is t_start itself
                    // — into PNDM's N+1 timesteps too, exactly as `timesteps[t_start * order:]`.
                    XCTAssertEqual(scheduler.order, 1)
                    let tStart = expected[steps - 1]
                    XCTAssertEqual(scheduler.img2imgBeginIndex(strength: strength), tStart * scheduler.order,
                                   "\(name.rawValue) steps \(steps) strength \(text)")
                    // And the same as computing Python's float semantics here, in Double.
                    let initTimestep = min(Int(Double(steps) * strength), steps)
                    XCTAssertEqual(max(steps - initTimestep, 0), tStart)
                }
            }
        }
    }

    func testStrengthOutsideTheUnitIntervalOrNaNNeverGivesAnIndexOutsideTheSchedule() throws {
        var scheduler = try makeScheduler(name: "pndm", config: sd2Config())
        try scheduler.setTimesteps(10)
        XCTAssertEqual(scheduler.img2imgBeginIndex(strength: .nan), 10)
        XCTAssertEqual(scheduler.img2imgBeginIndex(strength: -1), 10)
        XCTAssertEqual(scheduler.img2imgBeginIndex(strength: 5), 0)
        XCTAssertEqual(scheduler.img2imgBeginIndex(strength: .infinity), 0)
    }

    /// End to end through `GenerationRequest` (Double) on the tiny random-weight SD2 model: the
    /// render runs exactly `steps − t_start` denoising steps.
    func testImageToImageRenderRunsSevenOfTenStepsAtStrengthSevenTenths() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/pipelines")
        let pipe = try StableDiffusionPipeline.load(root.appendingPathComponent("models/tiny-base"))
        // PNDM (the model's own scheduler) runs timesteps[t_start:] of its N+1 timesteps.
        for (scheduler, steps, strength, expectedTotal) in [("ddim", 10, 0.7, 7), ("ddim", 20, 0.35, 7), ("euler", 10, 0.9, 9),
                                                            ("dpm++2m", 60, 0.65, 39), ("pndm", 10, 0.7, 8)] {
            var r = GenerationRequest(prompt: "a red apple")
            r.scheduler = scheduler
            r.seed = 1
            r.steps = steps
            r.strength = strength
            r.guidance = 1
            r.initImage = try PNGCodec.read(path: root.appendingPathComponent("inputs/init_32x32.png").path).rgb()
            var totals: Set<Int> = []
            var calls = 0
            let result = try pipe.generate(r) { _, total in
                totals.insert(total)
                calls += 1
                return true
            }
            XCTAssertEqual(totals, [expectedTotal], "\(scheduler) steps \(steps) strength \(strength)")
            XCTAssertEqual(calls, expectedTotal)
            XCTAssertEqual(result.parameters.strength, strength)
        }
    }
}
