import ArgumentParser
import Foundation

/// The model used when `--model` is omitted: `$ATELIER_MODEL`, else the tiny random-weight SD2
/// model committed with the tests (it proves the machinery, it does not paint pictures).
enum DefaultModel {
    static func resolve(_ given: String?) throws -> URL {
        if let given { return URL(fileURLWithPath: (given as NSString).expandingTildeInPath) }
        if let env = ProcessInfo.processInfo.environment["ATELIER_MODEL"], !env.isEmpty {
            return URL(fileURLWithPath: env)
        }
        for candidate in bundledCandidates() where FileManager.default.fileExists(atPath: candidate.path) {
            return candidate
        }
        throw ValidationError("no --model given, $ATELIER_MODEL unset, and the bundled test model was not found; pass --model PATH (a diffusers folder or a .safetensors file)")
    }

    /// The fixture model, looked up next to the source tree (development builds) and relative to
    /// the executable (installed next to a checkout).
    static func bundledCandidates() -> [URL] {
        let rel = "Tests/Fixtures/singlefile/tiny-sd2"
        var roots = [URL(fileURLWithPath: FileManager.default.currentDirectoryPath)]
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        roots.append(source)
        var exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        for _ in 0..<5 { exe.deleteLastPathComponent(); roots.append(exe) }
        return roots.map { $0.appendingPathComponent(rel) }
    }
}
