import AtelierDiffusion
import AtelierFarm
import Foundation

/// `atelier worker --engine noop`: a worker that renders nothing. It exists for load tests of the
/// farm's machinery (leasing, heartbeats, results, storage) at a rate no real engine reaches, and
/// must never be mistaken for a real render: it serves every model under content hash `noop` and
/// no weights digest, with numerics `noop` (so the coordinator pins its jobs to a group no real
/// worker belongs to), its version ends in ` engine=noop` (see `WorkerEngineKind`), and its
/// images carry an `atelier-engine` text chunk saying so (and no `parameters` chunk).
///
/// Each result is a valid PNG of the size the task expects (the coordinator checks sizes): a
/// solid colour derived from the seed, so a result can be checked against its task without
/// running the UNet, and the same seed always gives the same bytes.
final class NoOpRenderEngine: RenderEngine, @unchecked Sendable {
    /// The size of an image task that asks for none (the coordinator accepts any size then).
    static let defaultSide = 64

    let models: [Atelier_V1_ModelInfo]

    /// - Parameter names: the model names to answer for; `unet_in_channels` 0 means "unknown",
    ///   which the coordinator trusts with every mode, so one no-op worker takes any task.
    init(modelNames names: [String]) {
        models = names.map { name in
            Atelier_V1_ModelInfo.with {
                $0.name = name
                $0.contentHash = "noop"
                $0.unetInChannels = 0
            }
        }
    }

    func render(_ task: Atelier_V1_TaskSpec, progress: @escaping (Int, Int) -> Bool) throws -> Data {
        let width: Int, height: Int, seed: UInt64, steps: Int
        switch task.kind {
        case .image(let t)?:
            width = t.params.width == 0 ? Self.defaultSide : Int(t.params.width)
            height = t.params.height == 0 ? Self.defaultSide : Int(t.params.height)
            seed = t.params.seed
            steps = max(1, Int(t.params.steps))
        case .upscaleTile(let t)?:
            width = Int(t.tile.width) * 4
            height = Int(t.tile.height) * 4
            seed = t.params.seed &+ UInt64(t.index)
            steps = max(1, Int(t.params.steps))
        case nil:
            throw PipelineError.invalidOption("the task has no kind (a newer coordinator?)")
        }
        // Reports every "step" so heartbeats and cancellation behave as with a real engine.
        for step in 1...steps where !progress(step, steps) { throw RenderCancelled() }
        let colour = Self.colour(seed: seed)
        let image = try RGBImage(width: width, height: height, red: colour.0, green: colour.1, blue: colour.2)
        return Data(try PNGCodec.encode(image, text: [PNGTextChunk(key: "atelier-engine", value: "noop (not a render), seed \(seed)")]))
    }

    /// The colour of the no-op image for `seed` (splitmix64 of the seed, three bytes of it).
    static func colour(seed: UInt64) -> (UInt8, UInt8, UInt8) {
        var z = seed &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return (UInt8(truncatingIfNeeded: z), UInt8(truncatingIfNeeded: z >> 8), UInt8(truncatingIfNeeded: z >> 16))
    }
}
