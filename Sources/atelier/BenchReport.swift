import Foundation

/// What one `atelier bench` run measured, as `--json` prints it (snake_case keys, one object).
///
/// Why a fixed, documented shape: the benchmark of record (Tests/Reference/bench_of_record.py)
/// and farm dashboards read it; adding keys is fine, renaming or removing one breaks them.
/// Times are wall-clock seconds of the timed repetitions only (warm-up runs excluded).
struct BenchReport: Codable, Equatable {
    static let schemaName = "atelier.bench.v1"

    var schema = BenchReport.schemaName
    var atelierVersion: String
    var component: BenchComponent
    var model: String
    /// The precision the passes ran in ("fp32" or "bf16", `--precision`).
    var precision: String
    var cpu: String
    var threads: Int
    var blasCore: String
    /// The GEMM kernels the passes ran on ("atelier avx2", "openblas Haswell") and their numerics
    /// class (images are bit-identical between machines of the same class).
    var kernels: String
    var numerics: String
    /// Reference speed measured in the same process: best of 6 OpenBLAS sgemm 1024³ (OpenBLAS
    /// whatever the kernels in use, so the ratio compares them with a fixed outside reference).
    var sgemmGflops: Double
    var parameters: Int
    var weightBytes: Int
    var loadSeconds: Double
    var inputShape: [Int]
    var outputShape: [Int]
    var warmup: Int
    var reps: Int
    /// One entry per timed repetition, in order.
    var seconds: [Double]
    var bestSeconds: Double
    var medianSeconds: Double
    /// GEMM work of one pass as counted by the kernels (2·m·n·k per product).
    var gflopPerPass: Double
    /// `gflopPerPass / medianSeconds`.
    var gflops: Double
    var rssAfterLoadBytes: Int
    /// VmHWM at the end: the process's peak resident set.
    var peakRssBytes: Int

    /// The median of the timed repetitions (mean of the middle two for an even count).
    static func median(_ xs: [Double]) -> Double {
        let s = xs.sorted()
        guard !s.isEmpty else { return 0 }
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    /// The human-readable lines (the default output).
    var textLines: [String] {
        let shapeIn = inputShape.map(String.init).joined(separator: ", ")
        let ratio = Double(peakRssBytes) / Double(max(weightBytes, 1))
        var lines = [
            String(format: "reference  OpenBLAS sgemm 1024³: %.1f GFLOP/s (%@ kernels, %d threads); passes run on %@ kernels (numerics %@)",
                   sgemmGflops, blasCore, threads, kernels, numerics),
            String(format: "load       %.2f s, %@ parameters, weights %@ on disk, RSS after load %@",
                   loadSeconds, parameters.formatted(), formatBytes(weightBytes), formatBytes(rssAfterLoadBytes)),
        ]
        let what = component == .unet ? "forward   " : "decode    "
        for (i, t) in seconds.enumerated() {
            let label = seconds.count > 1 ? String(format: " (rep %d/%d)", i + 1, seconds.count) : ""
            lines.append(String(format: "%@ [%@] → %@ in %.2f s%@; %.0f GFLOP at %.1f GFLOP/s = %.2f × sgemm",
                                what, shapeIn, "\(outputShape)", t, label, gflopPerPass, gflopPerPass / t, gflopPerPass / t / sgemmGflops))
        }
        if seconds.count > 1 {
            lines.append(String(format: "summary    best %.2f s, median %.2f s of %d reps after %d warm-up", bestSeconds, medianSeconds, reps, warmup))
        }
        let limit = component == .unet ? " (limit 1.10)" : ""
        lines.append(String(format: "memory     peak RSS %@ = %.3f × weight file%@", formatBytes(peakRssBytes), ratio, limit))
        return lines
    }
}

/// The CPU's marketing name from /proc/cpuinfo ("unknown" elsewhere), to label measurements.
enum CPUName {
    static var current: String {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "unknown" }
        for line in text.split(separator: "\n") where line.hasPrefix("model name") {
            return line.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown"
        }
        return "unknown"
    }
}
