import Foundation

/// Whether the VAE runs whole-map or in row bands (`VAERowBandExecutor`).
///
/// Why a choice at all: the untiled pass holds several full-resolution temporaries at once
/// (the normalised map, its SiLU, the ×2-upsampled map, the conv output), which at 512 px and
/// 128–256 channels is about a gigabyte and grows with the image; the row-band pass keeps only
/// the feature maps themselves and band-sized temporaries. Both give the same pixels (the
/// GroupNorm statistics are always those of the whole map), so `.automatic` simply takes the
/// band pass when the map is large enough for it to matter; `.on`/`.off` force one path (tests,
/// memory measurements).
public enum VAETiling: String, Sendable, CaseIterable {
    case automatic = "auto"
    case on
    case off

    /// `ATELIER_VAE_TILING=on|off|auto` overrides `.automatic` for a whole process, so a memory
    /// or speed measurement of the real binary can pin either path without a code change.
    public static let environmentOverride: VAETiling? = {
        guard let s = ProcessInfo.processInfo.environment["ATELIER_VAE_TILING"]?.lowercased() else { return nil }
        return VAETiling(rawValue: s)
    }()

    /// Pixel count (of the decoded image, or of the image being encoded) from which `.automatic`
    /// takes the row-band path: 256×256. Below it the untiled temporaries are small (< 250 MB
    /// for SD2's VAE) and the whole-map path has fewer copies; above it they grow with the image
    /// while the band path's do not (measured peaks: README, "Memory").
    public static let automaticPixelThreshold = 256 * 256

    /// Whether a pass over an image of `pixels` pixels (batch included) runs in row bands.
    public func usesBands(pixels: Int) -> Bool {
        var mode = self
        if mode == .automatic, let forced = VAETiling.environmentOverride { mode = forced }
        switch mode {
        case .on: return true
        case .off: return false
        case .automatic: return pixels >= VAETiling.automaticPixelThreshold
        }
    }
}
