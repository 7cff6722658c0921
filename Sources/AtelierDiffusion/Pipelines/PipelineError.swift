import Foundation

/// Why a generation request cannot run, in words that say what to change.
public enum PipelineError: Error, CustomStringConvertible, Equatable {
    case invalidOption(String)
    case modeNotSupported(mode: String, model: String, reason: String)
    case missingInput(String)
    case missingComponent(String)
    case cancelled

    public var description: String {
        switch self {
        case .invalidOption(let s): return s
        case .modeNotSupported(let mode, let model, let reason): return "\(model) cannot do \(mode): \(reason)"
        case .missingInput(let s): return s
        case .missingComponent(let s): return s
        case .cancelled: return "cancelled"
        }
    }
}
