import AtelierDiffusion
import Foundation
import SwiftProtobuf

/// A validated submission, split into the tasks the queue will hold.
struct JobPlan {
    struct Task {
        var index: Int
        /// Serialized `Atelier_V1_TaskSpec` as stored (see `JobSplitter.strip`).
        var spec: Data
        /// Steps × output megapixels, for the lease deadline.
        var work: Double
    }

    var kind: JobKind
    var model: String
    var acceptedChannels: Int64
    var tasks: [Task]
    var priority: Int32
    var maxAttempts: Int
    /// Upscale: the low-res image size and tile grid (0 for batches).
    var imageWidth = 0
    var imageHeight = 0
    var tile = 0
    var overlap = 0
}

/// Validates a `SubmitJobRequest` and splits it into tasks, before any transaction starts (PNG
/// decoding and tile cropping are the slow part of a submission and need no lock).
///
/// Batch: P prompts × count K become P·K `ImageTask`s; image `index = p·K + k` gets
/// `prompt = prompts[p]` and `seed = seed + index` (wrapping), so any image of a batch can be
/// re-rendered alone with `atelier render --seed`. Shared inputs (init image, mask, depth map)
/// are stored once in the job's spec, not in each of the P·K task specs, and put back into the
/// task when it is leased (`hydrate`).
///
/// Upscale: one `UpscaleTileTask` per tile of the `TileGrid`, each carrying its low-res crop as
/// PNG, its rectangle and the full image size; all tiles share the job's seed, so overlapping
/// tiles see the same noise field.
enum JobSplitter {
    static let defaultImageSteps = 50
    static let defaultUpscaleSteps = 75
    /// Size assumed for the lease estimate when a batch leaves width/height to the model (SD 2's
    /// 768-v default; the 512 base model renders faster, so this errs on the long side).
    static let defaultImageSide = 768
    static let defaultTile = 128
    static let defaultOverlap = 32
    static let maxPromptLength = 16_384
    static let maxImageSide = 4096
    static let maxNoiseLevel: UInt32 = 350

    static func plan(_ request: Atelier_V1_SubmitJobRequest, options: CoordinatorOptions) throws -> JobPlan {
        let maxAttempts: Int
        if request.maxAttempts == 0 {
            maxAttempts = options.defaultMaxAttempts
        } else if Int(request.maxAttempts) <= options.maxAttemptsLimit {
            maxAttempts = Int(request.maxAttempts)
        } else {
            throw CoordinatorError.invalid(
                "max_attempts must be 1…\(options.maxAttemptsLimit) (0 = default \(options.defaultMaxAttempts)), got \(request.maxAttempts)")
        }
        switch request.job {
        case .batch(let batch)?:
            return try planBatch(batch, priority: request.priority, maxAttempts: maxAttempts, options: options)
        case .upscale(let upscale)?:
            return try planUpscale(upscale, priority: request.priority, maxAttempts: maxAttempts, options: options)
        case nil:
            throw CoordinatorError.invalid("submit_job has no job: set `batch` (render prompts) or `upscale` (x4 upscale an image)")
        }
    }

    // MARK: Batch

    static func planBatch(_ batch: Atelier_V1_BatchJob, priority: Int32, maxAttempts: Int,
                          options: CoordinatorOptions) throws -> JobPlan {
        guard !batch.prompts.isEmpty else {
            throw CoordinatorError.invalid("batch.prompts is empty: give at least one prompt")
        }
        for (i, prompt) in batch.prompts.enumerated() {
            guard !prompt.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                throw CoordinatorError.invalid("batch.prompts[\(i)] is empty: every prompt must have text")
            }
            guard prompt.utf8.count <= maxPromptLength else {
                throw CoordinatorError.invalid(
                    "batch.prompts[\(i)] is \(prompt.utf8.count) bytes; prompts may be at most \(maxPromptLength) bytes")
            }
        }
        guard (1...1000).contains(batch.count) else {
            throw CoordinatorError.invalid("batch.count (images per prompt) must be 1…1000, got \(batch.count)")
        }
        let total = batch.prompts.count * Int(batch.count)
        guard total <= options.maxUnfinishedTasks else {
            throw CoordinatorError(.queueFull,
                "the batch has \(total) images, more than the queue holds (\(options.maxUnfinishedTasks) tasks); split it into smaller jobs")
        }
        let params = batch.params
        try validateCommon(model: params.model, steps: params.steps, scheduler: params.scheduler,
                           guidance: params.hasGuidance ? params.guidance : nil, field: "batch.params")
        for (name, value) in [("width", params.width), ("height", params.height)] where value != 0 {
            guard value % 8 == 0, (8...UInt32(maxImageSide)).contains(value) else {
                throw CoordinatorError.invalid(
                    "batch.params.\(name) must be a multiple of 8 in 8…\(maxImageSide) (or 0 for the model default), got \(value)")
            }
        }
        if params.hasStrength {
            guard params.strength.isFinite, params.strength >= 0, params.strength <= 1 else {
                throw CoordinatorError.invalid("batch.params.strength must be in 0…1, got \(params.strength)")
            }
        }
        guard params.guidanceRescale.isFinite, params.guidanceRescale >= 0, params.guidanceRescale <= 1 else {
            throw CoordinatorError.invalid("batch.params.guidance_rescale must be in 0…1, got \(params.guidanceRescale)")
        }
        if params.initImagePng.isEmpty {
            if !params.maskPng.isEmpty {
                throw CoordinatorError.invalid("batch.params.mask_png needs an init_image_png to inpaint")
            }
            if !params.depthMapPng.isEmpty {
                throw CoordinatorError.invalid("batch.params.depth_map_png needs an init_image_png for depth2img")
            }
        }
        var initSize: (Int, Int)?
        if !params.initImagePng.isEmpty {
            let image = try decodeInput(params.initImagePng, field: "batch.params.init_image_png",
                                        maxSide: maxImageSide, options: options)
            initSize = (image.width, image.height)
        }
        if !params.maskPng.isEmpty {
            _ = try decodeInput(params.maskPng, field: "batch.params.mask_png", maxSide: maxImageSide, options: options)
        }
        if !params.depthMapPng.isEmpty {
            _ = try decodeInput(params.depthMapPng, field: "batch.params.depth_map_png",
                                maxSide: maxImageSide, options: options)
        }

        let width = params.width != 0 ? Int(params.width) : initSize?.0 ?? defaultImageSide
        let height = params.height != 0 ? Int(params.height) : initSize?.1 ?? defaultImageSide
        let steps = params.steps != 0 ? Int(params.steps) : defaultImageSteps
        let work = Double(steps) * Double(width * height) / 1_000_000

        var shared = params
        strip(&shared)
        var tasks = [JobPlan.Task]()
        tasks.reserveCapacity(total)
        let count = Int(batch.count)
        for (p, prompt) in batch.prompts.enumerated() {
            for k in 0..<count {
                let index = p * count + k
                var image = Atelier_V1_ImageTask()
                image.index = UInt32(index)
                image.params = shared
                image.params.prompt = prompt
                image.params.seed = params.seed &+ UInt64(index)
                var spec = Atelier_V1_TaskSpec()
                spec.image = image
                tasks.append(JobPlan.Task(index: index, spec: try spec.serializedBytes(), work: work))
            }
        }
        return JobPlan(kind: .batch, model: params.model, acceptedChannels: ChannelRequirement.forImage(params),
                       tasks: tasks, priority: priority, maxAttempts: maxAttempts)
    }

    /// Removes the inputs every image of a batch shares; `hydrate` puts them back.
    static func strip(_ params: inout Atelier_V1_GenerationParams) {
        params.initImagePng = Data()
        params.maskPng = Data()
        params.depthMapPng = Data()
    }

    /// Completes a stored task spec with the shared inputs of its job, for a lease.
    static func hydrate(_ spec: inout Atelier_V1_TaskSpec, from job: Atelier_V1_SubmitJobRequest) {
        guard case .image(var image)? = spec.kind, case .batch(let batch)? = job.job else { return }
        image.params.initImagePng = batch.params.initImagePng
        image.params.maskPng = batch.params.maskPng
        image.params.depthMapPng = batch.params.depthMapPng
        spec.image = image
    }

    // MARK: Upscale

    static func planUpscale(_ upscale: Atelier_V1_UpscaleJob, priority: Int32, maxAttempts: Int,
                            options: CoordinatorOptions) throws -> JobPlan {
        let params = upscale.params
        try validateCommon(model: params.model, steps: params.steps, scheduler: params.scheduler,
                           guidance: params.hasGuidance ? params.guidance : nil, field: "upscale.params")
        if params.hasNoiseLevel, params.noiseLevel > maxNoiseLevel {
            throw CoordinatorError.invalid(
                "upscale.params.noise_level must be 0…\(maxNoiseLevel) (the x4 upscaler's max_noise_level), got \(params.noiseLevel)")
        }
        let tile = upscale.tile == 0 ? defaultTile : Int(upscale.tile)
        guard tile % 8 == 0, tile >= 32, tile <= options.maxUpscaleSide else {
            throw CoordinatorError.invalid(
                "upscale.tile must be a multiple of 8 in 32…\(options.maxUpscaleSide) low-res pixels (0 = \(defaultTile)), got \(tile)")
        }
        // The default overlap is 32, shrunk for small tiles so it stays below half the tile.
        let overlap = upscale.overlap == 0 ? min(defaultOverlap, tile / 4 / 4 * 4) : Int(upscale.overlap)
        guard overlap % 4 == 0, overlap * 2 < tile else {
            throw CoordinatorError.invalid(
                "upscale.overlap must be a multiple of 4 and less than half the tile (\(tile / 2)), got \(overlap)")
        }
        guard !upscale.imagePng.isEmpty else {
            throw CoordinatorError.invalid("upscale.image_png is empty: send the PNG to upscale")
        }
        let decoded = try decodeInput(upscale.imagePng, field: "upscale.image_png",
                                      maxSide: options.maxUpscaleSide, options: options)
        // The upscaler's own preprocessing (sides floored to a multiple of 4), done once here so
        // every tile is cut from exactly the pixels `atelier upscale --tile` would use.
        let image: RGBImage
        do { image = try VaeImagePreprocessor.upscalerInput(decoded.rgb()) } catch {
            throw CoordinatorError.invalid("upscale.image_png: \(error)")
        }
        let grid: TileGrid
        do {
            grid = try TileGrid(width: image.width, height: image.height, tile: tile, overlap: overlap)
        } catch {
            throw CoordinatorError.invalid("cannot tile the image: \(error)")
        }
        let steps = params.steps != 0 ? Int(params.steps) : defaultUpscaleSteps
        var tasks = [JobPlan.Task]()
        tasks.reserveCapacity(grid.tiles.count)
        for rect in grid.tiles {
            let crop = try rect.crop(from: image.pixels, imageWidth: image.width, imageHeight: image.height, channels: 3)
            let png = try PNGCodec.encode(RGBImage(width: rect.width, height: rect.height, pixels: crop))
            var task = Atelier_V1_UpscaleTileTask()
            task.params = params
            task.tilePng = Data(png)
            task.tile.x = UInt32(rect.x)
            task.tile.y = UInt32(rect.y)
            task.tile.width = UInt32(rect.width)
            task.tile.height = UInt32(rect.height)
            task.imageWidth = UInt32(image.width)
            task.imageHeight = UInt32(image.height)
            task.index = UInt32(rect.index)
            var spec = Atelier_V1_TaskSpec()
            spec.upscaleTile = task
            let outputPixels = Double(rect.width * 4 * rect.height * 4)
            tasks.append(JobPlan.Task(index: rect.index, spec: try spec.serializedBytes(),
                                      work: Double(steps) * outputPixels / 1_000_000))
        }
        return JobPlan(kind: .upscale, model: params.model, acceptedChannels: ChannelRequirement.upscale,
                       tasks: tasks, priority: priority, maxAttempts: maxAttempts,
                       imageWidth: image.width, imageHeight: image.height, tile: tile, overlap: overlap)
    }

    // MARK: Shared checks

    static func validateCommon(model: String, steps: UInt32, scheduler: String, guidance: Double?, field: String) throws {
        guard !model.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw CoordinatorError.invalid("\(field).model is empty: name a model a worker registered (see list_workers)")
        }
        guard steps <= 1000 else {
            throw CoordinatorError.invalid("\(field).steps must be at most 1000 (0 = model default), got \(steps)")
        }
        if !scheduler.isEmpty, SchedulerName(rawValue: scheduler) == nil {
            let names = SchedulerName.allCases.map(\.rawValue).joined(separator: ", ")
            throw CoordinatorError.invalid("\(field).scheduler \"\(scheduler)\" is unknown; use one of \(names), or \"\" for the model default")
        }
        if let guidance, !guidance.isFinite || guidance < 0 || guidance > 100 {
            throw CoordinatorError.invalid("\(field).guidance must be in 0…100, got \(guidance)")
        }
    }

    /// Decodes an input PNG, mapping size problems to TOO_LARGE and anything else to
    /// INVALID_ARGUMENT with the decoder's explanation.
    static func decodeInput(_ bytes: Data, field: String, maxSide: Int, options: CoordinatorOptions) throws -> DecodedPNG {
        guard bytes.count <= options.maxImageBytes else {
            throw CoordinatorError.tooLarge(
                "\(field) is \(bytes.count >> 20) MiB; images may be at most \(options.maxImageBytes >> 20) MiB")
        }
        do {
            return try PNGCodec.decode([UInt8](bytes), source: field,
                                       limits: PNGReadLimits(maxDimension: maxSide, maxPixels: maxSide * maxSide))
        } catch let error as ImageError {
            if case .tooLarge(_, let width, let height, _) = error {
                throw CoordinatorError.tooLarge(
                    "\(field) is \(width)x\(height); at most \(maxSide) pixels per side are accepted here, downscale it first")
            }
            throw CoordinatorError.invalid(error.description)
        } catch {
            throw CoordinatorError.invalid("\(field): \(error)")
        }
    }
}
