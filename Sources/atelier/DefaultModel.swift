import ArgumentParser
import Foundation

/// The models used when `--model` is omitted: `$ATELIER_MODEL` (or `$ATELIER_UPSCALER_MODEL`),
/// else the tiny random-weight SD2 models committed with the tests. They prove the whole
/// machinery end to end in seconds; they do not paint recognisable pictures.
enum DefaultModel {
    enum Kind {
        case generator, upscaler

        var environment: String { self == .generator ? "ATELIER_MODEL" : "ATELIER_UPSCALER_MODEL" }
        var bundledPath: String {
            self == .generator ? "Tests/Fixtures/pipelines/models/tiny-base" : "Tests/Fixtures/pipelines/models/tiny-x4"
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
        throw CLIError("no --model given, $\(kind.environment) unset, and the bundled test model was not found; pass --model PATH (a diffusers folder or a .safetensors file)")
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
