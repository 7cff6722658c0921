import Foundation
import XCTest
@testable import atelier

/// Issue 9, items 10, 11 and 13 as a user meets them through the real executable: every numeric
/// option is range-checked (no integer traps), huge declared PNG sizes are refused before
/// decoding, and every refusal is one line that names the fix, without a usage footer.
final class CLIValidationTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws { dir = try CLI.scratch() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// Runs `atelier args…` and asserts a refusal: non-zero exit (not a crash signal), exactly one
    /// "Error: …" line mentioning every needle, no usage footer.
    func assertOneLineRefusal(_ args: [String], mentions needles: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try CLI.run(args, in: dir, timeout: 60)
        XCTAssertTrue(r.status == 1 || r.status == 64, "exit status \(r.status) (a trap is 132/133/134): \(r.stderr)", file: file, line: line)
        let lines = r.stderr.split(separator: "\n", omittingEmptySubsequences: true)
        XCTAssertEqual(lines.count, 1, "one line, got:\n\(r.stderr.prefix(2000))", file: file, line: line)
        XCTAssertTrue(r.stderr.hasPrefix("Error: "), r.stderr, file: file, line: line)
        XCTAssertFalse(r.stderr.contains("Usage:"), "no usage footer: \(r.stderr)", file: file, line: line)
        for needle in needles {
            XCTAssertTrue(r.stderr.contains(needle), "should mention '\(needle)': \(r.stderr.prefix(500))", file: file, line: line)
        }
    }

    var unreachable: [String] { ["--coordinator", "tcp://127.0.0.1:9"] }
    var lowres: String { CLI.inputs.appendingPathComponent("lowres_16x16.png").path }

    // MARK: Item 10: integer traps

    func testSubmitCountBeyondIntegerRangeOfTheProtocolIsRefusedWithTheRange() throws {
        try assertOneLineRefusal(["submit"] + unreachable + ["--count", "5000000000", "x"], mentions: ["--count", "1…1000", "5000000000"])
    }

    func testSubmitWidthBeyondUInt32IsRefusedWithTheRange() throws {
        try assertOneLineRefusal(["submit"] + unreachable + ["--width", "8589934592", "x"], mentions: ["--width", "64…4096"])
    }

    func testSubmitUpscaleStepsAndTileBeyondUInt32AreRefusedWithTheRange() throws {
        try assertOneLineRefusal(["submit-upscale"] + unreachable + ["--image", lowres, "--prompt", "x", "--steps", "5000000000"],
                                 mentions: ["--steps", "1…1000"])
        try assertOneLineRefusal(["submit-upscale"] + unreachable + ["--image", lowres, "--prompt", "x", "--tile", "5000000000"],
                                 mentions: ["--tile", "32…256"])
        try assertOneLineRefusal(["submit-upscale"] + unreachable + ["--image", lowres, "--prompt", "x", "--priority", "5000000000"],
                                 mentions: ["--priority"])
    }

    func testCoordinatorWithZeroContextsIsRefused() throws {
        try assertOneLineRefusal(["coordinator", "--data", dir.appendingPathComponent("farm").path, "--contexts", "0"],
                                 mentions: ["--contexts", "1…256"])
    }

    func testCoordinatorWithAnAstronomicalLeaseIsRefusedAtStart() throws {
        try assertOneLineRefusal(["coordinator", "--data", dir.appendingPathComponent("farm").path, "--lease-seconds", "1e300"],
                                 mentions: ["--lease-seconds", "1…86400"])
        try assertOneLineRefusal(["coordinator", "--data", dir.appendingPathComponent("farm").path, "--max-attempts", "0"],
                                 mentions: ["--max-attempts"])
    }

    // MARK: Item 11: declared sizes before decoding

    func crafted(_ name: String, width: Int, height: Int) throws -> String {
        let url = dir.appendingPathComponent(name)
        try CraftedPNG.declaring(width: width, height: height).write(to: url)
        return url.path
    }

    func testInitImageDeclaring16384SquaredIsRefusedBeforeDecoding() throws {
        let huge = try crafted("huge.png", width: 16384, height: 16384)
        try assertOneLineRefusal(["render", "--prompt", "x", "--init-image", huge, "--output", dir.appendingPathComponent("o.png").path],
                                 mentions: ["16384×16384", "4096"])
    }

    func testUpscaleImageDeclaring16384SquaredIsRefusedBeforeDecoding() throws {
        let huge = try crafted("huge.png", width: 16384, height: 16384)
        try assertOneLineRefusal(["upscale", "--prompt", "x", "--image", huge], mentions: ["16384×16384"])
        try assertOneLineRefusal(["upscale", "--prompt", "x", "--image", huge, "--tile", "128"], mentions: ["16384×16384", "1024"])
    }

    func testOnePassUpscaleOf4096SquaredSuggestsTiles() throws {
        let big = try crafted("big.png", width: 4096, height: 4096)
        try assertOneLineRefusal(["upscale", "--prompt", "x", "--image", big], mentions: ["256", "--tile"])
    }

    // MARK: Item 13: parsing and messages

    func testNegativeNumbersParseAndAreRefusedWithTheRange() throws {
        try assertOneLineRefusal(["render", "--prompt", "x", "--steps", "-5"], mentions: ["--steps", "1…1000", "-5"])
        try assertOneLineRefusal(["submit"] + unreachable + ["--count", "-1", "x"], mentions: ["--count", "-1"])
        try assertOneLineRefusal(["upscale", "--prompt", "x", "--image", lowres, "--noise-level", "-3"], mentions: ["--noise-level", "0…350"])
    }

    func testDataThatIsAFileSaysSoInOneLine() throws {
        let file = dir.appendingPathComponent("farm.db")
        try Data("x".utf8).write(to: file)
        try assertOneLineRefusal(["coordinator", "--data", file.path], mentions: ["--data", "is a file, not a directory"])
    }

    func testModelFolderWithoutTokenizerSaysTheTokenizerIsMissing() throws {
        let copy = dir.appendingPathComponent("no-tokenizer")
        try FileManager.default.copyItem(at: CLI.models.appendingPathComponent("tiny-base"), to: copy)
        try FileManager.default.removeItem(at: copy.appendingPathComponent("tokenizer"))
        try assertOneLineRefusal(["render", "--model", copy.path, "--prompt", "x", "--output", dir.appendingPathComponent("o.png").path],
                                 mentions: ["no tokenizer/ folder", "copy the model's tokenizer/"])
    }

    func testAHugeModelNameIsNotEchoedBack() throws {
        let name = String(repeating: "m", count: 100_000)  // under Linux's 128 KiB per argument
        let r = try CLI.run(["submit"] + unreachable + ["--model", name, "x"], in: dir)
        XCTAssertEqual(r.status, 1)
        XCTAssertLessThan(r.stderr.utf8.count, 400, "echo cut to ~80 characters: \(r.stderr.prefix(300))")
        XCTAssertTrue(r.stderr.contains("…"))
        let local = try CLI.run(["render", "--model", name, "--prompt", "x"], in: dir)
        XCTAssertEqual(local.status, 1)
        XCTAssertLessThan(local.stderr.utf8.count, 400, "render echoes a cut path: \(local.stderr.prefix(300))")
    }

    func testValueErrorsHaveNoUsageFooter() throws {
        try assertOneLineRefusal(["render", "--prompt", "x", "--scheduler", "ddpm"], mentions: ["--scheduler", "euler-a"])
        try assertOneLineRefusal(["submit"] + unreachable + ["--wait"] + ["x"], mentions: ["--wait needs --out"])
        try assertOneLineRefusal(["render", "--prompt", "x", "--output", "/nonexistent-folder/o.png"], mentions: ["does not exist"])
    }

    // MARK: Item 8: the progress bar takes any numbers

    func testProgressBarLineIsSafeForAnyDoneAndTotal() {
        for (done, total) in [(5, 10), (50, 10), (-3, 10), (3, 0), (0, -7), (Int.max, 1), (Int.min, Int.max), (1, Int.max)] {
            let line = ProgressBar.line(label: "job", done: done, total: total, elapsed: 1)
            let bar = line.filter { $0 == "█" || $0 == "·" }
            XCTAssertEqual(bar.count, ProgressBar.width, "\(done)/\(total): \(line)")
        }
        XCTAssertTrue(ProgressBar.line(label: "j", done: 50, total: 10, elapsed: 1).contains("10/10"))
        _ = ProgressBar.line(label: "j", done: 1, total: 2, elapsed: .infinity)
        _ = ProgressBar.clock(.greatestFiniteMagnitude)
    }
}

/// A PNG that only declares its size (signature, IHDR, IEND): decoding it would fail as
/// truncated, so a "too large" answer proves the header was checked first.
enum CraftedPNG {
    static func declaring(width: Int, height: Int) -> Data {
        func be32(_ v: Int) -> [UInt8] { [UInt8(v >> 24 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
        func crc32(_ bytes: [UInt8]) -> UInt32 {
            var c: UInt32 = 0xFFFF_FFFF
            for b in bytes {
                c ^= UInt32(b)
                for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
            }
            return ~c
        }
        func chunk(_ type: String, _ body: [UInt8]) -> [UInt8] {
            let typed = Array(type.utf8) + body
            return be32(body.count) + typed + be32(Int(crc32(typed)))
        }
        return Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", be32(width) + be32(height) + [8, 2, 0, 0, 0]) + chunk("IEND", []))
    }
}
