/// The five SD2 modes, as far as validation can tell them apart from the inputs alone (the
/// engine later also checks that the model's UNet fits the mode).
public enum RequestMode: String, Sendable, CaseIterable {
    case txt2img, img2img, inpaint, depth2img, upscale

    /// The mode a generation request's inputs ask for: init image alone = img2img (or depth2img
    /// on a depth model, which validates the same), plus a mask = inpaint, plus a depth map =
    /// depth2img.
    public static func forInputs(initImage: Bool, mask: Bool, depthMap: Bool) -> RequestMode {
        if mask { return .inpaint }
        if depthMap { return .depth2img }
        return initImage ? .img2img : .txt2img
    }
}

/// The pixel size of an image as its PNG header declares it (read before decoding).
public struct ImageSize: Equatable, Sendable, CustomStringConvertible {
    public var width: Int
    public var height: Int
    public init(width: Int, height: Int) { self.width = width; self.height = height }
    public var description: String { "\(width)×\(height)" }
}

/// A request as every door sees it: plain values, nil = "not given, take the default". Doors fill
/// it from their own form (CLI options, protocol fields with 0/empty meaning default, a leased
/// task) and call `GenerationValidation.validate`.
public struct GenerationDescription: Sendable, Equatable {
    public var mode: RequestMode
    /// The prompts (one for render/upscale, P for a batch).
    public var prompts: [String]
    public var negativePrompt: String = ""
    /// The farm's model name; nil where a path is given instead (local commands).
    public var model: String?
    public var steps: Int?
    public var guidance: Double?
    public var strength: Double?
    public var guidanceRescale: Double?
    public var scheduler: String?
    public var width: Int?
    public var height: Int?
    /// Declared sizes of the input images (init / upscale input, mask, depth map).
    public var initImage: ImageSize?
    public var mask: ImageSize?
    public var depthMap: ImageSize?
    public var noiseLevel: Int?
    /// Images per prompt.
    public var count: Int = 1
    /// Upscale tiling in low-res pixels; tile nil = one pass.
    public var tile: Int?
    public var overlap: Int?

    public init(mode: RequestMode, prompts: [String]) {
        self.mode = mode
        self.prompts = prompts
    }

    public init(mode: RequestMode, prompt: String) { self.init(mode: mode, prompts: [prompt]) }
}

/// The one validation of a generation request, pure (no I/O, no engine): the CLI's `render`,
/// `upscale`, `submit` and `submit-upscale`, the coordinator's `submit_job` and the worker before
/// rendering all call it, so what one door accepts every door accepts, with the same message.
public enum GenerationValidation {
    /// Throws the first problem found, as a `RequestValidationError`.
    public static func validate(_ r: GenerationDescription) throws {
        try validateText(r)
        try validateSettings(r)
        try validateImages(r)
        try validateWork(r)
    }

    // MARK: Text

    static func validateText(_ r: GenerationDescription) throws {
        if let model = r.model {
            guard model.utf8.count <= RequestLimits.modelNameBytes else {
                throw RequestValidationError(.tooLarge, .model,
                    "--model is \(model.utf8.count) bytes (\"\(RequestValidationError.echo(model))\"); model names may be at most \(RequestLimits.modelNameBytes) bytes")
            }
            guard !model.allSatisfy(\.isWhitespace) else {
                throw RequestValidationError(.model, "--model is empty: name a model a worker serves (see `atelier workers`)")
            }
        }
        guard !r.prompts.isEmpty else {
            throw RequestValidationError(.prompt, "no prompt given: give at least one --prompt")
        }
        var total = 0
        for (i, prompt) in r.prompts.enumerated() {
            let which = r.prompts.count > 1 ? " #\(i + 1)" : ""
            guard prompt.utf8.count <= RequestLimits.promptBytes else {
                throw RequestValidationError(.tooLarge, .prompt,
                    "--prompt\(which) is \(prompt.utf8.count) bytes; prompts may be at most \(RequestLimits.promptBytes) bytes (CLIP reads only the first 77 tokens)")
            }
            if r.mode != .upscale, prompt.allSatisfy(\.isWhitespace) {
                throw RequestValidationError(.prompt, "--prompt\(which) is empty: every prompt must have text")
            }
            total += prompt.utf8.count
        }
        guard total <= RequestLimits.totalPromptBytes else {
            throw RequestValidationError(.tooLarge, .prompt,
                "the prompts are \(total) bytes together; at most \(RequestLimits.totalPromptBytes) bytes per job: split it into smaller jobs")
        }
        guard r.negativePrompt.utf8.count <= RequestLimits.promptBytes else {
            throw RequestValidationError(.tooLarge, .negativePrompt,
                "\(RequestField.negativePrompt.label) is \(r.negativePrompt.utf8.count) bytes; it may be at most \(RequestLimits.promptBytes) bytes (CLIP reads only the first 77 tokens)")
        }
        if let s = r.scheduler, SchedulerName(rawValue: s)?.isSelectable != true {
            throw RequestValidationError(.scheduler,
                "--scheduler \"\(RequestValidationError.echo(s))\" is unknown; use one of \(SchedulerName.selectableList), or leave it out for the model's own")
        }
    }

    // MARK: Numbers

    /// Only the numeric settings and their combinations (steps, guidance, rescale, strength,
    /// noise level, width/height, count): what the engine checks once a request is resolved.
    public static func validateSettings(_ r: GenerationDescription) throws {
        if let s = r.steps, !RequestLimits.steps.contains(s) {
            throw RequestValidationError(.steps, "--steps must be in \(range(RequestLimits.steps)), got \(s)")
        }
        if let g = r.guidance, !(g.isFinite && RequestLimits.guidance.contains(g)) {
            throw RequestValidationError(.guidance, "--guidance must be in \(range(RequestLimits.guidance)) (≤ 1 turns guidance off), got \(g)")
        }
        if let g = r.guidanceRescale, !(g.isFinite && RequestLimits.guidanceRescale.contains(g)) {
            throw RequestValidationError(.guidanceRescale, "\(RequestField.guidanceRescale.label) must be in \(range(RequestLimits.guidanceRescale)), got \(g)")
        }
        if let s = r.strength {
            guard s.isFinite, s > 0, s <= RequestLimits.strengthMaximum else {
                throw RequestValidationError(.strength, "--strength must be in (0, 1] (the share of the init image to repaint), got \(s)")
            }
            if r.mode != .txt2img && r.mode != .upscale {
                let steps = r.steps ?? RequestDefaults.steps(for: r.mode)
                guard Int(Double(steps) * s) >= 1 else {
                    throw RequestValidationError(.strength,
                        "--strength \(s) with \(steps) steps leaves no denoising step (int(steps × strength) must be ≥ 1); raise --strength or --steps")
                }
            }
        }
        if let n = r.noiseLevel, !RequestLimits.noiseLevel.contains(n) {
            throw RequestValidationError(.noiseLevel, "--noise-level must be in \(range(RequestLimits.noiseLevel)) (the x4 upscaler's max_noise_level), got \(n)")
        }
        for (field, value) in [(RequestField.width, r.width), (.height, r.height)] {
            guard let value else { continue }
            guard RequestLimits.imageSide.contains(value), value % RequestLimits.imageSideMultiple == 0 else {
                throw RequestValidationError(field,
                    "--\(field.rawValue) must be a multiple of \(RequestLimits.imageSideMultiple) in \(range(RequestLimits.imageSide)), got \(value)")
            }
        }
        guard RequestLimits.imagesPerPrompt.contains(r.count) else {
            throw RequestValidationError(.count, "--count (images per prompt) must be in \(range(RequestLimits.imagesPerPrompt)), got \(r.count)")
        }
    }

    // MARK: Images

    static func validateImages(_ r: GenerationDescription) throws {
        switch r.mode {
        case .txt2img:
            if r.initImage != nil || r.mask != nil || r.depthMap != nil {
                throw RequestValidationError(.initImage, "a text-to-image request has no input images; drop --mask/--depth-map or add --init-image")
            }
        case .img2img, .inpaint, .depth2img:
            guard let initSize = r.initImage else {
                let needing = r.mode == .inpaint ? "--mask" : r.mode == .depth2img ? "--depth-map" : "--strength"
                throw RequestValidationError(.initImage, "\(needing) needs \(RequestField.initImage.label): give the image to start from")
            }
            try checkInput(initSize, .initImage)
            if r.mode == .inpaint {
                guard r.depthMap == nil else {
                    throw RequestValidationError(.depthMap, "--mask makes it inpainting and --depth-map depth-to-image; give one of them, not both")
                }
                guard let mask = r.mask else {
                    throw RequestValidationError(.mask, "inpainting needs --mask (mask_png): white = repaint")
                }
                guard mask == initSize else {
                    throw RequestValidationError(.mask,
                        "--mask is \(mask) but --init-image is \(initSize); they must be the same size")
                }
            } else if r.mask != nil {
                throw RequestValidationError(.mask, "--mask makes it inpainting; use the inpaint mode (init image and mask)")
            }
            if let depth = r.depthMap { try checkInput(depth, .depthMap, minimumSide: 1) }
            // diffusers' depth2img has no width/height: it works at the image's size, and a resized
            // latent would no longer match the depth condition.
            if r.mode == .depth2img, r.width != nil || r.height != nil {
                throw RequestValidationError(.width, "depth-to-image works at the init image's size; drop --width/--height (resize the image instead)")
            }
        case .upscale:
            guard let image = r.initImage else {
                throw RequestValidationError(.image, "--image (image_png) is required: the PNG to upscale")
            }
            let cap = r.tile == nil ? RequestLimits.upscaleOnePassSide : RequestLimits.upscaleTiledSide
            guard max(image.width, image.height) <= cap else {
                let hint = r.tile == nil
                    ? "add --tile 128 to upscale it in tiles (up to \(RequestLimits.upscaleTiledSide) px), or downscale it"
                    : "downscale it first"
                throw RequestValidationError(.tooLarge, .image,
                    "--image (image_png) is \(image); the x4 upscaler takes at most \(cap) px a side \(r.tile == nil ? "in one pass" : "tiled"): \(hint)")
            }
            guard min(image.width, image.height) >= RequestLimits.upscaleMinimumSide else {
                throw RequestValidationError(.image, "--image (image_png) is \(image); the x4 upscaler needs at least \(RequestLimits.upscaleMinimumSide) px a side")
            }
            if r.mask != nil || r.depthMap != nil {
                throw RequestValidationError(.mask, "an upscale takes one input image, no mask or depth map")
            }
            if let tile = r.tile {
                guard RequestLimits.tileSide.contains(tile), tile % RequestLimits.tileSideMultiple == 0 else {
                    throw RequestValidationError(.tile,
                        "--tile must be a multiple of \(RequestLimits.tileSideMultiple) in \(range(RequestLimits.tileSide)) low-res pixels, got \(tile)")
                }
                let overlap = r.overlap ?? 0
                guard overlap >= 0, overlap % RequestLimits.overlapMultiple == 0, overlap * 2 < tile else {
                    throw RequestValidationError(.overlap,
                        "--overlap must be a multiple of \(RequestLimits.overlapMultiple) and less than half the tile (\(tile / 2)), got \(overlap)")
                }
            }
        }
    }

    static func checkInput(_ size: ImageSize, _ field: RequestField, minimumSide: Int = RequestLimits.inputImageMinimumSide) throws {
        guard max(size.width, size.height) <= RequestLimits.inputImageSide,
              size.width * size.height <= RequestLimits.inputImagePixels else {
            throw RequestValidationError(.tooLarge, field,
                "\(field.label) is \(size); input images may be at most \(RequestLimits.inputImageSide) px a side: downscale it first")
        }
        guard min(size.width, size.height) >= minimumSide else {
            throw RequestValidationError(field, "\(field.label) is \(size); it must be at least \(minimumSide) px a side")
        }
    }

    // MARK: Work

    static func validateWork(_ r: GenerationDescription) throws {
        if r.mode == .upscale {
            guard let image = r.initImage, let tile = r.tile else { return }
            // The coordinator's grid is cut from the image with sides floored to multiples of 4.
            let tiles = UpscaleTiling.tileCount(width: image.width / 4 * 4, height: image.height / 4 * 4,
                                                tile: tile, overlap: r.overlap ?? 0)
            guard tiles <= RequestLimits.tilesPerUpscale else {
                throw RequestValidationError(.tooLarge, .tile,
                    "--tile \(tile) with --overlap \(r.overlap ?? 0) cuts the \(image) image into \(tiles) tiles; at most \(RequestLimits.tilesPerUpscale) per upscale: use a larger --tile")
            }
            return
        }
        let (tasks, overflow) = r.prompts.count.multipliedReportingOverflow(by: r.count)
        guard !overflow, tasks <= RequestLimits.tasksPerJob else {
            throw RequestValidationError(.tooLarge, .tasks,
                "\(r.prompts.count) prompts × --count \(r.count) is more than \(RequestLimits.tasksPerJob) images in one job; split it into smaller jobs")
        }
    }

    static func range<T>(_ r: ClosedRange<T>) -> String { "\(r.lowerBound)…\(r.upperBound)" }
}

/// How many tiles `TileGrid` (AtelierDiffusion) cuts an image into, computed without building
/// the grid, so a request can be refused before anything proportional to it is allocated. A
/// test keeps it equal to `TileGrid(...).tiles.count`.
public enum UpscaleTiling {
    public static func tileCount(width: Int, height: Int, tile: Int, overlap: Int) -> Int {
        let (c, r) = (spanCount(length: width, tile: tile, overlap: overlap),
                      spanCount(length: height, tile: tile, overlap: overlap))
        let (n, overflow) = c.multipliedReportingOverflow(by: r)
        return overflow ? Int.max : n
    }

    /// Spans along one axis, by `TileGrid.spans`'s rule: starts at 0, T−O, 2(T−O), …, the last
    /// aligned to the far edge (rounded down to a multiple of 4) unless that adds nothing.
    public static func spanCount(length: Int, tile: Int, overlap: Int) -> Int {
        guard length > tile, tile > 0 else { return 1 }
        let stride = tile - overlap
        guard stride > 0 else { return Int.max }
        var count = 1
        var last = 0
        while last + tile < length {
            let next = last + stride
            if next + tile >= length {
                if (length - tile) / 4 * 4 > last { count += 1 }
                break
            }
            count += 1
            last = next
        }
        return count
    }
}

extension GenerationValidation {
    /// One tile of a farm upscale as a worker receives it: the job's text and settings, the
    /// whole image within the tiled cap, the rectangle inside it and no larger than a tile can be
    /// (the grid's last span may run up to 3 px past the tile side), and the tile's pixels the
    /// size of its rectangle.
    public static func validateUpscaleTile(_ r: GenerationDescription, image: ImageSize, x: Int, y: Int,
                                           width: Int, height: Int, pixels: ImageSize) throws {
        try validateText(r)
        try validateSettings(r)
        guard max(image.width, image.height) <= RequestLimits.upscaleTiledSide,
              min(image.width, image.height) >= RequestLimits.upscaleMinimumSide else {
            throw RequestValidationError(.tooLarge, .image,
                "the upscale image is \(image); tiled upscales take \(RequestLimits.upscaleMinimumSide)…\(RequestLimits.upscaleTiledSide) px a side")
        }
        let maxSide = RequestLimits.tileSide.upperBound + 3
        guard width > 0, height > 0, width <= maxSide, height <= maxSide,
              x >= 0, y >= 0, x + width <= image.width, y + height <= image.height else {
            throw RequestValidationError(.tile,
                "the tile \(width)×\(height) at (\(x), \(y)) does not fit the \(image) image or is over \(maxSide) px a side")
        }
        guard pixels == ImageSize(width: width, height: height) else {
            throw RequestValidationError(.tile, "the tile's PNG is \(pixels) but its rectangle is \(width)×\(height)")
        }
    }
}
