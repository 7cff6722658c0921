import Foundation

/// One component folder of a diffusers model (`unet/`, `vae/`, `text_encoder/`): its config and
/// its safetensors weights — plain, `.fp16` variant, or sharded with an index.
public enum DiffusersComponent {
    static let weightNames = ["diffusion_pytorch_model", "model"]

    /// The safetensors files holding the weights of `folder`, preferring full precision.
    public static func weightFiles(in folder: URL) throws -> [URL] {
        let fm = FileManager.default
        for variant in ["", ".fp16"] {
            for base in weightNames {
                let single = folder.appendingPathComponent("\(base)\(variant).safetensors")
                if fm.fileExists(atPath: single.path) { return [single] }
                let index = folder.appendingPathComponent("\(base).safetensors\(variant.isEmpty ? "" : variant).index.json")
                let indexAlt = folder.appendingPathComponent("\(base)\(variant).safetensors.index.json")
                for idx in [index, indexAlt] where fm.fileExists(atPath: idx.path) {
                    return try shards(from: idx, folder: folder)
                }
            }
        }
        // Only pickles (or nothing): let the format detector produce the right message.
        _ = try CheckpointFormat.detect(url: folder)
        throw ModelError.noWeightsFile(folder: folder.path)
    }

    static func shards(from index: URL, folder: URL) throws -> [URL] {
        guard let data = FileManager.default.contents(atPath: index.path),
              let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let map = json["weight_map"] as? [String: String] else {
            throw ModelError.invalidConfig(file: index.path, reason: "not a valid safetensors shard index (no weight_map)")
        }
        return Set(map.values).sorted().map { folder.appendingPathComponent($0) }
    }

    /// Loads config.json (as `T`) and opens the weights of `folder`.
    public static func open<T: Decodable>(_ folder: URL, config: T.Type) throws -> (T, WeightSource) {
        let cfg = try ConfigFile.load(T.self, from: folder.appendingPathComponent("config.json"))
        let files = try weightFiles(in: folder).map { try SafeTensorsFile(url: $0) }
        return (cfg, SafeTensorsWeights(files: files))
    }
}
