/// A request refused by `GenerationValidation`: which field, and a one-line message that names
/// the option (and its protocol field) and what to do. The same request gets the same message at
/// every door, so a farm user and a local user read the same sentence.
public struct RequestValidationError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Kind: Sendable, Equatable {
        /// Out of range, malformed or contradictory: INVALID_ARGUMENT on the farm.
        case invalid
        /// Over a size or work limit: TOO_LARGE on the farm.
        case tooLarge
    }

    public let kind: Kind
    public let field: RequestField
    public let message: String

    public init(_ kind: Kind, _ field: RequestField, _ message: String) {
        self.kind = kind
        self.field = field
        self.message = message
    }

    /// An `.invalid` refusal.
    public init(_ field: RequestField, _ message: String) { self.init(.invalid, field, message) }

    public var description: String { message }

    /// `value` as an error message may show it: at most `RequestLimits.echoedCharacters`
    /// characters, cut with "…", control characters escaped so it stays on one line.
    public static func echo(_ value: String) -> String {
        var out = ""
        var count = 0
        for ch in value {
            if count == RequestLimits.echoedCharacters { return out + "…" }
            if ch.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
                out += ch.unicodeScalars.map { "\\u{\(String($0.value, radix: 16))}" }.joined()
            } else {
                out.append(ch)
            }
            count += 1
        }
        return out
    }
}

/// A field of a generation request, with its CLI option and protocol field name, so messages can
/// name both.
public enum RequestField: String, Sendable, CaseIterable {
    case prompt, negativePrompt, model, steps, guidance, strength, guidanceRescale, scheduler
    case width, height, initImage, mask, depthMap, image, noiseLevel, count, tile, overlap, tasks

    /// The command-line option.
    public var option: String {
        switch self {
        case .negativePrompt: return "--negative-prompt"
        case .guidanceRescale: return "--guidance-rescale"
        case .initImage: return "--init-image"
        case .depthMap: return "--depth-map"
        case .noiseLevel: return "--noise-level"
        case .tasks: return "--count"
        default: return "--\(rawValue)"
        }
    }

    /// The field of `atelier.v1.GenerationParams` / `UpscaleParams` / `BatchJob` / `UpscaleJob`.
    public var protoField: String {
        switch self {
        case .prompt: return "prompts"
        case .negativePrompt: return "negative_prompt"
        case .guidanceRescale: return "guidance_rescale"
        case .initImage: return "init_image_png"
        case .mask: return "mask_png"
        case .depthMap: return "depth_map_png"
        case .image: return "image_png"
        case .noiseLevel: return "noise_level"
        case .tasks: return "count"
        default: return rawValue
        }
    }

    /// How a message names it: `--steps`, or `--init-image (init_image_png)` where the two differ
    /// by more than dashes.
    public var label: String {
        let plain = option.dropFirst(2).replacingOccurrences("-", "_")
        return plain == protoField ? option : "\(option) (\(protoField))"
    }
}

extension StringProtocol {
    fileprivate func replacingOccurrences(_ a: Character, _ b: Character) -> String {
        String(map { $0 == a ? b : $0 })
    }
}
