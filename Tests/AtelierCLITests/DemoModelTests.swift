import Foundation
import XCTest
import AtelierDiffusion

/// The embedded demo models (Models/demo) do what their model card says, through the real
/// `atelier` binary with no --model: pictures follow held-out captions (pixel statistics, see
/// DemoCaptionChecker) and the x4 upscaler beats bicubic on held-out scenes.
///
/// CI renders the 50 held-out captions of issue 12's bar (about 1 s each in a debug build) and
/// upscales 16 held-out scenes against bicubic.
final class DemoModelTests: XCTestCase {
    static let captionsFile = CLI.repo.appendingPathComponent("Models/demo/heldout-captions.txt")
    static let fixtures = CLI.repo.appendingPathComponent("Tests/Fixtures/demo-models")

    /// The render settings of the check (and of the demo): 64 px, 20 DDIM steps, guidance 5.
    static func renderArgs(_ caption: String, seed: Int, output: String) -> [String] {
        ["render", "--prompt", caption, "--seed", "\(seed)", "--steps", "20", "--scheduler", "ddim",
         "--guidance", "5", "--width", "64", "--height", "64", "--quiet", "--output", output]
    }

    struct Score {
        var count = 0, colours = 0, backgrounds = 0, shapes = 0
    }

    /// Renders the first `n` held-out captions with the default model through `atelier render`
    /// and reads each picture back.
    func scoreHeldOut(_ n: Int) throws -> Score {
        let all = try String(contentsOf: Self.captionsFile, encoding: .utf8).split(separator: "\n").map(String.init)
        let captions = Array(all.prefix(max(1, min(n, all.count))))
        let dir = try CLI.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        var score = Score()
        for (i, text) in captions.enumerated() {
            let caption = try XCTUnwrap(DemoCaptionChecker.Caption(text), "unparsable held-out caption \(text)")
            let out = dir.appendingPathComponent("\(i).png").path
            let r = try CLI.run(Self.renderArgs(text, seed: i, output: out))
            XCTAssertEqual(r.status, 0, r.stderr)
            let image = try PNGCodec.read(path: out).rgb()
            XCTAssertEqual([image.width, image.height], [64, 64])
            let seen = DemoCaptionChecker.read(image)
            let background = DemoCaptionChecker.sameBackground(seen.background, caption.background)
            let colours = seen.colour == caption.colour && background
            score.count += 1
            if background { score.backgrounds += 1 }
            if colours { score.colours += 1 }
            if seen.shape == caption.shape { score.shapes += 1 }
            if !colours || seen.shape != caption.shape {
                print("demo check: \"\(text)\" read as \(seen.shape ?? "-") \(seen.colour ?? "-") on \(seen.background)")
            }
        }
        print("demo check over \(score.count) held-out captions: colours (shape and background) \(score.colours), backgrounds \(score.backgrounds), shapes \(score.shapes)")
        return score
    }

    /// The acceptance bar of issue 12 — shape colour and background right for ≥ 80 % of the 50
    /// held-out captions (the committed models: 48; chance is a few percent, and random weights or
    /// a broken text path score near zero).
    func testDefaultModelDrawsTheColoursOfHeldOutCaptions() throws {
        let score = try scoreHeldOut(50)
        XCTAssertGreaterThanOrEqual(Double(score.colours) / Double(score.count), 0.8,
                                    "the default model drew the caption's colours for only \(score.colours) of \(score.count) held-out captions")
    }

    func testCheckerRejectsPicturesThatDoNotFollowTheCaption() throws {
        // The checker must be able to fail: a red square on blue is not a small green circle on white.
        var px = [UInt8](repeating: 0, count: 64 * 64 * 3)
        for y in 0..<64 { for x in 0..<64 {
            let inside = (20..<44).contains(x) && (20..<44).contains(y)
            let c: [UInt8] = inside ? [220, 36, 36] : [40, 76, 220]
            px[(y * 64 + x) * 3] = c[0]; px[(y * 64 + x) * 3 + 1] = c[1]; px[(y * 64 + x) * 3 + 2] = c[2]
        } }
        let seen = DemoCaptionChecker.read(try RGBImage(width: 64, height: 64, pixels: px))
        XCTAssertEqual(seen, .init(shape: "square", colour: "red", background: ["blue"]))
        let caption = try XCTUnwrap(DemoCaptionChecker.Caption("a small green circle on a white background"))
        XCTAssertNotEqual(seen.colour, caption.colour)
        XCTAssertNotEqual(seen.shape, caption.shape)
    }

    func testCheckerReadsATwoToneBackgroundEitherWayUpButNotAnotherPair() throws {
        // Green over black with a red square: matches "black and green" as well as "green and
        // black" (captions do not say which is on top), never another pair or one colour.
        var px = [UInt8](repeating: 0, count: 64 * 64 * 3)
        for y in 0..<64 { for x in 0..<64 {
            let inside = (20..<44).contains(x) && (20..<44).contains(y)
            let c: [UInt8] = inside ? [220, 36, 36] : y < 32 ? [36, 170, 60] : [20, 20, 20]
            px[(y * 64 + x) * 3] = c[0]; px[(y * 64 + x) * 3 + 1] = c[1]; px[(y * 64 + x) * 3 + 2] = c[2]
        } }
        let seen = DemoCaptionChecker.read(try RGBImage(width: 64, height: 64, pixels: px))
        XCTAssertEqual(seen, .init(shape: "square", colour: "red", background: ["green", "black"]))
        for (text, matches) in [("a large red square on a green and black background", true),
                                ("a large red square on a black and green background", true),
                                ("a large red square on a black and blue background", false),
                                ("a large red square on a black background", false)] {
            let caption = try XCTUnwrap(DemoCaptionChecker.Caption(text))
            XCTAssertEqual(DemoCaptionChecker.sameBackground(seen.background, caption.background), matches, text)
        }
    }

    func testCheckerReadsExactHeldOutScenes() throws {
        // The exact renders (Training/scenes.py) of held-out captions are read back correctly:
        // colours and backgrounds always; shapes nearly always (over 1,000 exact held-out renders,
        // 10 seeds of Training/checker.py's twin, it misreads 2 shapes, both small stars read as
        // triangles: at 64 px a small star's points fill its bounding box like a triangle's).
        let scenes = try JSONDecoder().decode([Scene].self, from: Data(contentsOf: Self.fixtures.appendingPathComponent("scenes.json")))
        XCTAssertGreaterThanOrEqual(scenes.count, 16)
        var shapes = 0
        for s in scenes {
            let caption = try XCTUnwrap(DemoCaptionChecker.Caption(s.caption))
            let seen = DemoCaptionChecker.read(try PNGCodec.read(path: Self.fixtures.appendingPathComponent(s.target).path).rgb())
            if seen.shape == caption.shape { shapes += 1 } else { print("checker: exact \"\(s.caption)\" read as a \(seen.shape ?? "-")") }
            XCTAssertEqual(seen.colour, caption.colour, s.caption)
            XCTAssertTrue(DemoCaptionChecker.sameBackground(seen.background, caption.background), "\(s.caption): read \(seen.background)")
        }
        XCTAssertGreaterThanOrEqual(shapes, scenes.count - 1, "the checker misread \(scenes.count - shapes) shapes of exact renders")
    }

    struct Scene: Decodable {
        let caption, target, input: String
    }

    /// Acceptance of issue 12: the ×4 output of the default upscaler is closer (mean PSNR) to the
    /// exact 64 px render of held-out scenes than bicubic interpolation of the 16 px input is.
    func testUpscalerBeatsBicubicOnHeldOutScenes() throws {
        let scenes = try JSONDecoder().decode([Scene].self, from: Data(contentsOf: Self.fixtures.appendingPathComponent("scenes.json")))
        let dir = try CLI.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        var psnrModel = 0.0, psnrBicubic = 0.0
        for (i, s) in scenes.enumerated() {
            let input = Self.fixtures.appendingPathComponent(s.input).path
            let target = try PNGCodec.read(path: Self.fixtures.appendingPathComponent(s.target).path).rgb()
            let out = dir.appendingPathComponent("\(i).png").path
            let r = try CLI.run(["upscale", "--image", input, "--prompt", s.caption, "--seed", "\(i)", "--steps", "20",
                                 "--guidance", "1", "--noise-level", "20", "--quiet", "--output", out])
            XCTAssertEqual(r.status, 0, r.stderr)
            let up = try PNGCodec.read(path: out).rgb()
            let bicubic = try ImageResampler.resize(try PNGCodec.read(path: input).rgb(), width: 64, height: 64, filter: .bicubic)
            let (pm, pb) = (Self.psnr(up, target), Self.psnr(bicubic, target))
            print(String(format: "x4 \"%@\": model %.2f dB, bicubic %.2f dB", s.caption, pm, pb))
            psnrModel += pm / Double(scenes.count)
            psnrBicubic += pb / Double(scenes.count)
        }
        print(String(format: "x4 mean PSNR over %d held-out scenes: model %.2f dB, bicubic %.2f dB", scenes.count, psnrModel, psnrBicubic))
        XCTAssertGreaterThan(psnrModel, psnrBicubic, "the x4 upscaler should beat bicubic on held-out scenes")
    }

    static func psnr(_ a: RGBImage, _ b: RGBImage) -> Double {
        guard a.width == b.width, a.height == b.height else { return -.infinity }
        var se = 0.0
        for (x, y) in zip(a.pixels, b.pixels) { let d = Double(x) - Double(y); se += d * d }
        let mse = max(se / Double(a.pixels.count), 1e-10)
        return 10 * log10(255 * 255 / mse)
    }
}
