import Foundation
import XCTest
@testable import AtelierDiffusion

/// Token-for-token parity with Hugging Face on the generated corpus (≥ 500 prompts: SD prompts,
/// weights, unicode scripts, emoji/ZWJ, `!` everywhere, numbers, HTML entities, curly quotes,
/// ligatures, full-width text, mojibake, whitespace and control characters, long prompts).
final class TokenizerParityTests: XCTestCase {
    private static let corpus = Result { try TokenizerCorpus.load() }

    private func corpus() throws -> TokenizerCorpus { try Self.corpus.get() }

    func testCorpusIsLargeAndFromTheBundledVocabulary() throws {
        let corpus = try corpus()
        XCTAssertGreaterThanOrEqual(corpus.cases.count, 500)
        XCTAssertEqual(corpus.mergesSHA256, BundledCLIPMerges.sha256,
                       "the corpus was generated from a different vocabulary than the one bundled")
        XCTAssertEqual(corpus.maxLength, 77)
        XCTAssertEqual(corpus.padTokenID, 0)
    }

    /// Default cleaning vs transformers 5.23 `CLIPTokenizer`, the reference diffusers uses.
    func testEveryCorpusPromptMatchesTransformers5() throws {
        let corpus = try corpus()
        let tokenizer = try BPETokenizer.bundled()
        assertParity(corpus.cases.map { ($0.prompt, $0.ids) }, tokenizer: tokenizer, reference: "transformers 5.23")
    }

    /// `.ftfy` cleaning vs transformers 4.57's slow `CLIPTokenizer` with ftfy installed.
    func testEveryCorpusPromptMatchesSlowTokenizerWithFtfy() throws {
        let corpus = try corpus()
        let tokenizer = try BPETokenizer.bundled(cleaning: .ftfy)
        assertParity(corpus.cases.map { ($0.prompt, $0.idsFtfy) }, tokenizer: tokenizer,
                     reference: "transformers 4.57 slow + ftfy")
    }

    /// The ftfy port on its own vs `ftfy.fix_text`.
    func testFtfyPortMatchesFixTextOnEveryCorpusPrompt() throws {
        let corpus = try corpus()
        var failures = 0
        for item in corpus.cases {
            let fixed = FtfyFixText.fixText(item.prompt)
            if Array(fixed.unicodeScalars) != Array(item.ftfy.unicodeScalars) {
                failures += 1
                if failures <= 20 {
                    XCTFail("ftfy.fix_text mismatch\n  prompt:   \(scalarDump(item.prompt))\n"
                        + "  expected: \(scalarDump(item.ftfy))\n  actual:   \(scalarDump(fixed))")
                }
            }
        }
        XCTAssertEqual(failures, 0, "\(failures) of \(corpus.cases.count) prompts differ from ftfy.fix_text")
    }

    func testThroughput() throws {
        let corpus = try corpus()
        let prompts = corpus.cases.map(\.prompt)
        let cold = try BPETokenizer.bundled()
        var start = Date()
        for prompt in prompts { _ = cold.encode(prompt) }
        let coldRate = Double(prompts.count) / Date().timeIntervalSince(start)
        start = Date()
        let rounds = 5
        for _ in 0..<rounds { for prompt in prompts { _ = cold.encode(prompt) } }
        let warmRate = Double(prompts.count * rounds) / Date().timeIntervalSince(start)
        let ftfy = try BPETokenizer.bundled(cleaning: .ftfy)
        start = Date()
        for prompt in prompts { _ = ftfy.encode(prompt) }
        let ftfyRate = Double(prompts.count) / Date().timeIntervalSince(start)
        print(String(format: "BPETokenizer throughput: %.0f prompts/s cold cache, %.0f prompts/s warm, %.0f prompts/s .ftfy cold",
                     coldRate, warmRate, ftfyRate))
        // Generous floor that holds even for unoptimised debug builds.
        XCTAssertGreaterThan(warmRate, 200)
    }

    private func assertParity(_ cases: [(String, [Int])], tokenizer: BPETokenizer, reference: String,
                              file: StaticString = #filePath, line: UInt = #line) {
        var failures = 0
        for (prompt, expected) in cases {
            let actual = tokenizer.encode(prompt)
            if actual != expected {
                failures += 1
                if failures <= 20 {
                    XCTFail("token ids differ from \(reference)\n  prompt:   \(scalarDump(prompt))\n"
                        + "  expected: \(expected)\n  actual:   \(actual)", file: file, line: line)
                }
            }
        }
        let rate = 100 * Double(cases.count - failures) / Double(max(cases.count, 1))
        print("BPETokenizer parity vs \(reference): \(cases.count - failures)/\(cases.count) identical (\(rate)%)")
        XCTAssertEqual(failures, 0, "\(failures) of \(cases.count) prompts differ from \(reference)",
                       file: file, line: line)
    }
}
