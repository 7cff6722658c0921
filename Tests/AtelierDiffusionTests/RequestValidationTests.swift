@testable import AtelierDiffusion
import AtelierRequests
import XCTest

/// The shared validation (AtelierRequests) on its own: per-mode rules, bounds, messages, and
/// agreement with the engine (scheduler names, tile grid).
final class RequestValidationTests: XCTestCase {
    func refusal(_ d: GenerationDescription) -> RequestValidationError? {
        do { try GenerationValidation.validate(d); return nil } catch { return error as? RequestValidationError }
    }

    func txt2img(_ edit: (inout GenerationDescription) -> Void = { _ in }) -> GenerationDescription {
        var d = GenerationDescription(mode: .txt2img, prompt: "a lighthouse")
        edit(&d)
        return d
    }

    func testEachRuleRefusesWithItsFieldAndKind() {
        let table: [(String, GenerationDescription, RequestField, RequestValidationError.Kind)] = [
            ("steps 0", txt2img { $0.steps = 0 }, .steps, .invalid),
            ("steps 5e9", txt2img { $0.steps = 5_000_000_000 }, .steps, .invalid),
            ("negative steps", txt2img { $0.steps = -5 }, .steps, .invalid),
            ("guidance NaN", txt2img { $0.guidance = .nan }, .guidance, .invalid),
            ("rescale 1.5", txt2img { $0.guidanceRescale = 1.5 }, .guidanceRescale, .invalid),
            ("width 8", txt2img { $0.width = 8 }, .width, .invalid),
            ("width 8589934592", txt2img { $0.width = 8_589_934_592 }, .width, .invalid),
            ("height not a multiple of 8", txt2img { $0.height = 100 }, .height, .invalid),
            ("scheduler ddpm", txt2img { $0.scheduler = "ddpm" }, .scheduler, .invalid),
            ("count 5e9", txt2img { $0.count = 5_000_000_000 }, .count, .invalid),
            ("blank prompt", txt2img { $0.prompts = ["  "] }, .prompt, .invalid),
            ("long prompt", txt2img { $0.prompts = [String(repeating: "x", count: 16_385)] }, .prompt, .tooLarge),
            ("long negative", txt2img { $0.negativePrompt = String(repeating: "x", count: 16_385) }, .negativePrompt, .tooLarge),
            ("long model", txt2img { $0.model = String(repeating: "m", count: 1 << 20) }, .model, .tooLarge),
            ("10001 images", txt2img { $0.prompts = Array(repeating: "p", count: 11); $0.count = 1000 }, .tasks, .tooLarge),
            ("strength 0", txt2img { $0.mode = .img2img; $0.initImage = .init(width: 64, height: 64); $0.strength = 0 }, .strength, .invalid),
            ("strength × steps < 1", txt2img { $0.mode = .img2img; $0.initImage = .init(width: 64, height: 64); $0.strength = 0.09; $0.steps = 10 }, .strength, .invalid),
            ("mask and depth map", txt2img { $0.mode = .inpaint; $0.initImage = .init(width: 64, height: 64); $0.mask = .init(width: 64, height: 64); $0.depthMap = .init(width: 8, height: 8) }, .depthMap, .invalid),
            ("depth2img with a size", txt2img { $0.mode = .depth2img; $0.initImage = .init(width: 64, height: 64); $0.depthMap = .init(width: 64, height: 64); $0.width = 128 }, .width, .invalid),
            ("init 16384²", txt2img { $0.mode = .img2img; $0.initImage = .init(width: 16384, height: 16384) }, .initImage, .tooLarge),
            ("mask without init", txt2img { $0.mode = .inpaint; $0.mask = .init(width: 64, height: 64) }, .initImage, .invalid),
            ("mask of another size", txt2img { $0.mode = .inpaint; $0.initImage = .init(width: 64, height: 64); $0.mask = .init(width: 64, height: 32) }, .mask, .invalid),
            ("upscale one pass 257", GenerationDescription(mode: .upscale, prompt: "") .with { $0.initImage = .init(width: 257, height: 8) }, .image, .tooLarge),
            ("upscale one pass 4096", GenerationDescription(mode: .upscale, prompt: "") .with { $0.initImage = .init(width: 4096, height: 4096) }, .image, .tooLarge),
            ("upscale tiled 2048", GenerationDescription(mode: .upscale, prompt: "") .with { $0.initImage = .init(width: 2048, height: 16); $0.tile = 128; $0.overlap = 32 }, .image, .tooLarge),
            ("tile 5e9", GenerationDescription(mode: .upscale, prompt: "") .with { $0.initImage = .init(width: 64, height: 64); $0.tile = 5_000_000_000 }, .tile, .invalid),
            ("overlap half the tile", GenerationDescription(mode: .upscale, prompt: "") .with { $0.initImage = .init(width: 64, height: 64); $0.tile = 32; $0.overlap = 16 }, .overlap, .invalid),
            ("2601 tiles", GenerationDescription(mode: .upscale, prompt: "") .with { $0.initImage = .init(width: 1024, height: 1024); $0.tile = 32; $0.overlap = 12 }, .tile, .tooLarge),
            ("noise level 351", GenerationDescription(mode: .upscale, prompt: "") .with { $0.initImage = .init(width: 64, height: 64); $0.noiseLevel = 351 }, .noiseLevel, .invalid),
        ]
        for (name, d, field, kind) in table {
            guard let e = refusal(d) else { XCTFail("\(name) was accepted"); continue }
            XCTAssertEqual(e.field, field, "\(name): \(e.message)")
            XCTAssertEqual(e.kind, kind, "\(name): \(e.message)")
            XCTAssertFalse(e.message.contains("\n"), "\(name): one line")
            XCTAssertLessThan(e.message.count, 400, "\(name): echoes are cut: \(e.message.prefix(200))")
        }
    }

    func testValidRequestsOfEveryModePass() {
        let ok: [GenerationDescription] = [
            txt2img { $0.width = 64; $0.height = 4096; $0.steps = 1000; $0.guidance = 0; $0.scheduler = "dpm++2m-karras" },
            txt2img { $0.mode = .img2img; $0.initImage = .init(width: 32, height: 32); $0.strength = 0.1; $0.steps = 10 },
            txt2img { $0.mode = .inpaint; $0.initImage = .init(width: 32, height: 40); $0.mask = .init(width: 32, height: 40) },
            txt2img { $0.mode = .depth2img; $0.initImage = .init(width: 32, height: 32); $0.depthMap = .init(width: 16, height: 10) },
            GenerationDescription(mode: .upscale, prompt: "").with { $0.initImage = .init(width: 256, height: 256); $0.noiseLevel = 350 },
            GenerationDescription(mode: .upscale, prompt: "").with { $0.initImage = .init(width: 1024, height: 1024); $0.tile = 128; $0.overlap = 32 },
        ]
        for d in ok { XCTAssertNil(refusal(d), "\(d)") }
    }

    func testEchoedValuesAreCutToEightyCharacters() {
        let echoed = RequestValidationError.echo(String(repeating: "m", count: 1 << 20))
        XCTAssertEqual(echoed.count, 81)
        XCTAssertTrue(echoed.hasSuffix("…"))
        XCTAssertEqual(RequestValidationError.echo("a\nb"), "a\\u{a}b")
    }

    /// The scheduler names come from one list: the engine builds every selectable one, and the
    /// validation accepts exactly those.
    func testSchedulerNamesComeFromOneListTheEngineBuilds() throws {
        XCTAssertEqual(SchedulerName.selectableList, "ddim, pndm, euler, euler-a, dpm++2m, dpm++2m-karras")
        var config = SchedulerConfig()
        config.className = "DDIMScheduler"; config.numTrainTimesteps = 1000; config.betaStart = 0.00085
        config.betaEnd = 0.012; config.betaSchedule = "scaled_linear"
        for name in SchedulerName.allCases {
            XCTAssertNoThrow(try makeScheduler(name: name.rawValue, config: config), name.rawValue)
            XCTAssertEqual(refusal(txt2img { $0.scheduler = name.rawValue }) == nil, name.isSelectable, name.rawValue)
        }
    }

    /// The pure tile count used to refuse an upscale before cutting it equals TileGrid's.
    func testTileCountMatchesTheTileGrid() throws {
        for (w, h) in [(16, 16), (100, 72), (129, 37), (512, 300), (1024, 1024)] {
            for (tile, overlap) in [(32, 8), (32, 12), (64, 0), (128, 32), (512, 60)] {
                let grid = try TileGrid(width: w, height: h, tile: tile, overlap: overlap)
                XCTAssertEqual(UpscaleTiling.tileCount(width: w, height: h, tile: tile, overlap: overlap), grid.tiles.count,
                               "\(w)×\(h) tile \(tile) overlap \(overlap)")
            }
        }
    }

    /// The declared size is read from the header alone: a 51-byte file declaring 16384² (item 11).
    func testPNGHeaderGivesTheDeclaredSizeWithoutDecoding() throws {
        var bytes: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]
        bytes += [0, 0, 0x40, 0, 0, 0, 0x40, 0, 8, 2, 0, 0, 0, 0, 0, 0, 0]
        XCTAssertEqual(try PNGHeader.declaredSize(bytes), ImageSize(width: 16384, height: 16384))
        XCTAssertThrowsError(try PNGHeader.declaredSize(Array(bytes.prefix(20))))
        XCTAssertThrowsError(try PNGHeader.declaredSize(Array("GIF89a".utf8)))
        // The decoder, given the input limits, refuses it too (second line of defence).
        XCTAssertThrowsError(try PNGCodec.decode(bytes, limits: .inputImage))
    }
}

extension GenerationDescription {
    func with(_ edit: (inout GenerationDescription) -> Void) -> GenerationDescription {
        var copy = self
        edit(&copy)
        return copy
    }
}
