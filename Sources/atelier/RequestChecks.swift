import AtelierDiffusion
import AtelierRequests
import Foundation

/// What the local commands and the farm client commands do with their input before any work:
/// read the declared sizes of the given PNGs (headers only), describe the request and run the
/// shared `GenerationValidation` on it, so `render`, `upscale`, `submit` and `submit-upscale`
/// refuse exactly what the coordinator and the worker refuse, with the same message.
enum RequestChecks {
    /// The declared size of a PNG file, for validation before decoding.
    static func declaredSize(_ path: String?) throws -> ImageSize? {
        guard let path else { return nil }
        return try PNGHeader.declaredSize(path: path)
    }

    /// A generation request (render / submit) described for validation.
    static func describe(_ r: GenerationRequest, prompts: [String], count: Int, model: String?,
                         initImage: String?, mask: String?, depthMap: String?) throws -> GenerationDescription {
        var d = GenerationDescription(
            mode: .forInputs(initImage: initImage != nil, mask: mask != nil, depthMap: depthMap != nil),
            prompts: prompts)
        d.negativePrompt = r.negativePrompt
        d.model = model
        d.steps = r.steps
        d.guidance = r.guidance
        d.strength = r.strength
        d.guidanceRescale = r.guidanceRescale
        d.scheduler = r.scheduler
        d.width = r.width
        d.height = r.height
        d.count = count
        d.initImage = try declaredSize(initImage)
        d.mask = try declaredSize(mask)
        d.depthMap = try declaredSize(depthMap)
        return d
    }

    /// An x4 upscale (local or farm) described for validation; `tile` nil = one pass.
    static func describeUpscale(_ r: GenerationRequest, model: String?, image: String,
                                tile: Int?, overlap: Int?) throws -> GenerationDescription {
        var d = GenerationDescription(mode: .upscale, prompt: r.prompt)
        d.negativePrompt = r.negativePrompt
        d.model = model
        d.steps = r.steps
        d.guidance = r.guidance
        d.scheduler = r.scheduler
        d.noiseLevel = r.noiseLevel
        d.initImage = try declaredSize(image)
        d.tile = tile
        d.overlap = overlap
        return d
    }
}
