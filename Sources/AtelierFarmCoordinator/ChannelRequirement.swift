import AtelierFarmProtocol

/// Which UNets can run a task, by their input channel count (`ModelInfo.unet_in_channels`):
/// 4 for txt2img/img2img, 5 for depth2img, 7 for the x4 upscaler, 9 for inpainting.
///
/// Kept as a bit mask (bit n set: a UNet with n input channels fits) so leasing can match it
/// in SQL. A worker that reports 0 channels for a model is trusted with any mode of it (lenient:
/// older workers may not know the number).
///
/// Inference from a task's inputs: an upscale tile needs 7; a mask means inpainting (9); a depth
/// map means depth2img (5); an init image alone is img2img on a 4-channel model or depth2img on a
/// 5-channel one (the depth pipeline can estimate the depth itself); nothing is txt2img (4).
enum ChannelRequirement {
    static let upscale: Int64 = 1 << 7

    static func forImage(_ params: Atelier_V1_GenerationParams) -> Int64 {
        if !params.maskPng.isEmpty { return 1 << 9 }
        if !params.depthMapPng.isEmpty { return 1 << 5 }
        if !params.initImagePng.isEmpty { return (1 << 4) | (1 << 5) }
        return 1 << 4
    }

    static func modeName(_ mask: Int64) -> String {
        switch mask {
        case upscale: return "x4 upscale"
        case 1 << 9: return "inpainting"
        case 1 << 5: return "depth2img"
        case (1 << 4) | (1 << 5): return "img2img"
        default: return "txt2img"
        }
    }

    /// "4", "4 or 5".
    static func describe(_ mask: Int64) -> String {
        (0..<63).filter { mask >> Int64($0) & 1 == 1 }.map(String.init).joined(separator: " or ")
    }

    /// Why no registered UNet of `model` (with `channels` input channels) can run a job needing
    /// `mask`: the one line a submission is refused with, and a job accepted before any worker
    /// served its model fails with once workers serving it have registered (scale from zero).
    static func mismatch(model: String, channels: [Int64], accepted mask: Int64) -> String {
        "model \"\(model)\" is registered with unet_in_channels \(channels.map(String.init).joined(separator: ", ")), but "
        + "\(modeName(mask)) needs a UNet with \(describe(mask)) input channels; choose a matching model"
    }

    static func fits(_ mask: Int64, unetInChannels channels: Int64) -> Bool {
        channels == 0 || (channels > 0 && channels < 63 && (mask >> channels) & 1 == 1)
    }

    /// The SQL form of `fits`, for a worker_models alias `m` and a mask expression.
    static func sqlFits(mask: String) -> String {
        "(m.unet_in_channels = 0 OR (m.unet_in_channels BETWEEN 1 AND 62 AND ((\(mask) >> m.unet_in_channels) & 1) = 1))"
    }
}
