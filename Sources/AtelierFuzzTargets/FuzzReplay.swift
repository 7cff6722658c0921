import Foundation

/// Runs a fuzz target without libFuzzer: every corpus file as is, then `mutations` inputs made by
/// the `SeededMutator` from the corpus. Used by the CI replay test and by `atelier-fuzz` when it
/// is built without `-sanitize=fuzzer`.
public enum FuzzReplay {
    /// The committed seed corpus of `kind`: `Tests/Fuzz/corpus/<kind>/*`, sorted by name.
    public static func corpus(_ kind: FuzzTargetKind, root: URL) throws -> [[UInt8]] {
        let folder = root.appendingPathComponent("Tests/Fuzz/corpus/\(kind.rawValue)")
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { !$0.hasPrefix(".") }.sorted()
        return try names.map { Array(try Data(contentsOf: folder.appendingPathComponent($0))) }
    }

    /// Runs `target` on the corpus and `mutations` seeded mutations of it; returns the inputs run.
    @discardableResult
    public static func run(_ target: FuzzTarget, kind: FuzzTargetKind, corpus: [[UInt8]], mutations: Int, seed: UInt64,
                           onInput: ([UInt8]) -> Void = { _ in }) -> Int {
        var executed = 0
        func execute(_ input: [UInt8]) {
            onInput(input)
            input.withUnsafeBytes { target.run($0) }
            executed += 1
        }
        for input in corpus { execute(Array(input.prefix(kind.maxLength))) }
        var mutator = SeededMutator(seed: seed)
        let pool = corpus.isEmpty ? [[UInt8]()] : corpus
        for _ in 0..<mutations {
            let base = pool[mutator.below(pool.count)], other = pool[mutator.below(pool.count)]
            execute(mutator.mutate(base, other: other, maxLength: kind.maxLength))
        }
        return executed
    }
}
