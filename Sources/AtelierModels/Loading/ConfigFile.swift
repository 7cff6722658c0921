import Foundation

/// Reads a `config.json` into a Codable config struct, with errors that name the file.
public enum ConfigFile {
    public static func load<T: Decodable>(_ type: T.Type, from url: URL) throws -> T {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw ModelError.missingFile(url.path)
        }
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch let DecodingError.keyNotFound(key, _) {
            throw ModelError.invalidConfig(file: url.path, reason: "required key '\(key.stringValue)' is missing")
        } catch let DecodingError.typeMismatch(_, ctx) {
            throw ModelError.invalidConfig(file: url.path, reason: "wrong type at '\(ctx.codingPath.map(\.stringValue).joined(separator: "."))'")
        } catch {
            throw ModelError.invalidConfig(file: url.path, reason: "not a valid JSON config (\(error.localizedDescription))")
        }
    }
}

/// A config value diffusers accepts either as one value for every block or as a per-block list
/// (`attention_head_dim: 8` vs `[5, 10, 20, 20]`).
public enum PerBlock<T: Codable & Sendable>: Codable, Sendable {
    case all(T)
    case each([T])

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let v = try? c.decode(T.self) { self = .all(v) } else { self = .each(try c.decode([T].self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .all(let v): try c.encode(v)
        case .each(let v): try c.encode(v)
        }
    }

    /// Expands to `count` entries; a list of the wrong length is a config error.
    public func expand(_ count: Int, key: String) throws -> [T] {
        switch self {
        case .all(let v): return Array(repeating: v, count: count)
        case .each(let v):
            guard v.count == count else {
                throw ModelError.invalidConfig(file: "config.json", reason: "'\(key)' has \(v.count) entries for \(count) blocks")
            }
            return v
        }
    }
}
