import ArgumentParser
import Foundation
import AtelierDiffusion
import AtelierKernels
import AtelierRequests

/// `atelier upscale`: the x4 upscaler, whole or in tiles (the farm's tiling, run locally).
struct UpscaleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "upscale",
        abstract: "Upscale an image ×4 with the SD x4 upscaler, optionally in overlapping tiles.",
        discussion: """
            Without --tile the whole image is denoised at once, exactly as diffusers does. With --tile T \
            (low-res pixels) the image is cut into overlapping tiles that are denoised one by one with \
            the noise of one image-wide field and blended with feathered weights — the same computation \
            `atelier submit-upscale` spreads over a farm, pixel for pixel.

            Examples:
              atelier upscale --model x4-upscaler --image small.png --prompt "a cat" --output big.png
              atelier upscale --model x4-upscaler --image 512px.png --prompt "city" --tile 128 --overlap 32 --seed 7
            """)

    @Option(help: "The x4 upscaler: a diffusers folder or a single-file .safetensors (default: $ATELIER_UPSCALER_MODEL, else the embedded demo upscaler, Models/demo/x4).")
    var model: String?

    @Option(help: "The low-resolution PNG (sides are floored to a multiple of 4).")
    var image: String

    @Option(help: OwnGEMM.Precision.help)
    var precision: OwnGEMM.Precision = .fp32

    @Option(help: "What the image shows.")
    var prompt: String

    @Option(help: "What to steer away from.")
    var negativePrompt: String = ""

    @Option(parsing: .unconditional, help: "Seed (default: random, printed).")
    var seed: UInt64?

    @Option(parsing: .unconditional, help: "Denoising steps (default 75).")
    var steps: Int?

    @Option(parsing: .unconditional, help: "Guidance scale (default 9).")
    var guidance: Double?

    @Option(parsing: .unconditional, help: "Noise added to the low-res image, 0…350 (default 20).")
    var noiseLevel: Int?

    @Option(help: "ddim | pndm | euler | euler-a | dpm++2m | dpm++2m-karras")
    var scheduler: String?

    @Option(parsing: .unconditional, help: "Tile side in low-res pixels (multiple of 8, 32…256); omit for one pass (inputs up to 256 px; tiled up to 1024 px).")
    var tile: Int?

    @Option(parsing: .unconditional, help: "Tile overlap in low-res pixels (multiple of 4, < tile/2).")
    var overlap: Int = 32

    @Option(help: "Output PNG.")
    var output: String = "upscaled.png"

    @Flag(help: "No progress bar.")
    var quiet = false

    func run() throws {
        var r = GenerationRequest(prompt: prompt)
        r.negativePrompt = negativePrompt
        r.seed = seed ?? UInt64(UInt32.random(in: 0...UInt32.max))
        r.steps = steps
        r.guidance = guidance
        r.scheduler = scheduler
        r.noiseLevel = noiseLevel
        // The declared size is checked against the one-pass or tiled cap before decoding.
        try GenerationValidation.validate(RequestChecks.describeUpscale(
            r, model: nil, image: image, tile: tile, overlap: tile == nil ? nil : overlap))
        r.initImage = try CommandInputs.readRGB(image, limits: PNGReadLimits(
            maxSide: tile == nil ? RequestLimits.upscaleOnePassSide : RequestLimits.upscaleTiledSide))
        try CommandInputs.checkWritable([output])
        let pipeline = try StableDiffusionPipeline.load(try DefaultModel.resolve(model, kind: .upscaler), precision: precision)
        if seed == nil && !quiet { FileHandle.standardError.write(Data("seed \(r.seed)\n".utf8)) }
        let result: GenerationResult
        if let tile {
            let bar = ProgressBar(label: "tiles", quiet: quiet)
            let tiled = try pipeline.upscaleTiled(r, tile: tile, overlap: overlap) { t, tiles, step, steps in
                bar.update(t * steps + step, tiles * steps); return true
            }
            result = tiled.result
            if !quiet { FileHandle.standardError.write(Data(String(format: "%d tiles, seam ratio %.3f\n", tiled.tiles, tiled.seamRatio).utf8)) }
        } else {
            let bar = ProgressBar(label: "upscale", quiet: quiet)
            result = try pipeline.upscale(r, tile: nil) { done, total in bar.update(done, total); return true }
        }
        try PNGCodec.write(result.image, to: URL(fileURLWithPath: output), parameters: result.parameters)
        if !quiet { print(output) }
    }
}
