import ArgumentParser
import Foundation
import AtelierDiffusion
import AtelierKernels
import AtelierRequests

/// `atelier render`: one process, one model, K images — the same pictures diffusers makes.
struct RenderCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "render",
        abstract: "Generate images locally: text-to-image, img2img, inpainting or depth-to-image.",
        discussion: """
            The mode follows from the arguments and the model's UNet: --init-image alone is img2img; \
            with a 9-channel inpainting model add --mask (white = repaint); with the 5-channel depth \
            model --depth-map is optional (8- or 16-bit grayscale PNG; without it the model folder's DPT \
            depth estimator computes one from the init image). Unset options take \
            diffusers' defaults for that mode (50 steps, guidance 7.5, strength 0.8 for img2img/depth, \
            1.0 for inpainting; size = the model's native size, or the input image's for img2img).

            Image i of --count K uses seed N+i, so any image of a batch can be re-rendered alone, on any \
            machine, identically. Every PNG carries its parameters (AUTOMATIC1111 format); \
            --from-png re-renders from them.

            Examples:
              atelier render --model sd21-base --prompt "a lighthouse at dusk" --seed 42 --output dusk.png
              atelier render --model sd21-base --prompt "oil painting" --init-image photo.png --strength 0.6
              atelier render --model sd2-inpainting --prompt "a red door" --init-image house.png --mask door.png
              atelier render --model sd2-depth --prompt "bronze statue" --init-image me.png --depth-map me-depth.png
              atelier render --model sd21-base --prompt "fox" --count 4 --scheduler dpm++2m-karras --steps 25 --output fox.png
              atelier render --model sd21-base --from-png fox-2.png --output again.png
            Schedulers: ddim, pndm, euler, euler-a, dpm++2m, dpm++2m-karras (default: the model's).
            """)

    @Option(help: "Model: a diffusers folder or a single-file .safetensors (default: $ATELIER_MODEL, else the embedded demo model, Models/demo/base).")
    var model: String?

    @Option(help: OwnGEMM.Precision.help)
    var precision: OwnGEMM.Precision = .fp32

    @Option(help: "What to draw.")
    var prompt: String?

    @Option(help: "What to steer away from.")
    var negativePrompt: String?

    @Option(parsing: .unconditional, help: "Seed of the first image (default: random, printed).")
    var seed: UInt64?

    @Option(parsing: .unconditional, help: "Number of images; image i uses seed+i.")
    var count: Int = 1

    @Option(parsing: .unconditional, help: "Denoising steps.")
    var steps: Int?

    @Option(parsing: .unconditional, help: "Classifier-free guidance scale (≤ 1 turns guidance off).")
    var guidance: Double?

    @Option(help: "ddim | pndm | euler | euler-a | dpm++2m | dpm++2m-karras")
    var scheduler: String?

    @Option(parsing: .unconditional, help: "Output width in pixels (multiple of 8).")
    var width: Int?

    @Option(parsing: .unconditional, help: "Output height in pixels (multiple of 8).")
    var height: Int?

    @Option(help: "Start from this image (img2img; inpainting and depth need it too).")
    var initImage: String?

    @Option(parsing: .unconditional, help: "How much of the init image to repaint, in (0, 1].")
    var strength: Double?

    @Option(help: "Inpainting mask PNG, same size as --init-image; white = repaint.")
    var mask: String?

    @Option(help: "Depth map PNG (8- or 16-bit grayscale, larger = nearer) for the depth model.")
    var depthMap: String?

    @Option(parsing: .unconditional, help: "Guidance rescale φ in [0, 1] (fixes over-exposure with v-prediction models).")
    var guidanceRescale: Double = 0

    @Option(help: "Take prompt, seed, steps, sampler, guidance and size from this PNG's parameters.")
    var fromPng: String?

    @Option(help: "Output PNG; with --count K, OUT-0.png … OUT-(K-1).png.")
    var output: String = "out.png"

    @Flag(help: "No progress bar.")
    var quiet = false

    func run() throws {
        var request = try CommandInputs.request(prompt: prompt, fromPNG: fromPng)
        if let negativePrompt { request.negativePrompt = negativePrompt }
        if let seed { request.seed = seed } else if fromPng == nil { request.seed = UInt64(UInt32.random(in: 0...UInt32.max)) }
        if let steps { request.steps = steps }
        if let guidance { request.guidance = guidance }
        if let scheduler { request.scheduler = scheduler }
        if let width { request.width = width }
        if let height { request.height = height }
        if let strength { request.strength = strength }
        if guidanceRescale != 0 { request.guidanceRescale = guidanceRescale }
        // One validation for every door, on the PNGs' declared sizes, before anything is decoded.
        try GenerationValidation.validate(RequestChecks.describe(
            request, prompts: [request.prompt], count: count, model: nil,
            initImage: initImage, mask: mask, depthMap: depthMap))
        if let initImage { request.initImage = try CommandInputs.readRGB(initImage) }
        if let mask { request.mask = try CommandInputs.readGray(mask) }
        if let depthMap { request.depthMap = try CommandInputs.readDepth(depthMap) }
        let outputs = CommandInputs.outputPaths(output, count: count)
        try CommandInputs.checkWritable(outputs)

        let pipeline = try StableDiffusionPipeline.load(try DefaultModel.resolve(model), precision: precision)
        _ = try pipeline.mode(for: request)  // reject mode/model mismatches before any work
        if seed == nil && fromPng == nil && !quiet { FileHandle.standardError.write(Data("seed \(request.seed)\n".utf8)) }
        for (i, path) in outputs.enumerated() {
            var r = request
            r.seed = request.seed &+ UInt64(i)
            let bar = ProgressBar(label: count > 1 ? "\(i + 1)/\(count)" : "render", quiet: quiet)
            let result = try pipeline.generate(r) { done, total in bar.update(done, total); return true }
            try PNGCodec.write(result.image, to: URL(fileURLWithPath: path), parameters: result.parameters)
            if !quiet { print(path) }
        }
    }
}

/// Reading and checking what the render/upscale commands are given, shared by both.
enum CommandInputs {
    static func request(prompt: String?, fromPNG: String?) throws -> GenerationRequest {
        if let fromPNG {
            let png = try PNGCodec.read(path: fromPNG, limits: .inputImage)
            guard let text = png.parametersText else {
                throw CLIError("\(fromPNG) has no 'parameters' text chunk to render from")
            }
            let p = try GenerationParameters.parse(text)
            var r = GenerationRequest(prompt: prompt ?? p.prompt)
            r.negativePrompt = p.negativePrompt
            r.seed = p.seed
            r.steps = p.steps
            r.guidance = p.cfgScale
            // parse() gives Atelier's id; older text may hold an A1111 display name.
            r.scheduler = SchedulerName(rawValue: p.sampler) != nil ? p.sampler : A1111SamplerNames.id(for: p.sampler)
            r.width = p.width
            r.height = p.height
            r.strength = p.strength
            r.guidanceRescale = p.guidanceRescale ?? 0
            r.noiseLevel = p.noiseLevel
            return r
        }
        guard let prompt else { throw CLIError("--prompt is required (or --from-png IMG)") }
        return GenerationRequest(prompt: prompt)
    }

    /// Input images are decoded with the input-image limits (the declared size was validated
    /// already; this is the second line of defence).
    static func readRGB(_ path: String, limits: PNGReadLimits = .inputImage) throws -> RGBImage {
        try PNGCodec.read(path: path, limits: limits).rgb()
    }

    static func readGray(_ path: String) throws -> GrayImage { try PNGCodec.read(path: path, limits: .inputImage).gray() }

    /// See `DepthMap(png:)`: the same reading as a farm worker's.
    static func readDepth(_ path: String) throws -> DepthMap { DepthMap(png: try PNGCodec.read(path: path, limits: .inputImage)) }

    static func outputPaths(_ output: String, count: Int) -> [String] {
        guard count > 1 else { return [output] }
        let url = URL(fileURLWithPath: output)
        let ext = url.pathExtension.isEmpty ? "png" : url.pathExtension
        let stem = url.deletingPathExtension().path
        return (0..<count).map { "\(stem)-\($0).\(ext)" }
    }

    /// Fails before any rendering if an output folder does not exist.
    static func checkWritable(_ paths: [String]) throws {
        for p in paths {
            let dir = URL(fileURLWithPath: p).deletingLastPathComponent().path
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
                throw CLIError("cannot write \(CLIError.echo(p)): folder \(CLIError.echo(dir)) does not exist")
            }
        }
    }
}
