import AtelierKernels

/// How BiT pads its convolutions and its stem max-pool (`backbone_config.global_padding`,
/// transformers' `get_padding_value`).
///
/// DPT-Hybrid uses "SAME": TensorFlow's rule, kept because the weights come from a TF-trained BiT.
/// A stride-1 conv with an odd kernel pads symmetrically, but a strided conv pads *dynamically*
/// from the input size and puts the odd pixel after: a 7×7/2 stem on 384 px pads 2 before and 3
/// after, a 3×3/2 conv on an even side pads 0 before and 1 after. Padding these symmetrically
/// shifts every BiT feature map by half a pixel.
enum BitPaddingPolicy: Equatable {
    /// TF "SAME".
    case same
    /// No padding.
    case valid
    /// `global_padding: null`: PyTorch-style symmetric `((stride − 1) + (kernel − 1)) / 2`.
    case symmetric

    init(globalPadding: String?, file: String) throws {
        switch globalPadding?.uppercased() {
        case nil: self = .symmetric
        case "SAME": self = .same
        case "VALID": self = .valid
        case let other?:
            throw ModelError.invalidConfig(file: file, reason: "backbone_config.global_padding '\(other)' is not SAME, VALID or null")
        }
    }

    func rule(kernel: Int, stride: Int) -> BitPadding {
        switch self {
        case .same:
            return stride == 1 && (kernel - 1) % 2 == 0 ? .fixed(.symmetric((kernel - 1) / 2)) : .dynamic(kernel: kernel, stride: stride)
        case .valid:
            return .fixed(.none)
        case .symmetric:
            return .fixed(.symmetric(((stride - 1) + (kernel - 1)) / 2))
        }
    }
}

/// The padding one BiT layer applies: fixed, or TF-"SAME" computed per input (`DynamicPad2d`).
enum BitPadding: Equatable {
    case fixed(Padding2D)
    case dynamic(kernel: Int, stride: Int)

    func padding(height: Int, width: Int) -> Padding2D {
        switch self {
        case .fixed(let p):
            return p
        case .dynamic(let k, let s):
            let ph = Self.samePad(height, kernel: k, stride: s), pw = Self.samePad(width, kernel: k, stride: s)
            return Padding2D(top: ph / 2, left: pw / 2, bottom: ph - ph / 2, right: pw - pw / 2)
        }
    }

    /// `max((⌈x/s⌉ − 1)·s + (k − 1) + 1 − x, 0)`: what makes the output ⌈x/s⌉ long.
    static func samePad(_ x: Int, kernel: Int, stride: Int) -> Int {
        let out = (x + stride - 1) / stride
        return max((out - 1) * stride + kernel - x, 0)
    }
}
