import Foundation

/// The few facts a single-file checkpoint cannot carry in its tensors, read from the original
/// inference YAML placed beside it (`model.safetensors` + `model.yaml`), as AUTOMATIC1111 and
/// ComfyUI do: the prediction type (`parameterization: "v"` for the 768-v models) and the
/// attention head size (`num_head_channels`, 64 in every SD2 config).
///
/// Only these scalar keys are read, by a line scan: the files are small and flat enough, and a
/// YAML dependency for three numbers is not worth it.
public struct SingleFileSidecar: Equatable, Sendable {
    public var parameterization: String?
    public var numHeadChannels: Int?
    public var numHeads: Int?
    public var scaleFactor: Float?
    public var url: URL?

    public init() {}

    /// The sidecar for `checkpoint` (`.yaml` or `.yml` with the same stem), if there is one.
    public static func find(for checkpoint: URL) -> SingleFileSidecar? {
        let stem = checkpoint.deletingPathExtension()
        for ext in ["yaml", "yml"] {
            let url = stem.appendingPathExtension(ext)
            if let text = try? String(contentsOf: url, encoding: .utf8) {
                var s = parse(text)
                s.url = url
                return s
            }
        }
        return nil
    }

    public static func parse(_ text: String) -> SingleFileSidecar {
        var s = SingleFileSidecar()
        var section: [String] = []  // indentation-tracked path, to tell the UNet's keys from others
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            guard let colon = line.firstIndex(of: ":") else { continue }
            let indent = line.prefix { $0 == " " }.count
            let key = line[..<colon].trimmingCharacters(in: .whitespaces)
            var value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            value = value.trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
            while section.count > indent / 2 { section.removeLast() }
            if value.isEmpty { section.append(key); continue }
            let inUNet = section.contains("unet_config")
            switch key {
            case "parameterization": s.parameterization = value
            case "num_head_channels" where inUNet: s.numHeadChannels = Int(value)
            case "num_heads" where inUNet: s.numHeads = Int(value)
            case "scale_factor" where !inUNet && !section.contains("first_stage_config"): s.scaleFactor = Float(value)
            default: break
            }
        }
        return s
    }

    /// diffusers' name for the prediction type.
    public var predictionType: String? {
        switch parameterization {
        case "v": return "v_prediction"
        case "eps": return "epsilon"
        default: return nil
        }
    }
}
