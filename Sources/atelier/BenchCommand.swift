import ArgumentParser
import Foundation
import AtelierKernels
import AtelierModels

/// `atelier bench`: one network's speed and memory as ratios against references measured in the
/// same run (a bare GEMM for speed, the weight file for memory), so numbers compare across
/// machines. `--json` gives the same figures to programs (the benchmark of record reads them).
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmark one UNet pass or VAE decode: time, GFLOP/s vs. a bare GEMM, peak RSS vs. weight-file size.",
        discussion: """
            Generate a full-size random SD2 UNet first (needs the reference virtualenv):
              python Tests/Reference/make_full_unet.py --out .models/sd2-unet-random
            then:
              atelier bench --model .models/sd2-unet-random --latent 64 --batch 2
              atelier bench --model .models/bench/sd2-base --component vae-decode --latent 64
              atelier bench --model .models/sd2-unet-random --warmup 1 --reps 3 --json
            The whole comparison against diffusers/PyTorch is scripts/bench-record.sh.
            """)

    @Option(help: "A diffusers folder (with unet/ or vae/), a component folder, or a single-file .safetensors.")
    var model: String

    @Option(help: "What to time: unet (one forward pass) | vae-decode (one decode of a latent).")
    var component: BenchComponent = .unet

    @Option(parsing: .unconditional, help: "Latent side (64 = a 512 px image; 1…512).")
    var latent: Int = 64

    @Option(parsing: .unconditional, help: "Batch size (default 2 for unet = one image with classifier-free guidance, 1 for vae-decode; 1…16).")
    var batch: Int?

    @Option(parsing: .unconditional, help: "Untimed passes before the timed ones (0…10).")
    var warmup: Int = 0

    @Option(parsing: .unconditional, help: "Timed passes (1…100); the summary gives the best and the median.")
    var reps: Int = 1

    @Option(help: "UNet arithmetic: fp32 (default) or bf16 (see `atelier render --help`); vae-decode is always fp32.")
    var precision: OwnGEMM.Precision = .fp32

    @Flag(help: "Print one JSON object (keys in snake_case, times in seconds, sizes in bytes) instead of text.")
    var json = false

    /// The VAE has no bf16 form (it runs once per image and is sensitive): a vae-decode pass is fp32.
    var effectivePrecision: OwnGEMM.Precision { component == .unet ? precision : .fp32 }

    func run() throws {
        _ = try OptionRange.check(latent, in: 1...512, "--latent", "latent pixels a side")
        let batch = try OptionRange.check(self.batch ?? component.defaultBatch, in: 1...16, "--batch")
        _ = try OptionRange.check(warmup, in: 0...10, "--warmup")
        _ = try OptionRange.check(reps, in: 1...100, "--reps")
        let url = URL(fileURLWithPath: (model as NSString).expandingTildeInPath)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw CLIError("--model \(CLIError.echo(model)) does not exist; give a diffusers folder, a component folder or a .safetensors file")
        }
        let gemm = Self.gemmGFLOPS()

        var workload: BenchWorkload?
        let loadTime = try elapsed { workload = try component.workload(model: url, latent: latent, batch: batch, precision: precision) }
        guard let workload else { throw CLIError("could not load \(CLIError.echo(model))") }
        let rssAfterLoad = ProcessStats.currentRSS
        if !json {
            print(String(format: "reference  OpenBLAS sgemm 1024³: %.1f GFLOP/s (%@ kernels, %d threads); passes run on %@ kernels (numerics %@)",
                         gemm, BLAS.coreName, BLAS.threads, BLAS.kernelDescription, BLAS.numericsClass(effectivePrecision)))
            if effectivePrecision == .bf16, let note = OwnGEMM.bf16ProductsNote { print("kernels    \(note)") }
        }

        for _ in 0..<warmup { _ = try workload.run() }
        var times: [Double] = []
        var outputShape: [Int] = []
        var flops = 0
        for _ in 0..<reps {
            let flops0 = BLAS.flops
            var out: Tensor?
            times.append(try elapsed { out = try workload.run() })
            flops = BLAS.flops - flops0
            outputShape = out?.shape ?? []
        }
        let gflop = Double(flops) / 1e9
        let median = BenchReport.median(times)
        let report = BenchReport(
            atelierVersion: atelierVersion, component: component, model: url.path, precision: effectivePrecision.rawValue,
            cpu: CPUName.current, threads: BLAS.threads, blasCore: BLAS.coreName,
            kernels: BLAS.kernelDescription, numerics: BLAS.numericsClass(effectivePrecision), sgemmGflops: gemm,
            parameters: workload.parameters, weightBytes: workload.weightBytes, loadSeconds: loadTime,
            inputShape: workload.inputShape, outputShape: outputShape, warmup: warmup, reps: reps,
            seconds: times, bestSeconds: times.min() ?? 0, medianSeconds: median,
            gflopPerPass: gflop, gflops: median > 0 ? gflop / median : 0,
            rssAfterLoadBytes: rssAfterLoad, peakRssBytes: ProcessStats.peakRSS)
        if json {
            print(try report.json())
        } else {
            for line in report.textLines.dropFirst() { print(line) }
        }
    }

    static func gemmGFLOPS() -> Double {
        let n = 1024
        let a = Tensor(shape: [n, n], repeating: 0.5), b = Tensor(shape: [n, n], repeating: 0.25), c = Tensor(zeros: [n, n])
        var best = Double.infinity
        for _ in 0..<6 {  // best of 6: the first runs pay for page faults and thread start-up
            let t = elapsed { BLAS.openblasReferenceGemm(m: n, n: n, k: n, a: a.pointer, b: b.pointer, c: c.pointer) }
            best = min(best, t)
        }
        return 2 * Double(n * n * n) / best / 1e9
    }
}
