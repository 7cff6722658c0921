import Foundation
import XCTest
import AtelierDiffusion

/// `atelier contact-sheet`: images enlarged into a grid, each prompt lettered underneath.
final class ContactSheetCommandTests: XCTestCase {
    func uniform(_ side: Int, _ rgb: (UInt8, UInt8, UInt8)) throws -> RGBImage {
        try RGBImage(width: side, height: side, red: rgb.0, green: rgb.1, blue: rgb.2)
    }

    func write(_ image: RGBImage, prompt: String?, to url: URL) throws {
        if let prompt {
            try PNGCodec.write(image, to: url, parameters: GenerationParameters(
                prompt: prompt, steps: 20, sampler: "ddim", cfgScale: 5, seed: 1, width: image.width, height: image.height))
        } else {
            try PNGCodec.write(image, to: url)
        }
    }

    /// Dark pixels in rows y0..<y1, columns x0..<x1.
    func ink(_ s: RGBImage, x: Range<Int>, y: Range<Int>) -> [Int] {
        var out: [Int] = []
        for yy in y { for xx in x where s[xx, yy].red < 64 && s[xx, yy].green < 64 && s[xx, yy].blue < 64 { out.append(yy * s.width + xx) } }
        return out
    }

    func testSheetEnlargesEachImageAndLettersItsPromptUnderneath() throws {
        let dir = try CLI.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let a = dir.appendingPathComponent("a.png"), b = dir.appendingPathComponent("b.png"), c = dir.appendingPathComponent("plain-name.png")
        try write(try uniform(64, (220, 36, 36)), prompt: "a small red circle on a blue background", to: a)
        try write(try uniform(64, (40, 76, 220)), prompt: "blue", to: b)
        try write(try uniform(128, (36, 170, 60)), prompt: nil, to: c)
        let out = dir.appendingPathComponent("sheet.png").path
        let r = try CLI.run(["contact-sheet", a.path, b.path, c.path, "--columns", "2", "--output", out])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines), out)
        let s = try PNGCodec.read(path: out).rgb()
        // cells of 128 px (the largest image); 8 px padding; 2 columns, 2 rows
        XCTAssertEqual(s.width, 8 + 2 * (128 + 8))
        // 64 px images are enlarged 2× to fill the cell, the 128 px one is not
        XCTAssertTrue(s[8, 8] == (220, 36, 36) && s[8 + 127, 8 + 127] == (220, 36, 36))
        XCTAssertTrue(s[8 + 136, 8] == (40, 76, 220) && s[8 + 136 + 127, 8 + 127] == (40, 76, 220))
        // captions: ink under each image, none above; the long prompt wraps onto several lines
        let captionTop = 8 + 128 + 4
        let inkA = ink(s, x: 8..<136, y: captionTop..<(captionTop + 4 * BitmapFontMetrics.lineHeight))
        let inkB = ink(s, x: 144..<272, y: captionTop..<(captionTop + 4 * BitmapFontMetrics.lineHeight))
        XCTAssertFalse(inkA.isEmpty)
        XCTAssertFalse(inkB.isEmpty)
        XCTAssertGreaterThan(inkA.count, 4 * inkB.count, "the 39-character caption should carry far more ink than \"blue\"")
        XCTAssertFalse(ink(s, x: 8..<136, y: (captionTop + BitmapFontMetrics.lineHeight)..<(captionTop + 2 * BitmapFontMetrics.lineHeight)).isEmpty,
                       "a 39-character caption in a 128 px cell wraps onto a second line")
        XCTAssertTrue(ink(s, x: 144..<272, y: (captionTop + BitmapFontMetrics.lineHeight)..<(captionTop + 2 * BitmapFontMetrics.lineHeight)).isEmpty)
        XCTAssertTrue(ink(s, x: 0..<s.width, y: 0..<8).isEmpty)
        // the image without parameters is captioned with its file name
        XCTAssertFalse(ink(s, x: 8..<136, y: (s.height - 8 - 4 * BitmapFontMetrics.lineHeight)..<(s.height - 8)).isEmpty)
    }

    func testSheetRefusesNothingToShowAndOutOfRangeOptions() throws {
        let dir = try CLI.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let a = dir.appendingPathComponent("a.png")
        try write(try uniform(64, (0, 0, 0)), prompt: "x", to: a)
        for (args, needle) in [([String](), "at least one PNG"),
                               ([a.path, "--scale", "0"], "--scale must be in 1…8"),
                               ([a.path, "--columns", "-3"], "--columns must be in 1…64"),
                               ([dir.appendingPathComponent("missing.png").path], "missing.png")] {
            let r = try CLI.run(["contact-sheet"] + args + ["--output", dir.appendingPathComponent("s.png").path])
            XCTAssertEqual(r.status, 1, "\(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(needle), "\(args): \(r.stderr)")
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, "one-line error: \(r.stderr)")
        }
    }
}

/// The caption line height of `atelier contact-sheet` (BitmapFont.lineHeight in the CLI).
enum BitmapFontMetrics {
    static let lineHeight = 9
}
