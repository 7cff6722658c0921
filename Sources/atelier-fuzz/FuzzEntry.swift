import AtelierFuzzTargets
import Foundation

// Built by scripts/fuzz.sh with `-sanitize=fuzzer -parse-as-library -D ATELIER_LIBFUZZER`:
// libFuzzer supplies `main` and calls these two. The target is chosen by $ATELIER_FUZZ_TARGET
// (protobuf | safetensors | png | tokenizer), so one binary serves all four. (SwiftPM links
// executables with `--defsym main=<module>_main`, which collides with libFuzzer's `main`; fuzz.sh
// therefore reruns SwiftPM's own link command without that flag.) Without the flag this file is
// the coverage-less fallback below.
#if ATELIER_LIBFUZZER
nonisolated(unsafe) private var fuzzTarget: FuzzTarget?

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<Int32>?, _ argv: UnsafeMutableRawPointer?) -> Int32 {
    let name = ProcessInfo.processInfo.environment["ATELIER_FUZZ_TARGET"] ?? ""
    guard let kind = FuzzTargetKind(rawValue: name) else {
        FileHandle.standardError.write(Data("set ATELIER_FUZZ_TARGET to one of \(FuzzTargetKind.allCases.map(\.rawValue).joined(separator: ", "))\n".utf8))
        exit(2)
    }
    do { fuzzTarget = try kind.make() } catch {
        FileHandle.standardError.write(Data("cannot set up the \(name) fuzz target: \(error)\n".utf8))
        exit(2)
    }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    fuzzTarget?.run(UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size))
    return 0
}
#else
/// Without libFuzzer: `atelier-fuzz TARGET [MUTATIONS] [SEED]` replays the committed corpus and
/// MUTATIONS seeded mutations (the coverage-less fallback), printing the executions.
@main
struct AtelierFuzzFallback {
    static func main() {
        let args = CommandLine.arguments
        guard args.count >= 2, let kind = FuzzTargetKind(rawValue: args[1]) else {
            print("usage: atelier-fuzz (\(FuzzTargetKind.allCases.map(\.rawValue).joined(separator: "|"))) [MUTATIONS] [SEED]")
            exit(2)
        }
        let mutations = args.count > 2 ? Int(args[2]) ?? 10_000 : 10_000
        let seed = args.count > 3 ? UInt64(args[3]) ?? 1 : 1
        let root = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        do {
            let target = try kind.make()
            let corpus = try FuzzReplay.corpus(kind, root: root)
            let started = Date()
            let n = FuzzReplay.run(target, kind: kind, corpus: corpus, mutations: mutations, seed: seed)
            let seconds = String(format: "%.1f", Date().timeIntervalSince(started))
            print("\(kind.rawValue): \(n) executions (seeded mutator, seed \(seed)) in \(seconds) s, 0 crashes")
        } catch {
            print("atelier-fuzz: \(error)")
            exit(2)
        }
    }
}
#endif
