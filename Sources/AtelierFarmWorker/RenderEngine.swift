import AtelierFarmProtocol
import Foundation

/// The one seam between the farm and the diffusion engine: a worker hands the engine a task
/// and gets a PNG back, hearing about progress on the way. The farm never sees networks,
/// schedulers or tensors; the engine never imports the farm.
public protocol RenderEngine: AnyObject, Sendable {
    /// What this engine can render, announced when the worker registers.
    var models: [Atelier_V1_ModelInfo] { get }

    /// Renders one task to PNG bytes (with the A1111 `parameters` chunk).
    ///
    /// - Parameter progress: called after each denoising step with (done, total); returning
    ///   false asks the engine to stop early (the task was cancelled or its lease lost), in which
    ///   case it throws `RenderCancelled`.
    func render(_ task: Atelier_V1_TaskSpec, progress: @escaping (Int, Int) -> Bool) throws -> Data
}

/// Thrown by a `RenderEngine` when its progress callback asked it to stop.
public struct RenderCancelled: Error, CustomStringConvertible {
    public init() {}
    public var description: String { "rendering was cancelled" }
}
