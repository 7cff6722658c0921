import Foundation

/// The one description of a tiled x4 upscale, used by all three places that tile: the local
/// `atelier upscale --tile` (`StableDiffusionPipeline.upscaleTiled`), the coordinator's planner
/// (which cuts a submitted image into tasks) and the coordinator's stitcher (which blends the
/// finished tiles). Each of them prepares the input, lays out the grid, cuts tiles and stitches
/// them through this type only, so a farm upscale and a local one are the same computation by
/// construction, not by a test keeping three copies equal.
///
/// A plan is a `TileGrid` over the *prepared* low-res image (`prepare`: the upscaler's own
/// preprocessing) plus the upscale factor; `TileStitcher` does the blending.
public struct TilePlan: Equatable, Sendable {
    /// The SD x4 upscaler's factor (its VAE scale factor): output pixels per low-res pixel.
    public static let upscaleFactor = 4
    /// The farm's tile side when a submission leaves it 0, in low-res pixels.
    public static let defaultTile = 128
    /// The farm's overlap when a submission leaves it 0 (shrunk for small tiles, see below).
    public static let defaultOverlap = 32

    /// The overlap a farm upscale gets when it asks for none: 32, shrunk for small tiles so it
    /// stays a multiple of 4 below half the tile.
    public static func defaultOverlap(forTile tile: Int) -> Int {
        min(defaultOverlap, tile / 4 / 4 * 4)
    }

    /// The tiles, over the prepared low-res image.
    public let grid: TileGrid
    /// Output pixels per low-res pixel.
    public let scale: Int

    /// A plan for a prepared low-res image of `width`×`height`; throws `TilingError` when the tile
    /// size, overlap or scale are out of range.
    public init(width: Int, height: Int, tile: Int, overlap: Int, scale: Int = TilePlan.upscaleFactor) throws {
        guard (1...16).contains(scale) else {
            throw TilingError.invalidBuffer("scale must be 1…16, got \(scale)")
        }
        self.grid = try TileGrid(width: width, height: height, tile: tile, overlap: overlap)
        self.scale = scale
    }

    /// A plan for an image already passed through `prepare`.
    public init(prepared image: RGBImage, tile: Int, overlap: Int, scale: Int = TilePlan.upscaleFactor) throws {
        try self.init(width: image.width, height: image.height, tile: tile, overlap: overlap, scale: scale)
    }

    public var tiles: [TileRect] { grid.tiles }
    public var outputWidth: Int { grid.width * scale }
    public var outputHeight: Int { grid.height * scale }

    /// The upscaler's preprocessing of the low-res input, as pixels (diffusers' `VaeImageProcessor`
    /// with the x4 upscaler's settings): both sides floored to a multiple of `factor` with
    /// PIL-bicubic resampling, a copy when already aligned. Every tile of a plan is cut from
    /// this image, so farm and local tiles are cut from the same pixels.
    public static func prepare(_ image: RGBImage, factor: Int = TilePlan.upscaleFactor) throws -> RGBImage {
        guard factor > 0 else { throw ImageError.invalidArgument("VAE scale factor must be positive") }
        let w = image.width, h = image.height
        let width = w - w % factor, height = h - h % factor
        guard width > 0, height > 0 else {
            throw ImageError.invalidArgument(
                "an image of \(w)x\(h) is smaller than one \(factor)x\(factor) latent cell; use at least \(factor)x\(factor)")
        }
        return try image.resized(width: width, height: height, filter: .bicubic)
    }

    /// Tile `rect`'s low-res pixels, cut out of the prepared image the plan was made for.
    public func crop(_ rect: TileRect, from prepared: RGBImage) throws -> RGBImage {
        guard prepared.width == grid.width, prepared.height == grid.height else {
            throw TilingError.invalidBuffer(
                "the image is \(prepared.width)x\(prepared.height), the plan was made for \(grid.width)x\(grid.height)")
        }
        let pixels = try rect.crop(from: prepared.pixels, imageWidth: prepared.width, imageHeight: prepared.height, channels: 3)
        return try RGBImage(width: rect.width, height: rect.height, pixels: pixels)
    }

    /// An empty stitcher for this plan's upscaled RGB tiles.
    public func stitcher() throws -> TileStitcher {
        try TileStitcher(grid: grid, channels: 3, scale: scale)
    }

    /// The `Comment` text of a stitched image: sizes, tiling and the seam ratio.
    public func summary(seamRatio: Double) -> String {
        String(format: "atelier x%d tiled upscale: %dx%d from %dx%d, %d tiles of %d px with %d px overlap, seam ratio %.3f",
               scale, outputWidth, outputHeight, grid.width, grid.height, grid.tiles.count, grid.tile, grid.overlap,
               seamRatio)
    }
}
