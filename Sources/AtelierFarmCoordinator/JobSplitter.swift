import AtelierFarmProtocol
import AtelierImaging
import AtelierRequests
import Foundation
import SwiftProtobuf

/// A validated submission, split into the tasks the queue will hold.
public struct JobPlan: Sendable {
    public struct Task: Sendable {
        public var index: Int
        /// Serialized `Atelier_V1_TaskSpec` as stored: only what differs per task (see `JobSplitter.hydrate`).
        public var spec: Data
        /// Steps × output megapixels, for the lease deadline.
        public var work: Double
    }

    public var kind: JobKind
    public var model: String
    public var acceptedChannels: Int64
    public var tasks: [Task]
    public var priority: Int32
    public var maxAttempts: Int
    /// Upscale: the low-res image size and tile grid (0 for batches).
    public var imageWidth = 0
    public var imageHeight = 0
    public var tile = 0
    public var overlap = 0
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
    // Tile and overlap defaults are `TilePlan`'s.
    // Every other limit is in `RequestLimits` (AtelierRequests), shared with the CLI and worker.

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
        // The shared validation first, on declared sizes only: a refusal costs nothing
        // proportional to the request.
        for (field, png) in [("init_image_png", batch.params.initImagePng), ("mask_png", batch.params.maskPng),
                             ("depth_map_png", batch.params.depthMapPng)] {
            try checkBytes(png, field: "batch.params.\(field)", options: options)
        }
        do { try GenerationValidation.validate(try FarmRequestValidation.description(of: batch)) } catch let e as RequestValidationError {
            throw CoordinatorError(e)
        }
        let total = batch.prompts.count * Int(batch.count)
        guard total <= options.maxUnfinishedTasks else {
            throw CoordinatorError(.queueFull,
                "the batch has \(total) images, more than the queue holds (\(options.maxUnfinishedTasks) tasks); split it into smaller jobs")
        }
        let params = batch.params
        var initSize: (Int, Int)?
        if !params.initImagePng.isEmpty {
            let image = try decodeInput(params.initImagePng, field: "batch.params.init_image_png",
                                        maxSide: RequestLimits.inputImageSide, options: options)
            initSize = (image.width, image.height)
        }
        if !params.maskPng.isEmpty {
            _ = try decodeInput(params.maskPng, field: "batch.params.mask_png", maxSide: RequestLimits.inputImageSide, options: options)
        }
        if !params.depthMapPng.isEmpty {
            _ = try decodeInput(params.depthMapPng, field: "batch.params.depth_map_png",
                                maxSide: RequestLimits.inputImageSide, options: options)
        }

        let width = params.width != 0 ? Int(params.width) : initSize?.0 ?? defaultImageSide
        let height = params.height != 0 ? Int(params.height) : initSize?.1 ?? defaultImageSide
        let steps = params.steps != 0 ? Int(params.steps) : defaultImageSteps
        let work = Double(steps) * Double(width * height) / 1_000_000

        // Each task stores only what differs per image (its index and seed, plus the requested
        // size for the completion check): the prompts,
        // negative prompt, settings and input images are in the job's spec, stored once, and
        // `hydrate` puts them back at lease time. So a batch costs O(1) bytes per image whatever
        // its text and images weigh.
        var tasks = [JobPlan.Task]()
        tasks.reserveCapacity(total)
        for index in 0..<total {
            var image = Atelier_V1_ImageTask()
            image.index = UInt32(index)
            image.params.seed = params.seed &+ UInt64(index)
            // Also kept per task (a few bytes): the completion check compares the result with them.
            image.params.width = params.width
            image.params.height = params.height
            var spec = Atelier_V1_TaskSpec()
            spec.image = image
            tasks.append(JobPlan.Task(index: index, spec: try spec.serializedBytes(), work: work))
        }
        return JobPlan(kind: .batch, model: params.model, acceptedChannels: ChannelRequirement.forImage(params),
                       tasks: tasks, priority: priority, maxAttempts: maxAttempts)
    }

    /// Completes a stored task spec with what its job shares, for a lease: a batch image gets the
    /// job's params with its own prompt (`prompts[index / count]`) and seed; an upscale tile gets
    /// the job's upscale params. Specs stored by earlier versions (which carried everything) come
    /// out the same.
    static func hydrate(_ spec: inout Atelier_V1_TaskSpec, from job: Atelier_V1_SubmitJobRequest) {
        switch (spec.kind, job.job) {
        case (.image(var image)?, .batch(let batch)?):
            let count = Int(batch.count)
            let p = count > 0 ? Int(image.index) / count : -1
            guard batch.prompts.indices.contains(p) else { return }
            let seed = image.params.seed
            image.params = batch.params
            image.params.prompt = batch.prompts[p]
            image.params.seed = seed
            spec.image = image
        case (.upscaleTile(var tile)?, .upscale(let upscale)?):
            tile.params = upscale.params
            spec.upscaleTile = tile
        default:
            return
        }
    }

    // MARK: Upscale

    static func planUpscale(_ upscale: Atelier_V1_UpscaleJob, priority: Int32, maxAttempts: Int,
                            options: CoordinatorOptions) throws -> JobPlan {
        let params = upscale.params
        let tile = upscale.tile == 0 ? TilePlan.defaultTile : Int(upscale.tile)
        // The default overlap is 32, shrunk for small tiles so it stays below half the tile.
        let overlap = upscale.overlap == 0 ? TilePlan.defaultOverlap(forTile: tile) : Int(upscale.overlap)
        guard !upscale.imagePng.isEmpty else {
            throw CoordinatorError.invalid("upscale.image_png is empty: send the PNG to upscale")
        }
        try checkBytes(upscale.imagePng, field: "upscale.image_png", options: options)
        // Declared size, tile rules and tile count before anything is decoded or allocated.
        do {
            try GenerationValidation.validate(try FarmRequestValidation.description(of: upscale, tile: tile, overlap: overlap))
        } catch let e as RequestValidationError {
            throw CoordinatorError(e)
        }
        let decoded = try decodeInput(upscale.imagePng, field: "upscale.image_png",
                                      maxSide: options.maxUpscaleSide, options: options)
        // The upscaler's own preprocessing (sides floored to a multiple of 4), done once here so
        // every tile is cut from exactly the pixels `atelier upscale --tile` would use (the same
        // `TilePlan`).
        let image: RGBImage
        do { image = try TilePlan.prepare(decoded.rgb()) } catch {
            throw CoordinatorError.invalid("upscale.image_png: \(error)")
        }
        let plan: TilePlan
        do {
            plan = try TilePlan(prepared: image, tile: tile, overlap: overlap)
        } catch {
            throw CoordinatorError.invalid("cannot tile the image: \(error)")
        }
        let steps = params.steps != 0 ? Int(params.steps) : defaultUpscaleSteps
        var tasks = [JobPlan.Task]()
        tasks.reserveCapacity(plan.tiles.count)
        for rect in plan.tiles {
            let png = try PNGCodec.encode(try plan.crop(rect, from: image))
            // The params are the job's, stored once; `hydrate` adds them at lease time.
            var task = Atelier_V1_UpscaleTileTask()
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
            let outputPixels = Double(rect.width * plan.scale * rect.height * plan.scale)
            tasks.append(JobPlan.Task(index: rect.index, spec: try spec.serializedBytes(),
                                      work: Double(steps) * outputPixels / 1_000_000))
        }
        return JobPlan(kind: .upscale, model: params.model, acceptedChannels: ChannelRequirement.upscale,
                       tasks: tasks, priority: priority, maxAttempts: maxAttempts,
                       imageWidth: image.width, imageHeight: image.height, tile: tile, overlap: overlap)
    }

    // MARK: Shared checks

    /// The coordinator's own byte cap on input images (`CoordinatorOptions.maxImageBytes`, at most
    /// the shared `RequestLimits.inputImageBytes`).
    static func checkBytes(_ bytes: Data, field: String, options: CoordinatorOptions) throws {
        guard bytes.count <= options.maxImageBytes else {
            throw CoordinatorError.tooLarge(
                "\(field) is \(bytes.count) bytes; images may be at most \(options.maxImageBytes) bytes here")
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
