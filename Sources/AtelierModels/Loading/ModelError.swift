import Foundation

/// Everything that can go wrong turning files on disk into a network, phrased so the user can
/// act on it (which file, which key, what was expected).
public enum ModelError: Error, CustomStringConvertible, Equatable {
    case missingFile(String)
    case missingWeight(key: String, source: String)
    case shapeMismatch(key: String, expected: [Int], found: [Int], source: String)
    case invalidConfig(file: String, reason: String)
    case unsupported(String)
    case noWeightsFile(folder: String)
    case cannotInferConfig(String)
    /// A tensor whose rank or dimensions cannot be what its name says it is (`expected` describes
    /// the layout, e.g. "[out, in] with every dimension ≥ 1").
    case unexpectedShape(key: String, expected: String, found: [Int], source: String)

    public var description: String {
        switch self {
        case .missingFile(let path):
            return "\(path): file not found"
        case .missingWeight(let key, let source):
            return "\(source): weight '\(key)' is missing (is this the right model type, or an incomplete download?)"
        case .shapeMismatch(let key, let expected, let found, let source):
            return "\(source): weight '\(key)' has shape \(found) but the config calls for \(expected) (config.json and weights disagree)"
        case .invalidConfig(let file, let reason):
            return "\(file): \(reason)"
        case .unsupported(let what):
            return "unsupported model feature: \(what)"
        case .noWeightsFile(let folder):
            return "\(folder): no .safetensors weights found (expected diffusion_pytorch_model.safetensors or model.safetensors, optionally with a .fp16 variant)"
        case .unexpectedShape(let key, let expected, let found, let source):
            return "\(source): tensor '\(key)' has shape \(found), expected \(expected) (a damaged or hand-edited checkpoint?)"
        case .cannotInferConfig(let reason):
            return "cannot infer the model architecture from the single-file checkpoint: \(reason)"
        }
    }
}
