import AtelierFuzzTargets
import Foundation
import XCTest

/// CI's fast lane of the fuzz suite: each target runs its committed seed corpus
/// (`Tests/Fuzz/corpus/<target>/`) and a few thousand seeded mutations of it, in-process. A
/// trap fails the run (the crash names the test); the heavy lane is `scripts/fuzz.sh` (libFuzzer,
/// millions of executions). The seed is fixed so a failure reproduces exactly; the input that
/// crashed is written to $TMPDIR/atelier-fuzz-last-<target> before it runs.
final class FuzzCorpusReplayTests: XCTestCase {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    private func replay(_ kind: FuzzTargetKind, mutations: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        let corpus = try FuzzReplay.corpus(kind, root: Self.repoRoot)
        XCTAssertGreaterThanOrEqual(corpus.count, 3, "the \(kind.rawValue) seed corpus is committed", file: file, line: line)
        let target = try kind.make()
        let last = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("atelier-fuzz-last-\(kind.rawValue)")
        let executed = FuzzReplay.run(target, kind: kind, corpus: corpus, mutations: mutations, seed: 20_261_204) { input in
            try? Data(input).write(to: last)
        }
        XCTAssertEqual(executed, corpus.count + mutations, file: file, line: line)
        try? FileManager.default.removeItem(at: last)
    }

    func testCoordinatorAnswersEveryMutatedProtobufRequestWithoutCrashing() throws {
        try replay(.protobuf, mutations: 2000)
    }

    func testSafeTensorsLoaderRejectsEveryMutatedHeaderWithoutCrashing() throws {
        try replay(.safetensors, mutations: 3000)
    }

    func testPNGDecoderRejectsEveryMutatedFileWithoutCrashing() throws {
        try replay(.png, mutations: 2000)
    }

    func testTokenizerEncodesEveryMutatedPromptToFullLengthIDs() throws {
        try replay(.tokenizer, mutations: 2000)
    }

    /// Every input a fuzzer ever crashed on (`Tests/Fuzz/crashes/<target>/`, kept with its report)
    /// runs again on every CI pass, so a fixed crash stays fixed. The first was a single-file
    /// tensor named `model.diffusion_model.input_blocks.` (nothing after the dot), which trapped
    /// the block-index parser.
    func testEveryInputThatOnceCrashedAFuzzerNowReturns() throws {
        var replayed = 0
        for kind in FuzzTargetKind.allCases {
            let folder = Self.repoRoot.appendingPathComponent("Tests/Fuzz/crashes/\(kind.rawValue)")
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder.path) else { continue }
            let target = try kind.make()
            for name in names.sorted() where !name.hasSuffix(".md") && !name.hasSuffix(".txt") && !name.hasPrefix(".") {
                let bytes = try [UInt8](Data(contentsOf: folder.appendingPathComponent(name)))
                bytes.withUnsafeBytes { target.run($0) }
                replayed += 1
            }
        }
        XCTAssertGreaterThanOrEqual(replayed, 1, "the saved crashers are committed")
    }
}
