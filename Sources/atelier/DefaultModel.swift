import ArgumentParser
import Foundation

/// The models used when `--model` is omitted: `$ATELIER_MODEL` (or `$ATELIER_UPSCALER_MODEL`),
/// else the embedded demo models in Models/demo (SD2 architecture, a few MB, trained by
/// Training/train.py on procedural scenes): 64 px pictures of one shape on a one- or two-tone
/// background that follow prompts such as "a small red circle on a blue background", so the
/// first command a new user runs shows the whole machinery drawing what it is told, in seconds.
enum DefaultModel {
    enum Kind {
        case generator, upscaler

        var environment: String { self == .generator ? "ATELIER_MODEL" : "ATELIER_UPSCALER_MODEL" }
        var bundledPath: String {
            self == .generator ? "Models/demo/base" : "Models/demo/x4"
        }
        /// The model name a worker serves it under, and submit's default.
        var farmName: String { self == .generator ? "default" : "x4" }
    }

    static func resolve(_ given: String?, kind: Kind = .generator) throws -> URL {
        if let given {
            guard given.utf8.count <= Int(PATH_MAX) else {
                throw CLIError("--model \"\(CLIError.echo(given))\" is \(given.utf8.count) bytes, longer than any path (\(PATH_MAX)); pass the model's folder or .safetensors file")
            }
            return URL(fileURLWithPath: (given as NSString).expandingTildeInPath)
        }
        if let env = ProcessInfo.processInfo.environment[kind.environment], !env.isEmpty {
            return URL(fileURLWithPath: (env as NSString).expandingTildeInPath)
        }
        for candidate in bundledCandidates(kind.bundledPath) where FileManager.default.fileExists(atPath: candidate.path) {
            return candidate
        }
        throw CLIError("no --model given, $\(kind.environment) unset, and the embedded demo model (Models/demo) was not found; pass --model PATH (a diffusers folder or a .safetensors file)")
    }

    /// The bundled model, looked up in the working directory, next to the source tree
    /// (development builds) and above the executable (a build inside a checkout).
    static func bundledCandidates(_ rel: String) -> [URL] {
        var roots = [URL(fileURLWithPath: FileManager.default.currentDirectoryPath)]
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        roots.append(source)
        var exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        for _ in 0..<5 { exe.deleteLastPathComponent(); roots.append(exe) }
        return roots.map { $0.appendingPathComponent(rel) }
    }
}
