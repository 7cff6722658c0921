import AtelierImaging
import AtelierRequests
import Foundation

/// The farm's messages seen as `GenerationDescription`s, so the coordinator (at submit) and the
/// worker (before rendering a leased task) check them with the same `GenerationValidation` as
/// `atelier render` / `upscale`. Image sizes come from the PNG headers: nothing is decoded here.
public enum FarmRequestValidation {
    /// A batch as one description (all prompts, `count` images each).
    public static func description(of batch: Atelier_V1_BatchJob) throws -> GenerationDescription {
        var d = try description(of: batch.params, prompts: batch.prompts)
        d.count = Int(batch.count)
        return d
    }

    /// An upscale job; `tile`/`overlap` already resolved from their defaults.
    public static func description(of upscale: Atelier_V1_UpscaleJob, tile: Int, overlap: Int) throws -> GenerationDescription {
        var d = description(of: upscale.params)
        d.initImage = try declaredSize(upscale.imagePng, .image)
        d.tile = tile
        d.overlap = overlap
        return d
    }

    public static func description(of p: Atelier_V1_GenerationParams, prompts: [String]) throws -> GenerationDescription {
        var d = GenerationDescription(
            mode: .forInputs(initImage: !p.initImagePng.isEmpty, mask: !p.maskPng.isEmpty, depthMap: !p.depthMapPng.isEmpty),
            prompts: prompts)
        d.negativePrompt = p.negativePrompt
        d.model = p.model
        d.steps = p.steps == 0 ? nil : Int(p.steps)
        d.guidance = p.hasGuidance ? p.guidance : nil
        d.strength = p.hasStrength ? p.strength : nil
        d.guidanceRescale = p.guidanceRescale
        d.scheduler = p.scheduler.isEmpty ? nil : p.scheduler
        d.width = p.width == 0 ? nil : Int(p.width)
        d.height = p.height == 0 ? nil : Int(p.height)
        if !p.initImagePng.isEmpty { d.initImage = try declaredSize(p.initImagePng, .initImage) }
        if !p.maskPng.isEmpty { d.mask = try declaredSize(p.maskPng, .mask) }
        if !p.depthMapPng.isEmpty { d.depthMap = try declaredSize(p.depthMapPng, .depthMap) }
        return d
    }

    public static func description(of p: Atelier_V1_UpscaleParams) -> GenerationDescription {
        var d = GenerationDescription(mode: .upscale, prompt: p.prompt)
        d.negativePrompt = p.negativePrompt
        d.model = p.model
        d.steps = p.steps == 0 ? nil : Int(p.steps)
        d.guidance = p.hasGuidance ? p.guidance : nil
        d.noiseLevel = p.hasNoiseLevel ? Int(p.noiseLevel) : nil
        d.scheduler = p.scheduler.isEmpty ? nil : p.scheduler
        return d
    }

    /// A PNG's declared size; over `RequestLimits.inputImageBytes` is TOO_LARGE, a broken header
    /// INVALID_ARGUMENT naming the field.
    public static func declaredSize(_ png: Data, _ field: RequestField) throws -> ImageSize {
        guard png.count <= RequestLimits.inputImageBytes else {
            throw RequestValidationError(.tooLarge, field,
                "\(field.label) is \(png.count >> 20) MiB; images may be at most \(RequestLimits.inputImageBytes >> 20) MiB")
        }
        do { return try PNGHeader.declaredSize(png, source: field.protoField) } catch {
            throw RequestValidationError(field, "\(field.label): \(error)")
        }
    }

    /// What a worker checks before rendering a leased task (after the coordinator filled in the
    /// job's shared inputs): the same rules as at submit, so a task that slipped past an older
    /// coordinator fails fast with the rule's message instead of crashing a worker.
    public static func validate(_ task: Atelier_V1_TaskSpec) throws {
        switch task.kind {
        case .image(let t)?:
            try GenerationValidation.validate(description(of: t.params, prompts: [t.params.prompt]))
        case .upscaleTile(let t)?:
            let d = description(of: t.params)
            let image = ImageSize(width: Int(t.imageWidth), height: Int(t.imageHeight))
            let tile = try declaredSize(t.tilePng, .image)
            try GenerationValidation.validateUpscaleTile(
                d, image: image, x: Int(t.tile.x), y: Int(t.tile.y), width: Int(t.tile.width), height: Int(t.tile.height),
                pixels: tile)
        case nil:
            throw RequestValidationError(.image, "the task has no kind (a newer coordinator?)")
        }
    }
}
