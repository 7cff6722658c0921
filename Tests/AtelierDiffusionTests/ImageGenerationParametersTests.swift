import XCTest
@testable import AtelierDiffusion
@testable import AtelierImaging

/// The AUTOMATIC1111 infotext. Expected strings were produced by A1111's own `create_infotext`
/// logic (`quote` = `json.dumps(v, ensure_ascii=False)` for values with `,` `:` or a newline,
/// Python `repr` for floats, final `.strip()`), run in Python.
final class ImageGenerationParametersTests: XCTestCase {
    func testLayoutMatchesA1111() {
        let p = GenerationParameters(prompt: "a red fox", steps: 20, sampler: "dpm++2m-karras", cfgScale: 7.5, seed: 42,
                                     width: 512, height: 512, modelName: "name", modelHash: "abcdef1234", strength: 0.8)
        XCTAssertEqual(p.a1111Text(),
                       "a red fox\nSteps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7.5, Seed: 42, Size: 512x512, Model hash: abcdef1234, Model: name, Denoising strength: 0.8")
    }

    func testQuotingAndOptionalFields() {
        let p = GenerationParameters(prompt: "  cat, dog\n\"quoted\" prompt  ", negativePrompt: "ugly, blurry", steps: 50,
                                     sampler: "euler-a", cfgScale: 7, seed: UInt64.max, width: 768, height: 512,
                                     modelName: "my \"model\", v2: final\\x", strength: 1e-5, noiseLevel: 20,
                                     guidanceRescale: 0.7, mode: "upscale")
        XCTAssertEqual(p.a1111Text(),
                       "cat, dog\n\"quoted\" prompt  \nNegative prompt: ugly, blurry\nSteps: 50, Sampler: Euler a, CFG scale: 7.0, Seed: 18446744073709551615, Size: 768x512, Model: \"my \\\"model\\\", v2: final\\\\x\", Denoising strength: 1e-05, CFG Rescale: 0.7, Noise level: 20, Mode: upscale")
        let q = GenerationParameters(prompt: "tab\there\u{1}ctl", steps: 1, sampler: "ddim", cfgScale: 1e16, seed: 0,
                                     width: 8, height: 8, modelName: "a\u{2028}b:c")
        XCTAssertEqual(q.a1111Text(),
                       "tab\there\u{1}ctl\nSteps: 1, Sampler: DDIM, CFG scale: 1e+16, Seed: 0, Size: 8x8, Model: \"a\u{2028}b:c\"")
    }

    func testPythonFloatRepr() {
        let cases: [(Double, String)] = [
            (7.5, "7.5"), (7.0, "7.0"), (0.1, "0.1"), (1e-05, "1e-05"), (0.0001, "0.0001"), (1e16, "1e+16"),
            (1e15, "1000000000000000.0"), (123456789012345678.0, "1.2345678901234568e+17"), (Double.leastNonzeroMagnitude, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"), (-0.0, "-0.0"), (0.30000000000000004, "0.30000000000000004"),
            (2.5e-5, "2.5e-05"), (1234.5678, "1234.5678"), (100.0, "100.0"), (1e22, "1e+22"), (0, "0.0"), (-7.25, "-7.25"),
        ]
        for (value, python) in cases {
            XCTAssertEqual(A1111Infotext.pythonFloat(value), python, "\(value)")
        }
    }

    func testParameterRegexMatchesPython() {
        let pairs = A1111Infotext.findParameters(
            "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 965400086, Size: 512x512, Model hash: 45dee52b, Model: \"a, b\", Empty: , Weird: \"unterminated, X: 1")
        // Python: re_param.findall(...) on the same line.
        let expected = [("Steps", "20"), ("Sampler", "Euler a"), ("CFG scale", "7"), ("Seed", "965400086"), ("Size", "512x512"),
                        ("Model hash", "45dee52b"), ("Model", "\"a, b\""), ("Empty", ""), ("Weird", "\"unterminated")]
        XCTAssertEqual(pairs.map(\.key), expected.map(\.0))
        XCTAssertEqual(pairs.map(\.value), expected.map(\.1))
    }

    func testRoundTrips() throws {
        let prompts = [
            "simple",
            "a, b: c; d",
            "multi\nline\nprompt, with commas",
            "quotes \"inside\" and 'single' and \\ backslash",
            "unicode: 日本の庭園 🌸 façade — naïve",
            "Steps: 5, Sampler: fake, CFG scale: 1",  // a prompt that looks like a settings line
            "",
        ]
        for (i, prompt) in prompts.enumerated() {
            for negative in ["", "low quality, blurry", "two\nlines: here"] {
                var p = GenerationParameters(prompt: prompt, negativePrompt: negative, steps: 10 + i, sampler: "euler",
                                             cfgScale: 0.1 * Double(i + 1), seed: UInt64(i) * 1_000_003, width: 64 * (i + 1),
                                             height: 512, modelName: "model, \"v\": \(i)", modelHash: "0123456789")
                if i % 2 == 0 { p.strength = 0.75; p.mode = "img2img" }
                if i % 3 == 0 { p.noiseLevel = 350; p.guidanceRescale = 0.25 }
                let text = p.a1111Text()
                XCTAssertEqual(try GenerationParameters.parse(text), p, "round trip of:\n\(text)")
            }
        }
    }

    func testSamplerNamesBothWays() throws {
        let expected = ["ddim": "DDIM", "pndm": "PLMS", "euler": "Euler", "euler-a": "Euler a",
                        "dpm++2m": "DPM++ 2M", "dpm++2m-karras": "DPM++ 2M Karras"]
        for (id, name) in expected {
            XCTAssertEqual(A1111SamplerNames.displayName(for: id), name)
            XCTAssertEqual(A1111SamplerNames.id(for: name), id)
            var p = GenerationParameters(prompt: "x", steps: 1, sampler: id, cfgScale: 1, seed: 1, width: 8, height: 8)
            XCTAssertTrue(p.a1111Text().contains("Sampler: \(name),"))
            XCTAssertEqual(try GenerationParameters.parse(p.a1111Text()).sampler, id)
            p.sampler = name  // a display name passes through unchanged
            XCTAssertTrue(p.a1111Text().contains("Sampler: \(name),"))
        }
        XCTAssertEqual(A1111SamplerNames.id(for: "euler A"), "euler-a")
        XCTAssertEqual(A1111SamplerNames.id(for: "PNDM"), "pndm")
        XCTAssertEqual(A1111SamplerNames.id(for: "DPM++ 2M", scheduleType: "Karras"), "dpm++2m-karras")
        XCTAssertEqual(A1111SamplerNames.id(for: "DPM++ 2M", scheduleType: "Automatic"), "dpm++2m")
        XCTAssertNil(A1111SamplerNames.id(for: "UniPC"))
        XCTAssertNil(A1111SamplerNames.displayName(for: "unipc"))
    }

    func testParsesRealA1111Output() throws {
        // The docstring example of A1111's parse_generation_parameters, plus a 1.9-style schedule type.
        let legacy = """
        girl with an artist's beret, determined, blue eyes, desert scene, computer monitors, heavy makeup, by Alphonse Mucha and Charlie Bowater, ((eyeshadow)), (coquettish), detailed, intricate
        Negative prompt: ugly, fat, obese, chubby, (((deformed))), [blurry], bad anatomy, disfigured, poorly drawn face, mutation, mutated, (extra_limb), (ugly), (poorly drawn hands), messy drawing
        Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 965400086, Size: 512x512, Model hash: 45dee52b
        """
        let p = try GenerationParameters.parse(legacy)
        XCTAssertTrue(p.prompt.hasPrefix("girl with an artist's beret"))
        XCTAssertTrue(p.negativePrompt.hasSuffix("messy drawing"))
        XCTAssertEqual(p.steps, 20)
        XCTAssertEqual(p.sampler, "euler-a")
        XCTAssertEqual(p.cfgScale, 7)
        XCTAssertEqual(p.seed, 965_400_086)
        XCTAssertEqual(p.width, 512)
        XCTAssertEqual(p.modelHash, "45dee52b")
        XCTAssertNil(p.modelName)

        let modern = "castle\r\nNegative prompt: fog\nSteps: 30, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 5.5, Seed: 1, Size: 768x640, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Denoising strength: 0.35, Version: v1.10.1"
        let m = try GenerationParameters.parse(modern)
        XCTAssertEqual(m.prompt, "castle")  // str.strip() removes the \r, as in A1111
        XCTAssertEqual(m.negativePrompt, "fog")
        XCTAssertEqual(m.sampler, "dpm++2m-karras")
        XCTAssertEqual(m.strength, 0.35)
        XCTAssertEqual(m.width, 768)
        XCTAssertEqual(m.height, 640)
        XCTAssertEqual(m.modelName, "v1-5-pruned-emaonly")
    }

    func testParseErrors() {
        XCTAssertThrowsError(try GenerationParameters.parse("just a prompt")) { error in
            XCTAssertEqual(error as? GenerationParametersError, .noSettingsLine)
        }
        XCTAssertThrowsError(try GenerationParameters.parse("p\nSampler: DDIM, CFG scale: 7, Seed: 1, Size: 8x8")) { error in
            XCTAssertEqual(error as? GenerationParametersError, .missingField("Steps"))
        }
        XCTAssertThrowsError(try GenerationParameters.parse("p\nSteps: x, Sampler: DDIM, CFG scale: 7, Seed: 1, Size: 8x8")) { error in
            XCTAssertEqual(error as? GenerationParametersError, .invalidValue(field: "Steps", value: "x"))
        }
        XCTAssertThrowsError(try GenerationParameters.parse("p\nSteps: 1, Sampler: DDIM, CFG scale: 7, Seed: -1, Size: 8x8"))
        XCTAssertThrowsError(try GenerationParameters.parse("p\nSteps: 1, Sampler: DDIM, CFG scale: 7, Seed: 1, Size: 8by8"))
    }

    func testJSONStringDecoding() {
        XCTAssertEqual(A1111Infotext.unquote("\"a\\u00e9\\ud83c\\udf38\\/\\n\""), "aé🌸/\n")
        XCTAssertEqual(A1111Infotext.unquote("\"bad \\x escape\""), "\"bad \\x escape\"", "invalid JSON stays verbatim")
        XCTAssertEqual(A1111Infotext.unquote("\"a\" \"b\""), "\"a\" \"b\"", "trailing data stays verbatim")
        XCTAssertEqual(A1111Infotext.unquote("plain"), "plain")
        for s in ["", "x", "a\u{0}b\u{1F}c\u{7F}", "\"\\\u{8}\u{C}\t\r\n", "🌸\u{2028}"] {
            XCTAssertEqual(A1111Infotext.decodeJSONString(A1111Infotext.jsonString(s)), s)
        }
    }

    func testCodable() throws {
        let p = GenerationParameters(prompt: "x", steps: 3, sampler: "ddim", cfgScale: 2, seed: 9, width: 8, height: 16,
                                     strength: 0.5, mode: "img2img")
        let back = try JSONDecoder().decode(GenerationParameters.self, from: JSONEncoder().encode(p))
        XCTAssertEqual(back, p)
    }
}
