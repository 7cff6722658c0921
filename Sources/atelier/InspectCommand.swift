import ArgumentParser
import Foundation
import AtelierKernels
import AtelierModels

/// `atelier inspect`: what a model file is, and proof that it runs.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Print a model's architecture and run one forward pass of each network.",
        discussion: """
            PATH is a diffusers folder (model_index.json, unet/, vae/, text_encoder/) or an original \
            single-file SD2 .safetensors checkpoint, whose architecture is inferred from its tensor shapes.

            Examples:
              atelier inspect --model ~/models/stable-diffusion-2-1-base
              atelier inspect --model sd21-768-v.safetensors --latent 12 --no-forward
            """)

    @Option(help: "Model: diffusers folder or single-file .safetensors (default: the embedded demo model, Models/demo/base).")
    var model: String?

    @Option(parsing: .unconditional, help: "Latent side for the test forward pass (image side = latent × VAE factor).")
    var latent: Int = 8

    @Flag(help: "Only print the architecture.")
    var noForward = false

    func run() throws {
        let url = try DefaultModel.resolve(model)
        var sd: StableDiffusionModel!
        let loadTime = try elapsed { sd = try StableDiffusionModel.load(url) }
        print("model      \(url.path)")
        print("format     \(sd.format == .safetensors ? "single-file safetensors (original SD layout, config inferred)" : "diffusers folder")")
        print(String(format: "loaded in  %.2f s, resident %@", loadTime, formatBytes(ProcessStats.currentRSS)))
        let t = sd.textEncoder.config
        print("text       CLIP \(t.numHiddenLayers) layers × \(t.hiddenSize) wide, \(t.numAttentionHeads) heads, vocab \(t.vocabSize), \(t.maxPositionEmbeddings) tokens — \(sd.textEncoder.parameterCount.formatted()) params")
        let u = sd.unet.config
        let r = try u.resolved()
        print("unet       in \(u.inChannels) → out \(u.outChannels), channels \(u.blockOutChannels), layers \(r.layers), heads \(r.heads), cross-attn \(r.crossDim[0])\(u.numClassEmbeds.map { ", class labels \($0)" } ?? "")\(r.onlyCross.contains(true) ? ", only-cross \(r.onlyCross)" : "") — \(sd.unet.parameterCount.formatted()) params")
        print("           down \(u.downBlockTypes.joined(separator: ", "))")
        print("           up   \(u.upBlockTypes.joined(separator: ", "))")
        print("           mode \(Self.mode(inChannels: u.inChannels))")
        let v = sd.vae.config
        print("vae        channels \(v.blockOutChannels), \(v.layersPerBlock) resnets/level, latent \(v.latentChannels), factor \(v.scaleFactor), scaling \(v.scalingFactor) — \(sd.vae.parameterCount.formatted()) params")
        if noForward { return }

        guard latent > 0 && latent <= 256 else { throw CLIError("--latent must be in 1…256, got \(latent)") }
        var gen = SplitMix64(seed: 0)
        let ids = [[min(49406, t.vocabSize - 2)] + Array(repeating: min(49407, t.vocabSize - 1), count: 1) + Array(repeating: 0, count: t.maxPositionEmbeddings - 2)]
        var context: Tensor!
        let tText = try elapsed { context = try sd.textEncoder(ids) }
        print(String(format: "forward    text encoder [1, %d] → %@ in %.3f s", t.maxPositionEmbeddings, "\(context.shape)", tText))
        let sample = gen.normal([1, u.inChannels, latent, latent])
        let labels = u.numClassEmbeds != nil ? [20] : nil
        var eps: Tensor!
        let tUNet = try elapsed { eps = try sd.unet(sample, timesteps: [500], context: context, classLabels: labels) }
        print(String(format: "forward    unet %@ at t=500 → %@ in %.3f s (mean %.4f, std %.4f)", "\(sample.shape)", "\(eps.shape)", tUNet, eps.mean, eps.standardDeviation))
        var image: Tensor!
        let z = gen.normal([1, v.latentChannels, latent, latent])
        let tVAE = elapsed { image = sd.vae.decode(z) }
        print(String(format: "forward    vae decode %@ → %@ in %.3f s", "\(z.shape)", "\(image.shape)", tVAE))
        print("peak RSS   \(formatBytes(ProcessStats.peakRSS))")
    }

    static func mode(inChannels: Int) -> String {
        switch inChannels {
        case 4: return "text-to-image / img2img (4-channel)"
        case 5: return "depth-to-image (4 latent + 1 depth)"
        case 7: return "x4 upscaler (4 latent + 3 low-res RGB)"
        case 9: return "inpainting (4 latent + 1 mask + 4 masked-image latent)"
        default: return "unknown (\(inChannels) input channels)"
        }
    }
}


