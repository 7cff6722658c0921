import ArgumentParser
import AtelierFarm
import AtelierKernels
import AtelierRenderEngine
import Foundation

/// Which engine `atelier worker` renders with: the diffusion pipelines (always, in production)
/// or the no-op engine of load tests. Chosen with `--engine`; the no-op choice is announced in
/// the worker's version string so `atelier workers` and the coordinator can always tell.
enum WorkerEngineKind: String, ExpressibleByArgument, CaseIterable {
    case pipeline
    case noop

    /// Appended to the worker's reported version.
    var versionSuffix: String { self == .noop ? " engine=noop" : "" }

    /// Builds the engine for `models`; `stragglerStepDelayMs` > 0 wraps it in a `StragglerRenderEngine`.
    func make(models: [(name: String, path: URL)], precision: OwnGEMM.Precision = .fp32, stragglerStepDelayMs: Int) throws -> RenderEngine {
        let engine: RenderEngine
        switch self {
        case .pipeline: engine = try PipelineRenderEngine(models: models, precision: precision)
        case .noop: engine = NoOpRenderEngine(modelNames: models.map(\.name))
        }
        guard stragglerStepDelayMs > 0 else { return engine }
        return StragglerRenderEngine(wrapping: engine, delayPerStep: Double(stragglerStepDelayMs) / 1000)
    }
}

/// A test-only slow worker (`atelier worker --straggler-step-delay-ms N`): sleeps N ms after every
/// denoising step of the wrapped engine. The chaos suite uses it to play a straggler ten times
/// slower than its peers; the images are the wrapped engine's, unchanged.
final class StragglerRenderEngine: RenderEngine, @unchecked Sendable {
    let inner: RenderEngine
    let delayPerStep: TimeInterval

    init(wrapping inner: RenderEngine, delayPerStep: TimeInterval) {
        self.inner = inner
        self.delayPerStep = delayPerStep
    }

    var models: [Atelier_V1_ModelInfo] { inner.models }

    func render(_ task: Atelier_V1_TaskSpec, progress: @escaping (Int, Int) -> Bool) throws -> Data {
        try inner.render(task) { [delayPerStep] done, total in
            Thread.sleep(forTimeInterval: delayPerStep)
            return progress(done, total)
        }
    }
}
