import ArgumentParser
import Foundation
import AtelierKernels
import AtelierModels
import AtelierDiffusion

/// `atelier depth`: the depth map SD2-depth would condition on, from a photo, as a 16-bit PNG —
/// to inspect it, edit it, or pass it back with `render --depth-map`.
struct DepthCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "depth",
        abstract: "Estimate a depth map from a photo with the DPT-Hybrid (MiDaS) model of SD2-depth.",
        discussion: """
            Writes MiDaS's relative inverse depth (larger = nearer, the convention --depth-map expects) \
            as a 16-bit grayscale PNG, min–max scaled to 0…65535. By default the map is resized to the \
            input image's size with bicubic interpolation (torch's F.interpolate, align_corners=False — \
            transformers' post_process_depth_estimation); with --model-resolution it stays at the \
            estimator's own output size (384×384 for SD2-depth), which is exactly what the depth2img \
            pipeline resizes to latent size itself, so `render --depth-map` with that file reproduces \
            the built-in estimate up to 16-bit rounding.

            Examples:
              atelier depth --model stable-diffusion-2-depth --image photo.png --output photo-depth.png
              atelier depth --model dpt-hybrid-midas --image photo.png --model-resolution --bench
            """)

    @Option(help: "An SD2-depth diffusers folder (with depth_estimator/ and feature_extractor/) or a DPT depth_estimator folder.")
    var model: String

    @Option(help: "The photo (PNG).")
    var image: String

    @Option(help: "Output 16-bit grayscale PNG.")
    var output: String = "depth.png"

    @Flag(help: "Keep the estimator's output size instead of resizing to the image's size.")
    var modelResolution = false

    @Flag(help: "Print load time, estimate time and peak memory (VmHWM) on stderr.")
    var bench = false

    func run() throws {
        let photo = try CommandInputs.readRGB(image)
        try CommandInputs.checkWritable([output])
        let url = URL(fileURLWithPath: (model as NSString).expandingTildeInPath)
        var estimator: DPTDepthEstimator?
        let loadTime = try elapsed { estimator = try DPTDepthEstimator.load(url) }
        guard let estimator else { return }
        var predicted = Tensor(zeros: [1, 1, 1])
        let flops0 = BLAS.flops
        let estimateTime = try elapsed { predicted = try estimator.predictedDepth(photo) }
        let gflop = Double(BLAS.flops - flops0) / 1e9
        let (h, w) = (predicted.shape[1], predicted.shape[2])
        var depth = predicted.reshaped([1, 1, h, w])
        if !modelResolution && (h != photo.height || w != photo.width) {
            depth = Interpolation.bicubic(depth, height: photo.height, width: photo.width)
        }
        try PNGCodec.write(Self.grayscale16(depth), to: URL(fileURLWithPath: output),
                           text: [PNGTextChunk(key: "Description", value: "relative inverse depth (larger = nearer), DPT \(estimator.folder.path)")])
        if bench {
            let side = estimator.model.inputSide
            let line = String(format: "depth bench: %@ parameters, load %.2f s, estimate (%d² input → %d×%d) %.2f s (%.0f GFLOP in GEMMs, %.1f GFLOP/s), peak RSS %@ (VmHWM)",
                              estimator.model.parameterCount.formatted(), loadTime, side, w, h, estimateTime,
                              gflop, gflop / estimateTime, formatBytes(ProcessStats.peakRSS))
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
        print(output)
    }

    /// Min–max scaled to 0…65535 (round half to even); a constant map becomes all zeros.
    static func grayscale16(_ depth: Tensor) throws -> GrayImage16 {
        let (h, w) = (depth.shape[2], depth.shape[3])
        var lo = Float.infinity, hi = -Float.infinity
        for i in 0..<depth.count { lo = min(lo, depth[flat: i]); hi = max(hi, depth[flat: i]) }
        let range = hi - lo
        let samples: [UInt16] = (0..<depth.count).map { i in
            guard range > 0, range.isFinite else { return 0 }
            let v = Double(depth[flat: i] - lo) / Double(range) * 65535
            return UInt16(max(0, min(65535, v.rounded(.toNearestOrEven))))
        }
        return try GrayImage16(width: w, height: h, pixels: samples)
    }
}
