import Foundation
import XCTest
import AtelierKernels
import AtelierDiffusion

/// `atelier render` / `atelier upscale` as a user meets them: bad input is a one-line error with a
/// non-zero exit and no output file; good input writes PNGs that reproduce themselves.
final class RenderCommandTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws { dir = try CLI.scratch() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    var base: String { CLI.models.appendingPathComponent("tiny-base").path }
    var inpaint: String { CLI.models.appendingPathComponent("tiny-inpaint").path }
    var out: String { dir.appendingPathComponent("out.png").path }

    /// Asserts a failed run: non-zero exit, a single error line mentioning `needle`, no output file.
    func assertRefused(_ args: [String], mentions needle: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try CLI.run(args)
        XCTAssertNotEqual(r.status, 0, "exit status", file: file, line: line)
        let lines = r.stderr.split(separator: "\n").filter { !$0.hasPrefix("Usage:") && !$0.contains("--help") && !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        XCTAssertEqual(lines.count, 1, "expected one error line, got:\n\(r.stderr)", file: file, line: line)
        XCTAssertTrue(r.stderr.lowercased().contains(needle.lowercased()), "error should mention '\(needle)': \(r.stderr)", file: file, line: line)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out), "no output file after a failure", file: file, line: line)
        XCTAssertFalse(r.stderr.contains("Fatal error"), "crashed: \(r.stderr)", file: file, line: line)
    }

    func testMissingModelIsRefusedByName() throws {
        try assertRefused(["render", "--model", dir.appendingPathComponent("nope").path, "--prompt", "x", "--output", out], mentions: "nope")
    }

    func testModelFolderWithoutUNetIsRefused() throws {
        let broken = dir.appendingPathComponent("broken")
        try FileManager.default.createDirectory(at: broken, withIntermediateDirectories: true)
        try Data("{}".utf8).write(to: broken.appendingPathComponent("model_index.json"))
        try assertRefused(["render", "--model", broken.path, "--prompt", "x", "--output", out], mentions: "config.json")
    }

    func testInpaintingModelWithoutMaskSaysWhatItNeeds() throws {
        try assertRefused(["render", "--model", inpaint, "--prompt", "x", "--output", out], mentions: "--mask")
    }

    func testMaskOnATextToImageModelIsRefused() throws {
        let img = CLI.inputs.appendingPathComponent("init_32x32.png").path
        let mask = CLI.inputs.appendingPathComponent("mask_32x32.png").path
        guard FileManager.default.fileExists(atPath: mask) else { throw XCTSkip("fixture mask missing") }
        try assertRefused(["render", "--model", base, "--prompt", "x", "--init-image", img, "--mask", mask, "--output", out], mentions: "inpainting")
    }

    func testSizeNotAMultipleOfEightIsRefused() throws {
        try assertRefused(["render", "--model", base, "--prompt", "x", "--width", "100", "--output", out], mentions: "multiple of 8")
    }

    func testUnknownSchedulerListsTheValidOnes() throws {
        try assertRefused(["render", "--model", base, "--prompt", "x", "--scheduler", "lms", "--output", out], mentions: "dpm++2m-karras")
    }

    func testNegativeStepsAreRefused() throws {
        try assertRefused(["render", "--model", base, "--prompt", "x", "--steps=-3", "--output", out], mentions: "steps")
    }

    func testTruncatedInitImageIsRefused() throws {
        let src = try Data(contentsOf: CLI.inputs.appendingPathComponent("init_32x32.png"))
        let bad = dir.appendingPathComponent("bad.png")
        try src.prefix(src.count / 2).write(to: bad)
        try assertRefused(["render", "--model", base, "--prompt", "x", "--init-image", bad.path, "--output", out], mentions: "bad.png")
    }

    func testNonPNGInitImageIsRefused() throws {
        let bad = dir.appendingPathComponent("photo.png")
        try Data([0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, 0x4A, 0x46, 0x49, 0x46]).write(to: bad)
        try assertRefused(["render", "--model", base, "--prompt", "x", "--init-image", bad.path, "--output", out], mentions: "photo.png")
    }

    func testMaskOfAnotherSizeIsRefused() throws {
        let img = CLI.inputs.appendingPathComponent("init_32x32.png").path
        let other = dir.appendingPathComponent("mask.png")
        try PNGCodec.write(try GrayImage(width: 16, height: 16, pixels: Array(repeating: 255, count: 256)), to: other)
        try assertRefused(["render", "--model", inpaint, "--prompt", "x", "--init-image", img, "--mask", other.path, "--output", out], mentions: "same size")
    }

    func testCountWritesNumberedFilesWithConsecutiveSeeds() throws {
        let r = try CLI.run(["render", "--model", base, "--prompt", "a cat", "--seed", "7", "--count", "2", "--steps", "2", "--output", out, "--quiet"])
        XCTAssertEqual(r.status, 0, r.stderr)
        for (i, name) in ["out-0.png", "out-1.png"].enumerated() {
            let png = try PNGCodec.read(path: dir.appendingPathComponent(name).path)
            let p = try GenerationParameters.parse(try XCTUnwrap(png.parametersText))
            XCTAssertEqual(p.seed, 7 + UInt64(i))
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }

    func testFromPNGReRendersTheSamePixels() throws {
        let first = try CLI.run(["render", "--model", base, "--prompt", "a lighthouse, dusk", "--negative-prompt", "fog",
                                 "--seed", "11", "--steps", "3", "--guidance", "6", "--scheduler", "dpm++2m-karras",
                                 "--width", "64", "--height", "64",  // sizes are 64…4096 (the tiny model's own is 32)
                                 "--output", out, "--quiet"])
        XCTAssertEqual(first.status, 0, first.stderr)
        let again = dir.appendingPathComponent("again.png").path
        let second = try CLI.run(["render", "--model", base, "--from-png", out, "--output", again, "--quiet"])
        XCTAssertEqual(second.status, 0, second.stderr)
        XCTAssertEqual(try PNGCodec.read(path: out).rgb(), try PNGCodec.read(path: again).rgb())
    }

    /// Non-negotiable: a seed means the same image on any worker. Workers differ in core count;
    /// 128 px (a 64² latent here) is large enough that the GEMMs are split into blocks.
    func testSameSeedGivesSamePixelsWhateverTheThreadCount() throws {
        var images: [RGBImage] = []
        for threads in ["1", "2", "3"] {
            let path = dir.appendingPathComponent("t\(threads).png").path
            let r = try CLI.run(["render", "--model", base, "--prompt", "a harbour", "--seed", "502", "--steps", "2",
                                 "--width", "128", "--height", "128", "--output", path, "--quiet"],
                                environment: ["ATELIER_THREADS": threads], timeout: 300)
            XCTAssertEqual(r.status, 0, r.stderr)
            images.append(try PNGCodec.read(path: path).rgb())
        }
        XCTAssertEqual(images[0], images[1], "1 vs 2 threads")
        XCTAssertEqual(images[0], images[2], "1 vs 3 threads")
    }

    /// The kernels' promise at image level: the scalar, AVX2 and (where the CPU has it) AVX-512
    /// kernels render the same image, e.g. an AVX2 path forced on an AVX-512 machine.
    func testSameSeedGivesSamePixelsOnEveryKernelInstructionSet() throws {
        var images: [(String, RGBImage)] = []
        for isa in OwnGEMM.supportedISAs {
            let path = dir.appendingPathComponent("isa-\(isa).png").path
            let r = try CLI.run(["render", "--model", base, "--prompt", "a harbour", "--seed", "503", "--steps", "2",
                                 "--width", "64", "--height", "64", "--output", path, "--quiet"],
                                environment: ["ATELIER_KERNEL_ISA": isa], timeout: 300)
            XCTAssertEqual(r.status, 0, r.stderr)
            images.append((isa, try PNGCodec.read(path: path).rgb()))
        }
        XCTAssertGreaterThanOrEqual(images.count, 2, "at least scalar and one SIMD family")
        for (isa, image) in images.dropFirst() { XCTAssertEqual(image, images[0].1, "\(isa) vs \(images[0].0)") }
    }

    /// bf16 renders of one prompt and seed at side × side px, for each family in `families` and 1
    /// and 3 threads, asserted equal within each numerics class (AMX tiles are a class of their
    /// own); returns the first image of the vdpbf16ps class.
    func assertBF16RendersAgree(side: Int, seed: Int, families: [String]) throws -> RGBImage? {
        var classes: [Bool: [(String, RGBImage)]] = [:]
        for isa in families {
            for threads in ["1", "3"] {
                let path = dir.appendingPathComponent("bf16-\(side)-\(isa)-\(threads).png").path
                let r = try CLI.run(["render", "--model", base, "--prompt", "a harbour", "--seed", "\(seed)", "--steps", "2",
                                     "--width", "\(side)", "--height", "\(side)", "--precision", "bf16", "--output", path, "--quiet"],
                                    environment: ["ATELIER_KERNEL_ISA": isa, "ATELIER_THREADS": threads], timeout: 300)
                XCTAssertEqual(r.status, 0, r.stderr)
                classes[isa == "amxbf16", default: []].append(("\(isa)/\(threads) threads", try PNGCodec.read(path: path).rgb()))
            }
        }
        for images in classes.values {
            for (what, image) in images.dropFirst() { XCTAssertEqual(image, images[0].1, "\(side) px: \(what) vs \(images[0].0)") }
        }
        return classes[false]?.first?.1
    }

    /// `--precision bf16`: one numerics class, so the same pixels for every instruction set and
    /// thread count — and not the fp32 pixels (the option is not ignored). AMX tiles are a class of
    /// their own: the same pixels for every thread count, compared among themselves.
    func testBF16RenderGivesSamePixelsOnEveryInstructionSetAndThreadCount() throws {
        let bf16 = try XCTUnwrap(try assertBF16RendersAgree(side: 64, seed: 503, families: OwnGEMM.supportedISAs))
        let fp32 = dir.appendingPathComponent("fp32.png").path
        let r = try CLI.run(["render", "--model", base, "--prompt", "a harbour", "--seed", "503", "--steps", "2",
                             "--width", "64", "--height", "64", "--output", fp32, "--quiet"], timeout: 300)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertNotEqual(try PNGCodec.read(path: fp32).rgb(), bf16, "bf16 must not silently render in fp32")
    }

    /// The same at 192 px (a 24² latent, 1152 pixels a CFG batch), where the 3×3 layers take the
    /// fp32 Winograd form on the bf16 weights (but on AMX tiles). The scalar family is left out: it
    /// takes minutes here in a debug build, and WinogradConvolutionTests checks it layer by layer.
    func testBF16WinogradRenderGivesSamePixelsOnEveryVectorInstructionSetAndThreadCount() throws {
        let families = OwnGEMM.supportedISAs.filter { $0 != "scalar" }
        XCTAssertNotNil(try assertBF16RendersAgree(side: 192, seed: 509, families: families))
    }

    func testUnknownPrecisionIsRefusedNamingTheChoices() throws {
        let r = try CLI.run(["render", "--prompt", "x", "--precision", "fp16", "--output", dir.appendingPathComponent("x.png").path])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("fp32") && r.stderr.contains("bf16"), r.stderr)
    }

    func testHelpTeachesWithExamples() throws {
        let r = try CLI.run(["render", "--help"])
        XCTAssertEqual(r.status, 0)
        XCTAssertTrue(r.stdout.contains("Examples:"))
        XCTAssertTrue(r.stdout.contains("--init-image"))
    }
}
