/// Every limit a generation request is checked against, at every door: `atelier render`,
/// `upscale`, `submit`, `submit-upscale`, the coordinator's `submit_job` and the worker before it
/// renders. Protocols/README.md §5 ("Request limits") lists them for client authors; keep the two
/// in step.
public enum RequestLimits {
    // MARK: Numbers

    /// Denoising steps. The SD2 schedulers have 1000 training timesteps; more inference steps than
    /// that repeat timesteps, so diffusers itself refuses them.
    public static let steps: ClosedRange<Int> = 1...1000
    /// Classifier-free guidance scale. ≤ 1 turns guidance off; beyond ~30 images saturate, 100
    /// leaves room for experiments while refusing typos such as 750.
    public static let guidance: ClosedRange<Double> = 0...100
    /// Guidance rescale φ (diffusers' `guidance_rescale`): a blend factor.
    public static let guidanceRescale: ClosedRange<Double> = 0...1
    /// img2img / inpaint / depth2img strength is in (0, 1]: 0 would skip every denoising step
    /// (the pipeline refuses it), and `int(steps × strength)` must be at least 1.
    public static let strengthMaximum = 1.0
    /// The x4 upscaler's `max_noise_level` (its class-embedding table has 351 rows).
    public static let noiseLevel: ClosedRange<Int> = 0...350

    // MARK: Sizes

    /// Output width/height: multiples of the VAE factor 8; below 64 px the UNet's three
    /// down-samplings leave nothing, above 4096 one image needs tens of GiB.
    public static let imageSide: ClosedRange<Int> = 64...4096
    public static let imageSideMultiple = 8
    /// Init image, mask and depth map: at most this many pixels a side and this many in all,
    /// checked on the PNG's declared size before anything is decoded.
    public static let inputImageSide = 4096
    public static let inputImagePixels = 4096 * 4096
    /// Smallest init image side: the VAE needs one latent pixel (its sides are floored to 8).
    public static let inputImageMinimumSide = 8
    /// Bytes of any one input PNG in a farm request.
    public static let inputImageBytes = 32 << 20

    /// x4 upscale input, one pass (`atelier upscale` without `--tile`): 256 px → 1024² output.
    /// Memory grows with the pixels (measured with the committed tiny x4 model, debug build,
    /// 1 step: 64² 82 MB, 128² 134 MB, 256² 332 MB max RSS, i.e. ≈ 4 KB per input pixel; the
    /// real upscaler's VAE/UNet are 16× wider, ≈ 65 KB per input pixel: ≈ 4 GiB at 256², ≈ 17 GiB
    /// at 512², and a 4096² input aborted). Beyond it, use `--tile`.
    public static let upscaleOnePassSide = 256
    /// x4 upscale input when tiled (`--tile`, and always on the farm): 1024 px → 4096² output.
    /// Each tile is one pass (≤ 256 px); only the noise fields (7 floats per input pixel, 28 MB)
    /// and the stitched output (48 MB RGB + its blend sums) are whole-image sized.
    public static let upscaleTiledSide = 1024
    /// Smallest upscale input side: the upscaler floors sides to multiples of 4.
    public static let upscaleMinimumSide = 4
    /// Tile side in low-res pixels: multiples of 8, at least 32 (smaller tiles are mostly
    /// overlap), at most the one-pass side (a tile is one pass).
    public static let tileSide: ClosedRange<Int> = 32...upscaleOnePassSide
    public static let tileSideMultiple = 8
    /// Overlap: a multiple of 4 (the grid keeps origins on multiples of 4), below half the tile.
    public static let overlapMultiple = 4
    /// Tiles one upscale may create: each tile is a stored task with its own PNG, so this bounds
    /// the work (and database rows) one request can cause. 1024² at tile 48 overlap 8 is 676.
    public static let tilesPerUpscale = 1024

    // MARK: Text

    /// Prompt and negative prompt, in UTF-8 bytes. CLIP reads only 77 tokens (≈ 300 characters);
    /// 16 KiB refuses nothing a person types and keeps a request from carrying megabytes of text.
    public static let promptBytes = 16_384
    /// All prompts of one batch together.
    public static let totalPromptBytes = 1 << 20
    /// A model name (as workers register it).
    public static let modelNameBytes = 256

    // MARK: Work

    /// Images per prompt (`--count`, `batch.count`).
    public static let imagesPerPrompt: ClosedRange<Int> = 1...1000
    /// Tasks one job may create (prompts × count, or tiles); the coordinator's queue cap may be
    /// lower.
    public static let tasksPerJob = 10_000

    // MARK: Messages

    /// User values echoed in error messages are cut to this many characters (with "…"), so a
    /// megabyte model name does not come back as a megabyte error.
    public static let echoedCharacters = 80
}

/// Defaults per mode, as diffusers' pipelines have them (SD2-SPEC §4); used to resolve a request
/// before the checks that combine values (steps × strength).
public enum RequestDefaults {
    public static func steps(for mode: RequestMode) -> Int { mode == .upscale ? 75 : 50 }
    public static func strength(for mode: RequestMode) -> Double {
        switch mode {
        case .img2img, .depth2img: return 0.8
        case .txt2img, .inpaint, .upscale: return 1
        }
    }
    public static let noiseLevel = 20
}
