import ArgumentParser
import Foundation
import AtelierKernels
import AtelierModels

/// Which network `atelier bench` times. The benchmark of record (Tests/Reference/bench_of_record.py)
/// times the same work on PyTorch, so each component here is one call that diffusers also makes
/// as one call: `unet(sample, t, encoder_hidden_states)` and `vae.decode(z)`.
enum BenchComponent: String, ExpressibleByArgument, CaseIterable, Codable {
    case unet
    case vaeDecode = "vae-decode"

    /// One image with classifier-free guidance is a UNet batch of 2 but a single VAE decode.
    var defaultBatch: Int { self == .unet ? 2 : 1 }

    /// The diffusers sub-folder holding this component.
    var subfolder: String { self == .unet ? "unet" : "vae" }

    /// Loads the component from a diffusers folder (with unet/ or vae/), the component folder
    /// itself, or a single-file .safetensors, and prepares a deterministic input of the given size.
    func workload(model url: URL, latent: Int, batch: Int, precision: OwnGEMM.Precision = .fp32) throws -> BenchWorkload {
        var gen = SplitMix64(seed: 1)
        switch self {
        case .unet:
            let (unet, weightBytes) = try load(url,
                fromCheckpoint: { try UNet2DConditionModel(config: $0.unetConfig, weights: $0.unetWeights, precision: precision) },
                fromFolder: { try StableDiffusionModel.loadUNet($0, precision: precision) })
            let cross = try unet.config.resolved().crossDim[0]
            let sample = gen.normal([batch, unet.config.inChannels, latent, latent])
            let context = gen.normal([batch, 77, cross])
            let labels = unet.config.numClassEmbeds != nil ? Array(repeating: 20, count: batch) : nil
            return BenchWorkload(parameters: unet.parameterCount, weightBytes: weightBytes, inputShape: sample.shape) {
                try unet(sample, timesteps: [500], context: context, classLabels: labels)
            }
        case .vaeDecode:
            let (vae, weightBytes) = try load(url,
                fromCheckpoint: { try AutoencoderKL(config: $0.vaeConfig, weights: $0.vaeWeights) },
                fromFolder: { try StableDiffusionModel.loadVAE($0) })
            let z = gen.normal([batch, vae.config.latentChannels, latent, latent])
            return BenchWorkload(parameters: vae.parameterCount, weightBytes: weightBytes, inputShape: z.shape) {
                vae.decode(z)
            }
        }
    }

    /// Loads this component from a single-file checkpoint or a (whole or component) diffusers
    /// folder, with the bytes of the weight files it is read from (for the memory ratio).
    func load<Network>(_ url: URL, fromCheckpoint: (SingleFileCheckpoint) throws -> Network,
                       fromFolder: (URL) throws -> Network) throws -> (Network, Int) {
        if url.pathExtension == "safetensors" {
            let ckpt = try SingleFileCheckpoint(url: url)
            return (try fromCheckpoint(ckpt), ckpt.file.fileSize)
        }
        let folder = Self.componentFolder(url, subfolder)
        return (try fromFolder(folder), try Self.weightBytes(folder))
    }

    /// `url/sub` when `url` is a whole diffusers folder, else `url` (already the component folder).
    static func componentFolder(_ url: URL, _ sub: String) -> URL {
        let nested = url.appendingPathComponent(sub)
        return FileManager.default.fileExists(atPath: nested.appendingPathComponent("config.json").path) ? nested : url
    }

    /// Bytes of the weight files the component is read from (for the memory ratio).
    static func weightBytes(_ folder: URL) throws -> Int {
        try DiffusersComponent.weightFiles(in: folder).reduce(0) {
            $0 + ((try? FileManager.default.attributesOfItem(atPath: $1.path)[.size] as? Int) ?? 0)
        }
    }
}

/// A loaded network and its input, ready to be run repeatedly.
struct BenchWorkload {
    let parameters: Int
    let weightBytes: Int
    let inputShape: [Int]
    let run: () throws -> Tensor
}
