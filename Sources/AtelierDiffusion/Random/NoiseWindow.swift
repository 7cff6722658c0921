import AtelierKernels

/// Where one tile of a tiled render lies in the whole image's latent grid, so that every `randn`
/// drawn for the tile is the crop of the `randn` the whole image would draw.
///
/// A tiled x4 upscale (local `upscale --tile` and the farm's tiles) must give each tile the noise
/// of its window of the *whole* image, or overlapping tiles disagree in the overlap and the
/// stitcher has to blend two different pictures. The initial noise fields are drawn full size and
/// cropped; stochastic samplers (Euler-ancestral, DDPM, DDIM with η > 0) draw once more per step,
/// and with a window they draw that per-step field full size too, from the same generator, and
/// crop it. An untiled render passes no window and draws exactly what it always drew (diffusers'
/// order and shapes), so its pixels are unchanged.
public struct NoiseWindow: Sendable, Equatable {
    /// The whole image's latent width and height.
    public let imageWidth: Int
    public let imageHeight: Int
    /// The tile's window in latent pixels.
    public let x: Int
    public let y: Int
    public let width: Int
    public let height: Int

    /// Fails when the window is empty or does not lie inside the image.
    public init(imageWidth: Int, imageHeight: Int, x: Int, y: Int, width: Int, height: Int) throws {
        guard imageWidth > 0, imageHeight > 0, width > 0, height > 0, x >= 0, y >= 0,
              x <= imageWidth - width, y <= imageHeight - height else {
            throw PipelineError.invalidOption("tile window \(width)×\(height) at (\(x), \(y)) does not lie inside the \(imageWidth)×\(imageHeight) image")
        }
        self.imageWidth = imageWidth; self.imageHeight = imageHeight
        self.x = x; self.y = y; self.width = width; self.height = height
    }
}

extension TorchRandomSource {
    /// `randn(shape)` for a sample of `shape` = [N, C, h, w]: with no window, exactly
    /// `normal(shape:)`; with one, the [N, C, H, W] field of the whole image, cropped to the window
    /// (so the generator advances as it would for the whole image).
    public mutating func normal(shape: [Int], window: NoiseWindow?) -> Tensor {
        guard let window else { return normal(shape: shape) }
        precondition(shape.count == 4 && shape[2] == window.height && shape[3] == window.width,
                     "a sample of shape \(shape) does not fit the \(window.width)×\(window.height) noise window")
        let whole = normal(shape: [shape[0], shape[1], window.imageHeight, window.imageWidth])
        return Elementwise.crop(whole, x: window.x, y: window.y, width: window.width, height: window.height)
    }
}
