import AtelierKernels
import Foundation
import XCTest

@testable import AtelierDiffusion

/// Every scheduler the CLI offers, at every step count the CLI documents (1…1000), including the
/// ends: `--steps 1000` used to index ᾱ[1000] in DDIM/PNDM/DDPM ("leading" spacing plus the
/// `steps_offset` 1 the SD2 pipelines force) and killed the process. No UNet is needed: `step` is
/// driven with a synthetic model output.
final class SchedulerStepCountTests: XCTestCase {
    /// The scheduler configs the pipelines hand to `makeScheduler`: SD2's (ε and v, after the
    /// pipeline's `steps_offset` 1 fix-up) and the x4 upscaler's.
    private func configs() -> [(name: String, config: SchedulerConfig)] {
        var sd2 = SchedulerConfig()
        sd2.className = "PNDMScheduler"
        sd2.numTrainTimesteps = 1000
        sd2.betaStart = 0.00085
        sd2.betaEnd = 0.012
        sd2.betaSchedule = "scaled_linear"
        sd2.predictionType = "epsilon"
        sd2.stepsOffset = 1
        sd2.setAlphaToOne = false
        sd2.skipPrkSteps = true
        sd2.clipSample = false
        var v = sd2
        v.className = "DDIMScheduler"
        v.predictionType = "v_prediction"
        var x4 = SchedulerConfig()
        x4.className = "DDIMScheduler"
        x4.numTrainTimesteps = 1000
        x4.betaStart = 0.0001
        x4.betaEnd = 0.02
        x4.betaSchedule = "scaled_linear"
        x4.predictionType = "v_prediction"
        x4.stepsOffset = 1
        x4.setAlphaToOne = false
        return [("sd2-epsilon", sd2), ("sd2-v", v), ("x4", x4)]
    }

    /// A model output that depends on the sample and the step, like a UNet's would.
    private func syntheticOutput(_ sample: Tensor, step: Int) -> Tensor {
        let out = Tensor(uninitialized: sample.shape)
        for i in 0..<sample.count {
            out[flat: i] = 0.3 * sample[flat: i] + 0.01 * Float((i * 7 + step) % 13) - 0.05
        }
        return out
    }

    /// diffusers produces inf/NaN here too: `linspace(0, 999, 1001).round()` repeats a timestep
    /// (500), so DPM-Solver++'s second-order step divides by h₀ = 0. It must not trap.
    private func diffusersItselfDiverges(_ name: SchedulerName, steps: Int) -> Bool {
        name == .dpmPlusPlus2M && steps == 1000
    }

    /// PNDM with its Runge–Kutta warm-up (`skip_prk_steps` false: the x4 config, or any DDIM
    /// config switched to PNDM by name) cannot run fewer than 4 steps: diffusers' NumPy raises
    /// there. It must be a typed `SchedulerError`, not a trap or an empty schedule.
    private func refusesTooFewSteps(_ name: SchedulerName, _ config: SchedulerConfig, steps: Int) -> Bool {
        name == .pndm && config.skipPrkSteps != true && steps < 4
    }

    private func makeScheduled(_ name: SchedulerName, _ config: SchedulerConfig, steps: Int, label: String) throws -> (any Scheduler)? {
        var scheduler = try makeScheduler(name: name.rawValue, config: config)
        if refusesTooFewSteps(name, config, steps: steps) {
            XCTAssertThrowsError(try scheduler.setTimesteps(steps), label) { error in
                guard case SchedulerError.invalidStepCount? = error as? SchedulerError else { return XCTFail("\(label): \(error)") }
            }
            return nil
        }
        try scheduler.setTimesteps(steps)
        XCTAssertGreaterThanOrEqual(scheduler.timesteps.count, steps, label)
        return scheduler
    }

    private func runAll(_ scheduler: inout any Scheduler, from begin: Int, sample start: Tensor, seed: UInt64) -> Tensor {
        var random = TorchRandomSource(seed: seed)
        var sample = start
        for i in begin..<scheduler.timesteps.count {
            let input = scheduler.scaleModelInput(sample, stepIndex: i)
            sample = scheduler.step(modelOutput: syntheticOutput(input, step: i), stepIndex: i, sample: sample, random: &random)
        }
        return sample
    }

    func testEverySchedulerRunsTextToImageAtOneTwoNineHundredNinetyNineAndOneThousandSteps() throws {
        for (configName, config) in configs() {
            for name in SchedulerName.allCases {
                for steps in [1, 2, 3, 4, 999, 1000] {
                    guard var scheduler = try makeScheduled(name, config, steps: steps, label: "\(configName) \(name) \(steps)") else { continue }
                    var random = TorchRandomSource(seed: 7)
                    let noise = random.normal(shape: [1, 4, 4, 4])
                    let start = Elementwise.scale(noise, scheduler.initNoiseSigma)
                    let out = runAll(&scheduler, from: 0, sample: start, seed: 8)
                    XCTAssertEqual(out.shape, [1, 4, 4, 4])
                    if !diffusersItselfDiverges(name, steps: steps) {
                        XCTAssertTrue(out.scalars.allSatisfy(\.isFinite), "\(configName) \(name) \(steps) steps: non-finite latents")
                    }
                }
            }
        }
    }

    func testEverySchedulerSetsTimestepsAndStepsAcrossOneToOneThousandSteps() throws {
        for (configName, config) in configs() {
            for name in SchedulerName.allCases {
                // Every count near the ends, a spread in between (all 1000 take a minute in debug).
                for steps in (1...1000) where steps <= 24 || steps >= 976 || steps % 41 == 0 {
                    guard var scheduler = try makeScheduled(name, config, steps: steps, label: "\(configName) \(name) \(steps)") else { continue }
                    XCTAssertTrue(scheduler.timesteps.allSatisfy { $0.isFinite && $0 >= 0 && $0 <= 1000 },
                                  "\(configName) \(name) \(steps)")
                    // The first and last steps are the ones that read past the tables.
                    let sample = Tensor(shape: [1, 4, 2, 2], repeating: 0.5)
                    var random = TorchRandomSource(seed: 1)
                    _ = scheduler.addNoise(original: sample, noise: sample, stepIndex: 0)
                    _ = scheduler.addNoise(original: sample, noise: sample, stepIndex: scheduler.timesteps.count - 1)
                    _ = scheduler.step(modelOutput: sample, stepIndex: 0, sample: sample, random: &random)
                }
                var scheduler = try makeScheduler(name: name.rawValue, config: config)
                for steps in [0, 1001, -5, Int.max, Int.min] {
                    XCTAssertThrowsError(try scheduler.setTimesteps(steps), "\(configName) \(name) \(steps)")
                }
            }
        }
    }

    func testEverySchedulerRunsImageToImageAtEveryStrengthAtTheStepCountExtremes() throws {
        let strengths = (1...20).map { Double($0) * 0.05 }
        for (configName, config) in configs() {
            for name in SchedulerName.allCases {
                for steps in [1, 2, 999, 1000] {
                    for (n, strength) in strengths.enumerated() {
                        guard var scheduler = try makeScheduled(name, config, steps: steps, label: "\(configName) \(name) \(steps)") else { continue }
                        let begin = scheduler.img2imgBeginIndex(strength: strength)
                        XCTAssertLessThanOrEqual(begin, scheduler.timesteps.count)
                        // The pipeline refuses a request that leaves no step; nothing else may trap.
                        guard begin < scheduler.timesteps.count else { continue }
                        var random = TorchRandomSource(seed: 3)
                        let image = random.normal(shape: [1, 4, 4, 4])
                        let noisy = scheduler.addNoise(original: image, noise: random.normal(shape: [1, 4, 4, 4]), stepIndex: begin)
                        // Stepping all 1000 at every strength is slow in debug builds; a few suffice.
                        guard steps < 999 || n % 6 == 0 else { continue }
                        let out = runAll(&scheduler, from: begin, sample: noisy, seed: 4)
                        if !diffusersItselfDiverges(name, steps: steps) {
                            XCTAssertTrue(out.scalars.allSatisfy(\.isFinite), "\(configName) \(name) \(steps) steps strength \(strength)")
                        }
                    }
                }
            }
        }
    }

    func testLeadingSpacingAtOneThousandStepsReadsTheLastTrainingTimestepForTimestepOneThousand() throws {
        // t = 1000 (leading, offset 1) takes ᾱ[999], as Euler's np.interp takes σ[999].
        let config = configs()[0].config
        var ddim = try makeScheduler(name: "ddim", config: config)
        try ddim.setTimesteps(1000)
        XCTAssertEqual(ddim.timesteps.first, 1000)
        let x = Tensor(shape: [1, 1, 4, 4], values: (0..<16).map { Float($0) / 16 })
        let e = Tensor(shape: [1, 1, 4, 4], values: (0..<16).map { Float(15 - $0) / 16 })
        let atEnd = ddim.addNoise(original: x, noise: e, stepIndex: 0)
        let ddimAt999 = try DDIMScheduler(config: config)
        XCTAssertEqual(atEnd.scalars, ddimAt999.addNoise(original: x, noise: e, trainTimestep: 999).scalars)
    }
}
