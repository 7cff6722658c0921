import Foundation

/// A tiled x4 upscale, computed exactly as the farm computes it: the low-res image is prepared
/// once, cut by `TileGrid`, each tile denoised with its window of the whole-image noise fields,
/// and the results blended by `TileStitcher`. The farm runs the same tiles on several workers and
/// the coordinator stitches them with the same stitcher, so both give the same pixels.
public struct TiledUpscaleResult: Sendable {
    public let result: GenerationResult
    public let tiles: Int
    /// Gradient energy on tile borders / elsewhere (≈ 1: seamless).
    public let seamRatio: Double
}

extension VaeImagePreprocessor {
    /// diffusers' upscaler preprocessing of the low-res input, as pixels: sides floored to a
    /// multiple of the VAE factor (4) with PIL-bicubic resampling (a copy when already aligned).
    /// The coordinator tiles this image, so farm and local tiles are cut from the same pixels.
    public static func upscalerInput(_ image: RGBImage, factor: Int = 4) throws -> RGBImage {
        let size = try targetSize(imageWidth: image.width, imageHeight: image.height, scaleFactor: factor)
        return try image.resized(width: size.width, height: size.height, filter: .bicubic)
    }
}

extension StableDiffusionPipeline {
    /// Upscales one tile of an image already prepared with `VaeImagePreprocessor.upscalerInput`.
    public func upscaleTile(_ r: GenerationRequest, prepared: RGBImage, rect: TileRect,
                            progress: ((Int, Int) -> Bool)? = nil) throws -> GenerationResult {
        let pixels = try rect.crop(from: prepared.pixels, imageWidth: prepared.width, imageHeight: prepared.height, channels: 3)
        let tile = UpscaleTile(pixels: try RGBImage(width: rect.width, height: rect.height, pixels: pixels),
                               rect: .init(x: rect.x, y: rect.y, width: rect.width, height: rect.height),
                               imageWidth: prepared.width, imageHeight: prepared.height)
        var request = r
        request.initImage = tile.pixels
        return try upscale(request, tile: tile, progress: progress)
    }

    public func upscaleTiled(_ r: GenerationRequest, tile: Int, overlap: Int,
                             progress: ((_ tile: Int, _ tiles: Int, _ step: Int, _ steps: Int) -> Bool)? = nil) throws -> TiledUpscaleResult {
        guard let input = r.initImage else { throw PipelineError.missingInput("an input image is required") }
        let prepared = try VaeImagePreprocessor.upscalerInput(input, factor: vaeScaleFactor)
        let grid = try TileGrid(width: prepared.width, height: prepared.height, tile: tile, overlap: overlap)
        var stitcher = try TileStitcher(grid: grid, channels: 3, scale: vaeScaleFactor)
        var last: GenerationResult?
        for rect in grid.tiles {
            let out = try upscaleTile(r, prepared: prepared, rect: rect) { step, steps in
                progress?(rect.index, grid.tiles.count, step, steps) ?? true
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
        return TiledUpscaleResult(result: GenerationResult(image: image, parameters: p), tiles: grid.tiles.count,
                                  seamRatio: try stitcher.seamRatio())
    }
}
