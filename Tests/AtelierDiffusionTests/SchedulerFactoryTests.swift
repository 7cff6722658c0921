import AtelierKernels
import Foundation
import XCTest

@testable import AtelierDiffusion

/// `makeScheduler`, `SchedulerConfig` decoding and the validation errors.
final class SchedulerFactoryTests: XCTestCase {
    /// stabilityai/stable-diffusion-2-1-base `scheduler/scheduler_config.json`.
    private let sd2BaseJSON = """
    {
      "_class_name": "PNDMScheduler",
      "_diffusers_version": "0.8.0",
      "beta_end": 0.012,
      "beta_schedule": "scaled_linear",
      "beta_start": 0.00085,
      "clip_sample": false,
      "num_train_timesteps": 1000,
      "prediction_type": "epsilon",
      "set_alpha_to_one": false,
      "skip_prk_steps": true,
      "steps_offset": 1,
      "trained_betas": null
    }
    """

    func testDecodesOfficialConfigAndIgnoresUnknownKeys() throws {
        let config = try SchedulerConfig.decode(from: Data(sd2BaseJSON.utf8))
        XCTAssertEqual(config.className, "PNDMScheduler")
        XCTAssertEqual(config.betaStart, 0.00085)
        XCTAssertEqual(config.betaSchedule, "scaled_linear")
        XCTAssertEqual(config.stepsOffset, 1)
        XCTAssertEqual(config.skipPrkSteps, true)
        XCTAssertNil(config.trainedBetas)
        XCTAssertNil(config.timestepSpacing)
    }

    func testDecodesPythonNonFiniteFloats() throws {
        // Python's json.dump writes DPM's default lambda_min_clipped as a bare -Infinity.
        let json = #"{"_class_name": "DPMSolverMultistepScheduler", "lambda_min_clipped": -Infinity, "variance_type": null}"#
        let config = try SchedulerConfig.decode(from: Data(json.utf8))
        XCTAssertEqual(config.lambdaMinClipped, -.infinity)
        XCTAssertNil(config.varianceType)
        XCTAssertNoThrow(try makeScheduler(name: nil, config: config))
    }

    func testRoundTripsThroughJSONEncoder() throws {
        let config = try SchedulerConfig.decode(from: Data(sd2BaseJSON.utf8))
        let encoded = try JSONEncoder().encode(config)
        let text = try XCTUnwrap(String(data: encoded, encoding: .utf8))
        XCTAssertTrue(text.contains("\"_class_name\":\"PNDMScheduler\""), text)
        XCTAssertEqual(try JSONDecoder().decode(SchedulerConfig.self, from: encoded), config)
    }

    func testNilNameUsesClassNameAndNamesSwitchClass() throws {
        let config = try SchedulerConfig.decode(from: Data(sd2BaseJSON.utf8))
        XCTAssertEqual(try makeScheduler(name: nil, config: config).className, "PNDMScheduler")
        let expected: [String: String] = [
            "ddim": "DDIMScheduler", "pndm": "PNDMScheduler", "euler": "EulerDiscreteScheduler",
            "euler-a": "EulerAncestralDiscreteScheduler", "dpm++2m": "DPMSolverMultistepScheduler",
            "dpm++2m-karras": "DPMSolverMultistepScheduler", "ddpm": "DDPMScheduler",
        ]
        for (name, className) in expected {
            XCTAssertEqual(try makeScheduler(name: name, config: config).className, className, name)
        }
        let karras = try XCTUnwrap(try makeScheduler(name: "dpm++2m-karras", config: config) as? DPMSolverMultistepScheduler)
        XCTAssertTrue(karras.useKarrasSigmas)
        XCTAssertEqual(karras.solverOrder, 2)
        var karrasConfig = config
        karrasConfig.useKarrasSigmas = true
        let plain = try XCTUnwrap(try makeScheduler(name: "dpm++2m", config: karrasConfig) as? DPMSolverMultistepScheduler)
        XCTAssertFalse(plain.useKarrasSigmas, "the name pins non-Karras σ")
    }

    func testClassDefaultsApplyToAbsentKeys() throws {
        let config = try SchedulerConfig.decode(from: Data(sd2BaseJSON.utf8))
        // The SD2 file has no timestep_spacing: DDIM/PNDM "leading", Euler/DPM "linspace".
        var ddim = try makeScheduler(name: "ddim", config: config)
        try ddim.setTimesteps(50)
        XCTAssertEqual(ddim.timesteps.first, 981)
        XCTAssertEqual(ddim.timesteps.last, 1)
        var pndm = try makeScheduler(name: nil, config: config)
        try pndm.setTimesteps(50)
        XCTAssertEqual(pndm.timesteps.count, 51)
        XCTAssertEqual(Array(pndm.timesteps.prefix(3)), [981, 961, 961])
        var euler = try makeScheduler(name: "euler", config: config)
        try euler.setTimesteps(50)
        XCTAssertEqual(euler.timesteps.first, 999)
        XCTAssertEqual(euler.initNoiseSigma, 14.6146, accuracy: 1e-4)
        var dpm = try makeScheduler(name: "dpm++2m", config: config)
        try dpm.setTimesteps(25)
        XCTAssertEqual(Array(dpm.timesteps.prefix(3)), [999, 959, 919])
    }

    func testUnknownNameListsValidNames() {
        XCTAssertThrowsError(try makeScheduler(name: "heun", config: SchedulerConfig())) { error in
            guard case let SchedulerError.unknownSchedulerName(name, valid) = error else {
                return XCTFail("unexpected \(error)")
            }
            XCTAssertEqual(name, "heun")
            XCTAssertEqual(valid, ["ddim", "pndm", "euler", "euler-a", "dpm++2m", "dpm++2m-karras", "ddpm"])
            XCTAssertTrue(String(describing: error).contains("euler-a"))
        }
    }

    func testUnsupportedClassNameIsReported() {
        var config = SchedulerConfig()
        config.className = "LMSDiscreteScheduler"
        XCTAssertThrowsError(try makeScheduler(name: nil, config: config)) { error in
            guard case SchedulerError.unsupportedClassName("LMSDiscreteScheduler", _) = error else {
                return XCTFail("unexpected \(error)")
            }
        }
        XCTAssertThrowsError(try makeScheduler(name: nil, config: SchedulerConfig()))
        XCTAssertNoThrow(try makeScheduler(name: "ddim", config: config), "a name overrides the class")
    }

    func testInvalidAndUnsupportedValuesThrowTypedErrors() {
        var config = SchedulerConfig()
        config.predictionType = "flow_prediction"
        XCTAssertThrowsError(try makeScheduler(name: "ddim", config: config)) { error in
            XCTAssertEqual(error as? SchedulerError, .invalidValue(key: "prediction_type", value: "'flow_prediction'", valid: ["epsilon", "v_prediction", "sample"]))
        }
        config = SchedulerConfig()
        config.predictionType = "sample"
        XCTAssertThrowsError(try makeScheduler(name: "euler-a", config: config))
        XCTAssertThrowsError(try makeScheduler(name: "pndm", config: config))
        config = SchedulerConfig()
        config.thresholding = true
        XCTAssertThrowsError(try makeScheduler(name: "ddim", config: config)) { error in
            guard case SchedulerError.unsupportedOption(key: "thresholding", _, _) = error else { return XCTFail("unexpected \(error)") }
        }
        config = SchedulerConfig()
        config.betaSchedule = "sigmoid"
        XCTAssertThrowsError(try makeScheduler(name: "euler", config: config))
        config = SchedulerConfig()
        config.timestepSpacing = "uniform"
        XCTAssertThrowsError(try makeScheduler(name: "dpm++2m", config: config))
        config = SchedulerConfig()
        config.algorithmType = "sde-dpmsolver++"
        XCTAssertThrowsError(try makeScheduler(name: nil, config: { var c = config; c.className = "DPMSolverMultistepScheduler"; return c }()))
    }

    func testStepCountValidation() throws {
        var scheduler = try makeScheduler(name: "ddim", config: SchedulerConfig())
        XCTAssertThrowsError(try scheduler.setTimesteps(0))
        XCTAssertThrowsError(try scheduler.setTimesteps(1001)) { error in
            guard case SchedulerError.invalidStepCount(1001, _) = error else { return XCTFail("unexpected \(error)") }
        }
        XCTAssertNoThrow(try scheduler.setTimesteps(1000))
    }

    func testImg2ImgBeginIndexFollowsDiffusers() throws {
        var scheduler = try makeScheduler(name: "euler", config: SchedulerConfig())
        try scheduler.setTimesteps(50)
        XCTAssertEqual(scheduler.img2imgBeginIndex(strength: 0.8), 10)
        XCTAssertEqual(scheduler.img2imgBeginIndex(strength: 1.0), 0)
        XCTAssertEqual(scheduler.img2imgBeginIndex(strength: 0.0), 50)
        try scheduler.setTimesteps(7)
        XCTAssertEqual(scheduler.img2imgBeginIndex(strength: 0.3), 5)  // int(2.1) = 2 → t_start 5
    }

    func testDDIMEtaComesFromConfig() throws {
        var config = SchedulerConfig()
        config.eta = 0.5
        let ddim = try XCTUnwrap(try makeScheduler(name: "ddim", config: config) as? DDIMScheduler)
        XCTAssertEqual(ddim.eta, 0.5)
    }

    func testUpscalerLowResNoiseLevel20() throws {
        var config = SchedulerConfig()
        config.betaSchedule = "scaled_linear"
        config.betaStart = 0.0001
        config.betaEnd = 0.02
        let lowRes = try DDPMScheduler(config: config)
        let image = Tensor(shape: [1, 3, 1, 1], values: [1, 0, -1])
        let noise = Tensor(shape: [1, 3, 1, 1], values: [0, 1, 0])
        let noisy = lowRes.addNoise(original: image, noise: noise, trainTimestep: 20).scalars
        // √ᾱ[20] ≈ 0.99865, √(1 − ᾱ[20]) ≈ 0.0519 (SD2-SPEC §4.5).
        XCTAssertEqual(noisy[0], 0.99865, accuracy: 1e-4)
        XCTAssertEqual(noisy[1], 0.0519, accuracy: 1e-3)
    }
}
