import AtelierKernels

/// Activations named as config.json spells them (`hidden_act`, `act_fn`).
public enum ActivationKind: String, Codable, Sendable {
    case gelu, silu, swish, relu
    case quickGelu = "quick_gelu"
    case geluNew = "gelu_new"

    public func apply(_ x: Tensor) -> Tensor {
        switch self {
        case .gelu: return Activation.gelu(x)
        case .silu, .swish: return Activation.silu(x)
        case .relu: return Activation.relu(x)
        case .quickGelu: return Activation.quickGelu(x)
        case .geluNew: return Activation.geluTanh(x)
        }
    }
}
