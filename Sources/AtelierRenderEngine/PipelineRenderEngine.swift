import AtelierDiffusion
import AtelierFarmWorker
import AtelierImaging
import AtelierKernels
import AtelierFarmProtocol
import Foundation

/// The diffusion engine as the farm sees it: protobuf tasks in, PNG bytes out. This adapter is
/// the only place where farm messages meet pipeline requests, so that a worker renders exactly
/// what `atelier render` / `atelier upscale --tile` render for the same arguments.
///
/// It lives in its own library (not in the CLI, not in the worker target) so that the worker
/// links no engine and is unit-tested against any `RenderEngine`, while this adapter is shared by
/// `atelier worker` and anything else that runs the pipelines on a farm.
public final class PipelineRenderEngine: RenderEngine, @unchecked Sendable {
    public let pipelines: [String: StableDiffusionPipeline]
    public let models: [Atelier_V1_ModelInfo]

    public init(models named: [(name: String, path: URL)], precision: OwnGEMM.Precision = .fp32) throws {
        var pipelines: [String: StableDiffusionPipeline] = [:]
        var infos: [Atelier_V1_ModelInfo] = []
        for (name, path) in named {
            let p = try StableDiffusionPipeline.load(path, precision: precision)
            pipelines[name] = p
            var info = Atelier_V1_ModelInfo()
            info.name = name
            info.contentHash = p.hash
            info.unetInChannels = UInt32(p.model.unet.config.inChannels)
            // Whole-file SHA-256 (cached by path, size and mtime): jobs are pinned to it.
            info.weightsSha256 = try WeightsDigest.of(path)
            info.defaultImageSide = UInt32(clamping: p.defaultImageSide)
            infos.append(info)
        }
        self.pipelines = pipelines
        self.models = infos
    }

    public func render(_ task: Atelier_V1_TaskSpec, progress: @escaping (Int, Int) -> Bool) throws -> Data {
        do {
            // The same rules as every other door: a task that slipped past an older coordinator
            // fails here with the rule's message (the same on every worker, so the job fails fast).
            try FarmRequestValidation.validate(task)
            switch task.kind {
            case .image(let t)?:
                let pipeline = try pipeline(t.params.model)
                let result = try pipeline.generate(try Self.request(t.params), progress: progress)
                return Data(try PNGCodec.encode(result.image, text: [.parameters(result.parameters)]))
            case .upscaleTile(let t)?:
                let pipeline = try pipeline(t.params.model)
                let pixels = try PNGCodec.decode(Array(t.tilePng), source: "tile \(t.index)").rgb()
                var r = GenerationRequest(prompt: t.params.prompt)
                r.negativePrompt = t.params.negativePrompt
                r.seed = t.params.seed
                r.steps = t.params.steps == 0 ? nil : Int(t.params.steps)
                r.guidance = t.params.hasGuidance ? t.params.guidance : nil
                r.noiseLevel = t.params.hasNoiseLevel ? Int(t.params.noiseLevel) : nil
                r.scheduler = t.params.scheduler.isEmpty ? nil : t.params.scheduler
                r.initImage = pixels
                let tile = UpscaleTile(pixels: pixels,
                                       rect: .init(x: Int(t.tile.x), y: Int(t.tile.y), width: Int(t.tile.width), height: Int(t.tile.height)),
                                       imageWidth: Int(t.imageWidth), imageHeight: Int(t.imageHeight))
                let result = try pipeline.upscale(r, tile: tile, progress: progress)
                return Data(try PNGCodec.encode(result.image, text: [.parameters(result.parameters)]))
            case nil:
                throw PipelineError.invalidOption("the task has no kind (a newer coordinator?)")
            }
        } catch PipelineError.cancelled {
            throw RenderCancelled()
        }
    }

    public func pipeline(_ name: String) throws -> StableDiffusionPipeline {
        guard let p = pipelines[name] else {
            throw PipelineError.missingComponent("this worker has no model named '\(name)' (it has \(pipelines.keys.sorted().joined(separator: ", ")))")
        }
        return p
    }

    /// The generation request a farm image task stands for.
    public static func request(_ p: Atelier_V1_GenerationParams) throws -> GenerationRequest {
        var r = GenerationRequest(prompt: p.prompt)
        r.negativePrompt = p.negativePrompt
        r.seed = p.seed
        r.steps = p.steps == 0 ? nil : Int(p.steps)
        r.guidance = p.hasGuidance ? p.guidance : nil
        r.scheduler = p.scheduler.isEmpty ? nil : p.scheduler
        r.width = p.width == 0 ? nil : Int(p.width)
        r.height = p.height == 0 ? nil : Int(p.height)
        r.strength = p.hasStrength ? p.strength : nil
        r.guidanceRescale = p.guidanceRescale
        if !p.initImagePng.isEmpty { r.initImage = try PNGCodec.decode(Array(p.initImagePng), source: "init image", limits: .inputImage).rgb() }
        if !p.maskPng.isEmpty { r.mask = try PNGCodec.decode(Array(p.maskPng), source: "mask", limits: .inputImage).gray() }
        if !p.depthMapPng.isEmpty { r.depthMap = DepthMap(png: try PNGCodec.decode(Array(p.depthMapPng), source: "depth map", limits: .inputImage)) }
        return r
    }
}
