import Foundation

/// A tiled x4 upscale, computed exactly as the farm computes it: through one `TilePlan` (the low-res
/// image prepared once, cut into the plan's tiles, each tile denoised with its window of the
/// whole-image noise fields, the results blended by the plan's stitcher). The coordinator plans
/// and stitches farm upscales with the same `TilePlan`, so both give the same pixels.
public struct TiledUpscaleResult: Sendable {
    public let result: GenerationResult
    public let tiles: Int
    /// Gradient energy on tile borders / elsewhere (≈ 1: seamless).
    public let seamRatio: Double
}

extension VaeImagePreprocessor {
    /// diffusers' upscaler preprocessing of the low-res input, as pixels: `TilePlan.prepare`, the
    /// one the coordinator tiles with, so farm and local tiles are cut from the same pixels.
    public static func upscalerInput(_ image: RGBImage, factor: Int = 4) throws -> RGBImage {
        try TilePlan.prepare(image, factor: factor)
    }
}

extension StableDiffusionPipeline {
    /// Upscales one tile of an image already prepared with `VaeImagePreprocessor.upscalerInput`.
    public func upscaleTile(_ r: GenerationRequest, prepared: RGBImage, rect: TileRect,
                            progress: ((Int, Int) -> Bool)? = nil) throws -> GenerationResult {
        let pixels = try rect.crop(from: prepared.pixels, imageWidth: prepared.width, imageHeight: prepared.height, channels: 3)
        return try upscaleTile(r, pixels: try RGBImage(width: rect.width, height: rect.height, pixels: pixels),
                               rect: rect, imageWidth: prepared.width, imageHeight: prepared.height, progress: progress)
    }

    /// Upscales one tile whose low-res pixels were already cut (by `TilePlan.crop`).
    func upscaleTile(_ r: GenerationRequest, pixels: RGBImage, rect: TileRect, imageWidth: Int, imageHeight: Int,
                     progress: ((Int, Int) -> Bool)?) throws -> GenerationResult {
        let tile = UpscaleTile(pixels: pixels,
                               rect: .init(x: rect.x, y: rect.y, width: rect.width, height: rect.height),
                               imageWidth: imageWidth, imageHeight: imageHeight)
        var request = r
        request.initImage = tile.pixels
        return try upscale(request, tile: tile, progress: progress)
    }

    public func upscaleTiled(_ r: GenerationRequest, tile: Int, overlap: Int,
                             progress: ((_ tile: Int, _ tiles: Int, _ step: Int, _ steps: Int) -> Bool)? = nil) throws -> TiledUpscaleResult {
        guard let input = r.initImage else { throw PipelineError.missingInput("an input image is required") }
        let prepared = try TilePlan.prepare(input, factor: vaeScaleFactor)
        let plan = try TilePlan(prepared: prepared, tile: tile, overlap: overlap, scale: vaeScaleFactor)
        var stitcher = try plan.stitcher()
        var last: GenerationResult?
        for rect in plan.tiles {
            let out = try upscaleTile(r, pixels: try plan.crop(rect, from: prepared), rect: rect,
                                      imageWidth: prepared.width, imageHeight: prepared.height) { step, steps in
                progress?(rect.index, plan.tiles.count, step, steps) ?? true
            }
            try stitcher.add(tileIndex: rect.index, pixels: out.image.pixels)
            // Tiles come top to bottom and are never replaced: blend the rows they finish and
            // drop the tiles above them, so memory does not grow with the number of tiles.
            stitcher.blendFinishedRows()
            last = out
        }
        let image = try RGBImage(width: stitcher.outputWidth, height: stitcher.outputHeight, pixels: try stitcher.image())
        guard let parameters = last?.parameters else { throw PipelineError.missingInput("the image produced no tiles") }
        var p = parameters
        p.width = image.width
        p.height = image.height
        return TiledUpscaleResult(result: GenerationResult(image: image, parameters: p), tiles: plan.tiles.count,
                                  seamRatio: try stitcher.seamRatio())
    }
}
