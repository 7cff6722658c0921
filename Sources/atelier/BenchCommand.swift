import ArgumentParser
import Foundation
import AtelierKernels
import AtelierModels

/// `atelier bench unet`: speed and memory as ratios against references measured in the same run
/// (a bare GEMM for speed, the weight file for memory), so numbers compare across machines.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmark one UNet forward pass: time, GFLOP/s vs. a bare GEMM, peak RSS vs. weight-file size.",
        discussion: """
            Generate a full-size random SD2 UNet first (needs the reference virtualenv):
              python Tests/Reference/make_full_unet.py --out .models/sd2-unet-random
            then:
              atelier bench --model .models/sd2-unet-random --latent 64 --batch 2
            """)

    @Option(help: "A diffusers folder (with unet/), a unet/ folder, or a single-file .safetensors.")
    var model: String

    @Option(parsing: .unconditional, help: "Latent side (64 = a 512 px image; 1…512).")
    var latent: Int = 64

    @Option(parsing: .unconditional, help: "Batch size (2 = one image with classifier-free guidance; 1…16).")
    var batch: Int = 2

    func run() throws {
        _ = try OptionRange.check(latent, in: 1...512, "--latent", "latent pixels a side")
        _ = try OptionRange.check(batch, in: 1...16, "--batch")
        let gemm = Self.gemmGFLOPS()
        print(String(format: "reference  sgemm 1024³: %.1f GFLOP/s (OpenBLAS %@ kernels, %d threads)", gemm, BLAS.coreName, BLAS.threads))

        let url = URL(fileURLWithPath: (model as NSString).expandingTildeInPath)
        var unet: UNet2DConditionModel!
        var fileBytes = 0
        let loadTime = try elapsed {
            if url.pathExtension == "safetensors" {
                let ckpt = try SingleFileCheckpoint(url: url)
                unet = try UNet2DConditionModel(config: ckpt.unetConfig, weights: ckpt.unetWeights)
                fileBytes = ckpt.file.fileSize
            } else {
                let folder = FileManager.default.fileExists(atPath: url.appendingPathComponent("unet/config.json").path)
                    ? url.appendingPathComponent("unet") : url
                unet = try StableDiffusionModel.loadUNet(folder)
                fileBytes = try DiffusersComponent.weightFiles(in: folder).reduce(0) {
                    $0 + ((try? FileManager.default.attributesOfItem(atPath: $1.path)[.size] as? Int) ?? 0)
                }
            }
        }
        print(String(format: "load       %.2f s, %@ parameters, weights %@ on disk, RSS after load %@",
                     loadTime, unet.parameterCount.formatted(), formatBytes(fileBytes), formatBytes(ProcessStats.currentRSS)))

        let cross = try unet.config.resolved().crossDim[0]
        var gen = SplitMix64(seed: 1)
        let sample = gen.normal([batch, unet.config.inChannels, latent, latent])
        let context = gen.normal([batch, 77, cross])
        let labels = unet.config.numClassEmbeds != nil ? Array(repeating: 20, count: batch) : nil
        let flops0 = BLAS.flops
        var out: Tensor!
        let t = try elapsed { out = try unet(sample, timesteps: [500], context: context, classLabels: labels) }
        let gflop = Double(BLAS.flops - flops0) / 1e9
        let peak = ProcessStats.peakRSS
        print(String(format: "forward    [%d, %d, %d, %d] → %@ in %.2f s; %.0f GFLOP at %.1f GFLOP/s = %.2f × sgemm",
                     batch, unet.config.inChannels, latent, latent, "\(out.shape)", t, gflop, gflop / t, gflop / t / gemm))
        print(String(format: "memory     peak RSS %@ = %.3f × weight file (limit 1.10)", formatBytes(peak), Double(peak) / Double(max(fileBytes, 1))))
    }

    static func gemmGFLOPS() -> Double {
        let n = 1024
        let a = Tensor(shape: [n, n], repeating: 0.5), b = Tensor(shape: [n, n], repeating: 0.25), c = Tensor(zeros: [n, n])
        var best = Double.infinity
        for _ in 0..<6 {  // best of 6: the first runs pay for page faults and thread start-up
            let t = elapsed { BLAS.gemm(m: n, n: n, k: n, a: a.pointer, lda: n, b: b.pointer, ldb: n, c: c.pointer, ldc: n) }
            best = min(best, t)
        }
        BLAS.flops -= 6 * 2 * n * n * n
        return 2 * Double(n * n * n) / best / 1e9
    }
}
