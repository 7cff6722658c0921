import Foundation
import XCTest

/// `atelier bench --json`, run as the benchmark of record runs it, on the tiny committed models.
/// No timing assertions: only that the report is one parseable object with every key and sane figures.
final class BenchCommandTests: XCTestCase {
    static let keys = ["schema", "atelier_version", "component", "model", "precision", "cpu", "threads", "blas_core", "kernels", "numerics",
                       "sgemm_gflops", "parameters", "weight_bytes", "load_seconds", "input_shape", "output_shape",
                       "warmup", "reps", "seconds", "best_seconds", "median_seconds", "gflop_per_pass", "gflops",
                       "rss_after_load_bytes", "peak_rss_bytes"]

    func model(_ name: String) -> String { CLI.models.appendingPathComponent(name).path }

    /// Runs `atelier bench … --json` and returns the single JSON object it printed.
    func benchJSON(_ args: [String]) throws -> [String: Any] {
        let r = try CLI.run(["bench"] + args + ["--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = r.stdout.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, "stdout must be exactly one JSON line: \(r.stdout)")
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8))
        return try XCTUnwrap(object as? [String: Any], r.stdout)
    }

    func checkCommonFigures(_ j: [String: Any], reps: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        for key in Self.keys { XCTAssertNotNil(j[key], "missing key \(key)", file: file, line: line) }
        XCTAssertEqual(j["schema"] as? String, "atelier.bench.v1", file: file, line: line)
        XCTAssertEqual(j["precision"] as? String, "fp32", file: file, line: line)
        let seconds = try XCTUnwrap(j["seconds"] as? [Double], file: file, line: line)
        XCTAssertEqual(seconds.count, reps, file: file, line: line)
        XCTAssertEqual(j["reps"] as? Int, reps, file: file, line: line)
        for t in seconds { XCTAssertGreaterThan(t, 0, file: file, line: line) }
        let best = try XCTUnwrap(j["best_seconds"] as? Double), median = try XCTUnwrap(j["median_seconds"] as? Double)
        XCTAssertEqual(best, seconds.min(), file: file, line: line)
        XCTAssertGreaterThanOrEqual(median, best, file: file, line: line)
        XCTAssertLessThanOrEqual(median, seconds.max() ?? 0, file: file, line: line)
        for key in ["sgemm_gflops", "load_seconds", "gflop_per_pass", "gflops"] {
            XCTAssertGreaterThan(try XCTUnwrap(j[key] as? Double, key, file: file, line: line), 0, key, file: file, line: line)
        }
        for key in ["threads", "parameters", "weight_bytes", "rss_after_load_bytes", "peak_rss_bytes"] {
            XCTAssertGreaterThan(try XCTUnwrap(j[key] as? Int, key, file: file, line: line), 0, key, file: file, line: line)
        }
        XCTAssertGreaterThanOrEqual(j["peak_rss_bytes"] as? Int ?? 0, j["rss_after_load_bytes"] as? Int ?? .max, file: file, line: line)
    }

    func testJSONReportOfAUNetPassHasEveryKeyAndPositiveFigures() throws {
        let j = try benchJSON(["--model", model("tiny-base"), "--latent", "8", "--warmup", "1", "--reps", "3"])
        try checkCommonFigures(j, reps: 3)
        XCTAssertEqual(j["component"] as? String, "unet")
        XCTAssertEqual(j["warmup"] as? Int, 1)
        XCTAssertEqual(j["input_shape"] as? [Int], [2, 4, 8, 8], "default batch 2: one image with guidance")
        XCTAssertEqual(j["output_shape"] as? [Int], [2, 4, 8, 8])
        XCTAssertEqual(j["model"] as? String, model("tiny-base"))
    }

    /// The x4 upscaler's UNet takes 7 channels and a noise-level class label.
    func testJSONReportOfAnUpscalerUNetPass() throws {
        let j = try benchJSON(["--model", model("tiny-x4"), "--latent", "8", "--batch", "1"])
        try checkCommonFigures(j, reps: 1)
        XCTAssertEqual(j["input_shape"] as? [Int], [1, 7, 8, 8])
        XCTAssertEqual(j["output_shape"] as? [Int], [1, 4, 8, 8])
    }

    func testJSONReportOfAVAEDecode() throws {
        let j = try benchJSON(["--model", model("tiny-base"), "--component", "vae-decode", "--latent", "8", "--reps", "2"])
        try checkCommonFigures(j, reps: 2)
        XCTAssertEqual(j["component"] as? String, "vae-decode")
        XCTAssertEqual(j["input_shape"] as? [Int], [1, 4, 8, 8], "default batch 1: one image")
        XCTAssertEqual(j["output_shape"] as? [Int], [1, 3, 16, 16], "the tiny VAE upsamples ×2")
    }

    func testTextReportStaysTheDefault() throws {
        let r = try CLI.run(["bench", "--model", model("tiny-base"), "--latent", "8"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.hasPrefix("reference  OpenBLAS sgemm 1024³:"), r.stdout)
        XCTAssertTrue(r.stdout.contains("passes run on atelier "), r.stdout)
        XCTAssertTrue(r.stdout.contains("\nforward    [2, 4, 8, 8] → [2, 4, 8, 8] in "), r.stdout)
        XCTAssertTrue(r.stdout.contains("\nmemory     peak RSS "), r.stdout)
        XCTAssertNil(try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)))
    }

    func testBadRepsOrMissingModelIsAOneLineError() throws {
        for args in [["--model", model("tiny-base"), "--reps", "0"],
                     ["--model", "/nonexistent/model", "--json"]] {
            let r = try CLI.run(["bench"] + args)
            XCTAssertNotEqual(r.status, 0, args.joined(separator: " "))
            XCTAssertEqual(r.stdout, "", "no partial report on stdout")
            let lines = r.stderr.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
            XCTAssertEqual(lines.count, 1, r.stderr)
            XCTAssertTrue(r.stderr.hasPrefix("Error: "), r.stderr)
        }
    }
}
