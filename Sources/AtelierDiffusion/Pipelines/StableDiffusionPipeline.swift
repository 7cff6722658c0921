import Foundation
import AtelierKernels
import AtelierModels
import AtelierRequests

/// One loaded SD2-family model with everything around it (tokenizer, scheduler configs) that
/// turns a `GenerationRequest` into the same picture diffusers' pipelines produce for the same
/// arguments and seed (`StableDiffusionPipeline`, `…Img2Img…`, `…Inpaint…`, `…Depth2Img…`,
/// `…Upscale…` in diffusers 0.42; SD2-SPEC §4).
public final class StableDiffusionPipeline: @unchecked Sendable {
    public let model: StableDiffusionModel
    public let tokenizer: BPETokenizer
    public let schedulerConfig: SchedulerConfig
    /// The x4 upscaler's noise-augmentation schedule (`low_res_scheduler/`).
    public let lowResSchedulerConfig: SchedulerConfig?
    /// Shown in PNG parameters and farm capabilities.
    public let name: String
    /// AUTOMATIC1111-style short weights hash.
    public let hash: String
    public let maxNoiseLevel = 350
    /// The depth model's DPT estimator, loaded on the first depth2img request without a depth map.
    private var loadedDepthEstimator: DPTDepthEstimator?
    private let depthEstimatorLock = NSLock()
    private let promptCache = PromptEmbeddingCache()

    public init(model: StableDiffusionModel, tokenizer: BPETokenizer, schedulerConfig: SchedulerConfig,
                lowResSchedulerConfig: SchedulerConfig?, name: String, hash: String) {
        self.model = model; self.tokenizer = tokenizer; self.schedulerConfig = schedulerConfig
        self.lowResSchedulerConfig = lowResSchedulerConfig; self.name = name; self.hash = hash
    }

    /// The UNet's precision (`--precision`): fp32 by default, bf16 for half the weight memory.
    public var precision: OwnGEMM.Precision { model.unet.precision }

    /// Loads a diffusers folder or a single-file checkpoint (which gets the bundled CLIP
    /// vocabulary and SD2's scheduler defaults).
    /// - Parameter precision: the UNet's weights and products (see `StableDiffusionModel.load`).
    public static func load(_ url: URL, precision: OwnGEMM.Precision = .fp32) throws -> StableDiffusionPipeline {
        let model = try StableDiffusionModel.load(url, precision: precision)
        let name = url.deletingPathExtension().lastPathComponent
        if let folder = model.folder {
            let tokenizer = try BPETokenizer.forModel(folder: folder, textEncoderVocabulary: model.textEncoder.config.vocabSize)
            let sched = try loadSchedulerConfig(folder.appendingPathComponent("scheduler/scheduler_config.json"))
                ?? defaultSchedulerConfig(for: model, predictionType: "epsilon")
            let lowRes = try loadSchedulerConfig(folder.appendingPathComponent("low_res_scheduler/scheduler_config.json"))
                ?? (model.unet.config.inChannels == 7 ? defaultLowResSchedulerConfig() : nil)
            let weights = (try? DiffusersComponent.weightFiles(in: folder.appendingPathComponent("unet")).first) ?? nil
            return StableDiffusionPipeline(model: model, tokenizer: tokenizer, schedulerConfig: sched,
                                           lowResSchedulerConfig: lowRes, name: name,
                                           hash: weights.map { ModelHash.short(of: $0) } ?? "")
        }
        let ckpt = try SingleFileCheckpoint(url: url)
        return StableDiffusionPipeline(model: model, tokenizer: try BPETokenizer.bundled(),
                                       schedulerConfig: defaultSchedulerConfig(for: model, predictionType: ckpt.predictionType),
                                       lowResSchedulerConfig: model.unet.config.inChannels == 7 ? defaultLowResSchedulerConfig() : nil,
                                       name: name, hash: ModelHash.short(of: url))
    }

    static func loadSchedulerConfig(_ url: URL) throws -> SchedulerConfig? {
        guard let data = FileManager.default.contents(atPath: url.path) else { return nil }
        // diffusers may write -Infinity (lambda_min_clipped), which JSONDecoder rejects.
        do { return try SchedulerConfig.decode(from: data) } catch {
            throw ModelError.invalidConfig(file: url.path, reason: "not a valid scheduler config (\(error))")
        }
    }

    /// What the official SD2 repositories ship (SD2-SPEC §5.1): DDIM, scaled_linear
    /// 0.00085–0.012 (0.0001–0.02 for the x4 upscaler), steps_offset 1.
    static func defaultSchedulerConfig(for model: StableDiffusionModel, predictionType: String) -> SchedulerConfig {
        var c = SchedulerConfig()
        c.className = "DDIMScheduler"
        c.numTrainTimesteps = 1000
        let x4 = model.unet.config.inChannels == 7
        c.betaStart = x4 ? 0.0001 : 0.00085
        c.betaEnd = x4 ? 0.02 : 0.012
        c.betaSchedule = "scaled_linear"
        c.predictionType = x4 ? "v_prediction" : predictionType
        c.stepsOffset = 1
        c.setAlphaToOne = false
        c.clipSample = false
        return c
    }

    static func defaultLowResSchedulerConfig() -> SchedulerConfig {
        var c = SchedulerConfig()
        c.className = "DDPMScheduler"
        c.numTrainTimesteps = 1000
        c.betaStart = 0.0001
        c.betaEnd = 0.02
        c.betaSchedule = "scaled_linear"
        c.clipSample = true
        return c
    }

    // MARK: Mode and defaults

    public var vaeScaleFactor: Int { model.vae.config.scaleFactor }

    /// The mode a request runs in, or why it cannot run on this model.
    public func mode(for r: GenerationRequest) throws -> GenerationMode {
        let ch = model.unet.config.inChannels
        switch ch {
        case 7:
            guard r.initImage != nil else { throw PipelineError.missingInput("the x4 upscaler needs an input image (atelier upscale --image PNG)") }
            return .upscale
        case 9:
            guard r.initImage != nil, r.mask != nil else {
                throw PipelineError.modeNotSupported(mode: "text-to-image", model: name,
                                                     reason: "it is an inpainting model (9-channel UNet); pass --init-image and --mask")
            }
            return .inpaint
        case 5:
            guard r.initImage != nil else {
                throw PipelineError.modeNotSupported(mode: "text-to-image", model: name,
                                                     reason: "it is a depth-to-image model (5-channel UNet); pass --init-image (and --depth-map, unless the model folder has depth_estimator/)")
            }
            guard r.depthMap != nil || hasDepthEstimator else {
                throw PipelineError.missingInput("depth-to-image needs --depth-map PNG (8- or 16-bit grayscale): \(name) has no depth_estimator/ folder to estimate depth from the photo")
            }
            return .depth2img
        case 4:
            if r.mask != nil {
                throw PipelineError.modeNotSupported(mode: "inpainting", model: name, reason: "its UNet has 4 input channels; inpainting needs a 9-channel SD2 inpainting model")
            }
            if r.depthMap != nil {
                throw PipelineError.modeNotSupported(mode: "depth-to-image", model: name, reason: "its UNet has 4 input channels; depth needs the 5-channel SD2 depth model")
            }
            return r.initImage == nil ? .txt2img : .img2img
        default:
            throw PipelineError.modeNotSupported(mode: "any mode", model: name, reason: "a UNet with \(ch) input channels is not an SD2-family model")
        }
    }

    /// diffusers' defaults per mode (SD2-SPEC §4).
    public func defaults(for mode: GenerationMode) -> (steps: Int, guidance: Double, strength: Double) {
        switch mode {
        case .txt2img: return (50, 7.5, 1)
        case .img2img, .depth2img: return (50, 7.5, 0.8)
        case .inpaint: return (50, 7.5, 1)
        case .upscale: return (75, 9, 1)
        }
    }

    /// The default image side for txt2img/inpaint: `unet.sample_size × vae factor`; single files
    /// have no sample size, so 768 for v-prediction models and 512 otherwise.
    public var defaultImageSide: Int {
        if let s = model.unet.config.sampleSize { return s * vaeScaleFactor }
        return (schedulerConfig.predictionType == "v_prediction" ? 96 : 64) * vaeScaleFactor
    }

    // MARK: Generation

    /// Renders `r`. `progress(done, total)` is called after every denoising step; returning false
    /// stops the render with `PipelineError.cancelled`.
    public func generate(_ r: GenerationRequest, progress: ((Int, Int) -> Bool)? = nil) throws -> GenerationResult {
        let mode = try mode(for: r)
        if mode == .upscale {
            return try upscale(r, tile: nil, progress: progress)
        }
        let d = defaults(for: mode)
        let steps = r.steps ?? d.steps
        let guidance = r.guidance ?? d.guidance
        let strength = r.strength ?? d.strength
        try validate(steps: steps, guidance: guidance, strength: strength, rescale: r.guidanceRescale)
        var scheduler = try makeScheduler(name: r.scheduler, config: fixedSchedulerConfig(for: mode))
        try scheduler.setTimesteps(steps)
        var random = TorchRandomSource(seed: r.seed)
        let cfg = guidance > 1
        let context = try encodePrompt(r.prompt, negative: r.negativePrompt, guidance: cfg)
        let vf = vaeScaleFactor
        let scaling = model.vae.config.scalingFactor

        var latents: Tensor
        var extra: Tensor? = nil  // channels appended to the UNet input after the latents
        var begin = 0
        var width: Int, height: Int
        switch mode {
        case .txt2img:
            (width, height) = try outputSize(r, default: defaultImageSide)
            latents = scaled(random.normal(shape: [1, model.vae.config.latentChannels, height / vf, width / vf]), scheduler.initNoiseSigma)
        case .img2img, .depth2img:
            guard let initImage = r.initImage else { throw PipelineError.missingInput("--init-image is required") }
            try checkWorkingSize(of: initImage, width: r.width, height: r.height, factor: vf)
            let image = try PipelineImages.preprocess(initImage, width: r.width, height: r.height, factor: vf, filter: .lanczos)
            (width, height) = (image.shape[3], image.shape[2])
            if mode == .depth2img {
                // Without a map, DPT's estimate on the original image; sized from the *original*
                // image either way, as prepare_depth_map does.
                // diffusers' depth2img has no width/height: the depth is sized from the photo, so
                // a request resizing the photo to another latent size cannot be honoured.
                guard initImage.width / vf == width / vf, initImage.height / vf == height / vf else {
                    throw PipelineError.invalidOption("depth-to-image renders at the input image's size (\(initImage.width)×\(initImage.height)); drop --width/--height or resize the image")
                }
                let depth = try r.depthMap ?? estimatedDepth(initImage)
                guard depth.width > 0, depth.height > 0, depth.values.count == depth.width * depth.height else {
                    throw PipelineError.invalidOption("the depth map is empty or its \(depth.values.count) values do not fill \(depth.width)×\(depth.height)")
                }
                extra = PipelineImages.depthCondition(depth, latentHeight: initImage.height / vf, latentWidth: initImage.width / vf)
            }
            begin = scheduler.img2imgBeginIndex(strength: strength)
            guard begin < scheduler.timesteps.count else {
                throw PipelineError.invalidOption("strength \(strength) with \(steps) steps leaves no denoising step; raise --strength or --steps")
            }
            let initLatents = sampleLatents(image, random: &random, scaling: scaling)
            let noise = random.normal(shape: initLatents.shape)
            latents = scheduler.addNoise(original: initLatents, noise: noise, stepIndex: begin)
        case .inpaint:
            guard let initImage = r.initImage, let maskImage = r.mask else { throw PipelineError.missingInput("--init-image and --mask are required") }
            let side = defaultImageSide
            let w = r.width ?? side, h = r.height ?? side
            try checkWorkingSize(of: initImage, width: w, height: h, factor: vf)
            let image = try PipelineImages.preprocess(initImage, width: w, height: h, factor: vf, filter: .lanczos)
            (width, height) = (image.shape[3], image.shape[2])
            let mask = try PipelineImages.preprocessMask(maskImage, width: width, height: height)
            begin = scheduler.img2imgBeginIndex(strength: strength)
            guard begin < scheduler.timesteps.count else {
                throw PipelineError.invalidOption("strength \(strength) with \(steps) steps leaves no denoising step; raise --strength or --steps")
            }
            let shape = [1, model.vae.config.latentChannels, height / vf, width / vf]
            if strength == 1 {
                latents = scaled(random.normal(shape: shape), scheduler.initNoiseSigma)
            } else {
                let imageLatents = sampleLatents(image, random: &random, scaling: scaling)
                latents = scheduler.addNoise(original: imageLatents, noise: random.normal(shape: shape), stepIndex: begin)
            }
            // masked_image = image · (mask < 0.5): repaint pixels become 0 (mid-gray).
            let masked = image.copy()
            let plane = width * height
            for c in 0..<3 { for i in 0..<plane where mask[flat: i] >= 0.5 { masked[flat: c * plane + i] = 0 } }
            let maskedLatents = sampleLatents(masked, random: &random, scaling: scaling)
            let latentMask = Elementwise.upsampleNearest(mask, height: height / vf, width: width / vf)
            extra = Elementwise.concatChannels([latentMask, maskedLatents])
        case .upscale:
            fatalError("unreachable")
        }

        let total = scheduler.timesteps.count - begin
        // The conditioning channels are the same at every step: batch them for CFG once.
        let conditioning = extra.map { cfg ? Elementwise.concatBatch([$0, $0]) : $0 }
        for (n, i) in (begin..<scheduler.timesteps.count).enumerated() {
            let input = cfg ? Elementwise.concatBatch([latents, latents]) : latents
            var x = scheduler.scaleModelInput(input, stepIndex: i)
            if let conditioning { x = Elementwise.concatChannels([x, conditioning]) }
            let out = try model.unet(x, timesteps: [scheduler.timesteps[i]], context: context)
            let pred = cfg ? Guidance.combine(out, scale: Float(guidance), rescale: Float(r.guidanceRescale)) : out
            latents = scheduler.step(modelOutput: pred, stepIndex: i, sample: latents, random: &random)
            if let progress, !progress(n + 1, total) { throw PipelineError.cancelled }
        }
        let image = try PipelineImages.postprocess(model.vae.decode(Elementwise.scale(latents, 1 / scaling)))
        return GenerationResult(image: image, parameters: parameters(r, mode: mode, steps: steps, guidance: guidance,
                                                                     strength: mode == .txt2img ? nil : strength,
                                                                     width: width, height: height))
    }

    /// The x4 upscaler. With `tile` set, only that window of the (preprocessed) low-res image is
    /// denoised, using the window of noise fields drawn for the *whole* image, so overlapping
    /// tiles agree and a single full-size tile equals the untiled result.
    public func upscale(_ r: GenerationRequest, tile: UpscaleTile?, progress: ((Int, Int) -> Bool)? = nil) throws -> GenerationResult {
        guard model.unet.config.inChannels == 7, let lowResConfig = lowResSchedulerConfig else {
            throw PipelineError.modeNotSupported(mode: "x4 upscaling", model: name, reason: "its UNet has \(model.unet.config.inChannels) input channels, the x4 upscaler has 7")
        }
        guard let input = r.initImage else { throw PipelineError.missingInput("an input image is required") }
        let d = defaults(for: .upscale)
        let steps = r.steps ?? d.steps
        let guidance = r.guidance ?? d.guidance
        let noiseLevel = r.noiseLevel ?? 20
        try validate(steps: steps, guidance: guidance, strength: 1, rescale: 0)
        guard (0...maxNoiseLevel).contains(noiseLevel) else {
            throw PipelineError.invalidOption("--noise-level must be in 0…\(maxNoiseLevel), got \(noiseLevel)")
        }
        var scheduler = try makeScheduler(name: r.scheduler, config: schedulerConfig)
        try scheduler.setTimesteps(steps)
        let lowRes = try DDPMScheduler(config: lowResConfig)
        var random = TorchRandomSource(seed: r.seed)
        let cfg = guidance > 1
        let context = try encodePrompt(r.prompt, negative: r.negativePrompt, guidance: cfg)

        // Whole image: the low-res noise, then the latents (diffusers' order), both full size.
        let full = try tile.map { try PipelineImages.toTensor($0.pixels, expectWidth: $0.rect.width, expectHeight: $0.rect.height) }
            ?? PipelineImages.preprocess(input, width: nil, height: nil, factor: vaeScaleFactor, filter: .bicubic)
        let imageW = tile?.imageWidth ?? full.shape[3], imageH = tile?.imageHeight ?? full.shape[2]
        // The tile's window of the whole image (checked here, before any crop): its initial and
        // per-step noise are that window of the whole image's noise.
        let noiseWindow = try tile.map {
            try NoiseWindow(imageWidth: imageW, imageHeight: imageH, x: $0.rect.x, y: $0.rect.y,
                            width: $0.rect.width, height: $0.rect.height)
        }
        let imageNoise = random.normal(shape: [1, 3, imageH, imageW])
        var latents = scaled(random.normal(shape: [1, model.vae.config.latentChannels, imageH, imageW]), scheduler.initNoiseSigma)
        var noise = imageNoise
        if let t = tile {
            noise = Elementwise.crop(imageNoise, x: t.rect.x, y: t.rect.y, width: t.rect.width, height: t.rect.height)
            latents = Elementwise.crop(latents, x: t.rect.x, y: t.rect.y, width: t.rect.width, height: t.rect.height)
        }
        var lowResImage = lowRes.addNoise(original: full, noise: noise, trainTimestep: noiseLevel)
        if cfg { lowResImage = Elementwise.concatBatch([lowResImage, lowResImage]) }
        let labels = Array(repeating: noiseLevel, count: cfg ? 2 : 1)

        let total = scheduler.timesteps.count
        for i in 0..<total {
            let input = cfg ? Elementwise.concatBatch([latents, latents]) : latents
            let x = Elementwise.concatChannels([scheduler.scaleModelInput(input, stepIndex: i), lowResImage])
            let out = try model.unet(x, timesteps: [scheduler.timesteps[i]], context: context, classLabels: labels)
            let pred = cfg ? Guidance.combine(out, scale: Float(guidance), rescale: 0) : out
            latents = scheduler.step(modelOutput: pred, stepIndex: i, sample: latents, random: &random, noiseWindow: noiseWindow)
            if let progress, !progress(i + 1, total) { throw PipelineError.cancelled }
        }
        let image = try PipelineImages.postprocess(model.vae.decode(Elementwise.scale(latents, 1 / model.vae.config.scalingFactor)))
        var p = parameters(r, mode: .upscale, steps: steps, guidance: guidance, strength: nil,
                           width: imageW * vaeScaleFactor, height: imageH * vaeScaleFactor)
        p.noiseLevel = noiseLevel
        return GenerationResult(image: image, parameters: p)
    }

    // MARK: Depth estimation

    /// Whether depth2img can run without a depth map: a diffusers folder with `depth_estimator/`.
    public var hasDepthEstimator: Bool {
        model.folder.map { DPTDepthEstimator.estimatorFolder(in: $0) != nil } ?? false
    }

    /// The folder's DPT estimator (`depth_estimator/` + `feature_extractor/`), loaded once, on
    /// first use: a render with a given depth map never pays for it.
    public func depthEstimator() throws -> DPTDepthEstimator {
        depthEstimatorLock.lock()
        defer { depthEstimatorLock.unlock() }
        if let e = loadedDepthEstimator { return e }
        guard let folder = model.folder, hasDepthEstimator else {
            throw PipelineError.missingComponent("\(name) has no depth_estimator/ folder (single-file checkpoints never do); pass --depth-map PNG")
        }
        let e = try DPTDepthEstimator.load(folder)
        loadedDepthEstimator = e
        return e
    }

    /// prepare_depth_map with `depth_map=None`: `predicted_depth` of the original image, which the
    /// caller then resizes and normalises exactly like a given map.
    func estimatedDepth(_ image: RGBImage) throws -> DepthMap {
        let d = try depthEstimator().predictedDepth(image)
        return DepthMap(width: d.shape[2], height: d.shape[1], values: d.scalars)
    }

    // MARK: Pieces

    /// [uncond, cond] text embeddings when guidance is on (uncond first, as diffusers), else cond.
    ///
    /// The last prompt's embeddings are kept (`PromptEmbeddingCache`): the tiles of one upscale,
    /// or the images of one batch, share a prompt, and the text encoder then runs once, not per
    /// tile. After it runs, its mapped weights leave the resident set until the next new prompt
    /// (`StableDiffusionModel.releaseTextEncoderPages`), so they never add to the UNet's peak.
    func encodePrompt(_ prompt: String, negative: String, guidance: Bool) throws -> Tensor {
        let key = PromptEmbeddingCache.Key(prompt: prompt, negative: negative, guidance: guidance)
        if let hit = promptCache.lookup(key) { return hit }
        defer { model.releaseTextEncoderPages() }
        let cond = try model.textEncoder([tokenizer.encode(prompt)])
        let context = guidance
            ? Elementwise.concatBatch([try model.textEncoder([tokenizer.encode(negative)]), cond]) : cond
        promptCache.store(key, context)
        return context
    }

    /// `scaling · posterior.sample(generator)`: mean + exp(½·clamp(logvar, −30, 20))·randn.
    func sampleLatents(_ image: Tensor, random: inout TorchRandomSource, scaling: Float) -> Tensor {
        let moments = model.vae.encode(image)
        let z = model.vae.config.latentChannels
        let (mean, logvar) = Elementwise.splitChannels(moments, first: z)
        let eps = random.normal(shape: mean.shape)
        let out = Tensor(uninitialized: mean.shape)
        for i in 0..<out.count {
            let lv = min(max(logvar[flat: i], -30), 20)
            let std = expf(0.5 * lv)
            out[flat: i] = scaling * (mean[flat: i] + std * eps[flat: i])
        }
        return out
    }

    /// diffusers' construction-time scheduler fix-ups for each pipeline (SD2-SPEC §4).
    func fixedSchedulerConfig(for mode: GenerationMode) -> SchedulerConfig {
        var c = schedulerConfig
        switch mode {
        case .txt2img, .img2img:
            if c.stepsOffset != nil && c.stepsOffset != 1 { c.stepsOffset = 1 }
            if c.clipSample == true { c.clipSample = false }
        case .inpaint:
            if c.stepsOffset != nil && c.stepsOffset != 1 { c.stepsOffset = 1 }
            if c.skipPrkSteps == false { c.skipPrkSteps = true }
        case .depth2img, .upscale:
            break
        }
        return c
    }

    func outputSize(_ r: GenerationRequest, default side: Int) throws -> (Int, Int) {
        let w = r.width ?? side, h = r.height ?? side
        guard w > 0, h > 0, w % 8 == 0, h % 8 == 0 else {
            throw PipelineError.invalidOption("width and height must be positive multiples of 8, got \(w)×\(h)")
        }
        guard w <= 4096, h <= 4096 else { throw PipelineError.invalidOption("width and height must be at most 4096, got \(w)×\(h)") }
        // A VAE with more levels than SD2's has a larger factor; the latent must not be empty.
        let vf = vaeScaleFactor
        guard w % vf == 0, h % vf == 0 else {
            throw PipelineError.invalidOption("width and height must be multiples of \(vf) for this model's VAE, got \(w)×\(h)")
        }
        return (w, h)
    }

    /// The size img2img/depth/inpaint will work at (the request's, else the image's, floored to
    /// the VAE factor) must be 1…4096 a side, like txt2img's — checked before anything is resized
    /// or allocated.
    func checkWorkingSize(of image: RGBImage, width: Int?, height: Int?, factor: Int) throws {
        let w = width ?? image.width, h = height ?? image.height
        guard w >= factor, h >= factor, w <= 4096, h <= 4096 else {
            throw PipelineError.invalidOption("the working size \(w)×\(h) must be \(factor)…4096 a side; pass --width/--height in that range or a smaller image")
        }
    }

    /// The shared request validation (AtelierRequests), so the engine refuses exactly what every
    /// door refuses, with the same message.
    func validate(steps: Int, guidance: Double, strength: Double, rescale: Double) throws {
        var d = GenerationDescription(mode: .img2img, prompt: "")
        d.steps = steps; d.guidance = guidance; d.strength = strength; d.guidanceRescale = rescale
        do { try GenerationValidation.validateSettings(d) } catch let e as RequestValidationError {
            throw PipelineError.invalidOption(e.message)
        }
    }

    func scaled(_ t: Tensor, _ s: Float) -> Tensor { s == 1 ? t : Elementwise.scale(t, s) }

    func parameters(_ r: GenerationRequest, mode: GenerationMode, steps: Int, guidance: Double, strength: Double?,
                    width: Int, height: Int) -> GenerationParameters {
        let schedulerID = r.scheduler ?? SchedulerName.id(forClassName: schedulerConfig.className) ?? "ddim"
        var p = GenerationParameters(prompt: r.prompt, negativePrompt: r.negativePrompt, steps: steps,
                                     sampler: A1111SamplerNames.displayName(for: schedulerID) ?? schedulerID,
                                     cfgScale: guidance, seed: r.seed, width: width, height: height,
                                     modelName: name, modelHash: hash.isEmpty ? nil : hash)
        p.strength = strength
        p.guidanceRescale = r.guidanceRescale > 0 ? r.guidanceRescale : nil
        p.mode = mode.rawValue
        return p
    }
}

/// One tile of a tiled x4 upscale: its low-res pixels and where it lies in the whole image.
public struct UpscaleTile: Sendable {
    public struct Rect: Sendable, Equatable {
        public let x: Int, y: Int, width: Int, height: Int
        public init(x: Int, y: Int, width: Int, height: Int) { self.x = x; self.y = y; self.width = width; self.height = height }
    }
    public let pixels: RGBImage
    public let rect: Rect
    public let imageWidth: Int
    public let imageHeight: Int

    public init(pixels: RGBImage, rect: Rect, imageWidth: Int, imageHeight: Int) {
        self.pixels = pixels; self.rect = rect; self.imageWidth = imageWidth; self.imageHeight = imageHeight
    }
}

extension DPTDepthEstimator {
    /// `predicted_depth` [1, H', W'] (384² for SD2-depth) for an RGB image, as
    /// `depth_estimator(feature_extractor(images=image).pixel_values)` computes it: PIL resize with
    /// the processor's filter (bilinear) to its size, rescale, normalise, DPT.
    public func predictedDepth(_ image: RGBImage) throws -> Tensor {
        let size = try inputSize(width: image.width, height: image.height)
        guard let name = processor.resampleFilterName, let filter = ResampleFilter(pilName: name) else {
            throw PipelineError.invalidOption("the depth image processor's resample \(processor.resample) is not supported")
        }
        let resized = size.width == image.width && size.height == image.height
            ? image : try ImageResampler.resize(image, width: size.width, height: size.height, filter: filter)
        return try predict(resizedRGB: resized.pixels, width: resized.width, height: resized.height)
    }
}

extension SchedulerName {
    /// The CLI name of a diffusers scheduler class (DPM maps to plain "dpm++2m").
    public static func id(forClassName className: String?) -> String? {
        guard let className else { return nil }
        return allCases.first { $0.className == className }?.rawValue
    }
}
