import Foundation
import XCTest
@testable import AtelierDiffusion

/// The SD2 tokenizer facts, one test each (ids checked against transformers 5.23).
final class TokenizerBehaviourTests: XCTestCase {
    private static let shared = Result { try BPETokenizer.bundled() }
    private func tokenizer() throws -> BPETokenizer { try Self.shared.get() }

    func testBundledVocabularyHasCLIPShape() throws {
        let tokenizer = try tokenizer()
        XCTAssertEqual(tokenizer.vocabularySize, 49_408)
        XCTAssertEqual(tokenizer.bosTokenID, 49_406)
        XCTAssertEqual(tokenizer.eosTokenID, 49_407)
        XCTAssertEqual(tokenizer.padTokenID, 0)
        XCTAssertEqual(tokenizer.maxLength, 77)
        XCTAssertEqual(tokenizer.token(forID: 0), "!")
        XCTAssertEqual(tokenizer.token(forID: 320), "a</w>")
        XCTAssertEqual(tokenizer.token(forID: 2368), "cat</w>")
        XCTAssertEqual(tokenizer.token(forID: 49_406), "<|startoftext|>")
        XCTAssertNil(tokenizer.token(forID: 49_408))
    }

    func testKnownPromptEncodesToReferenceIDs() throws {
        XCTAssertEqual(try tokenizer().encode("a photo of a cat"),
                       [49406, 320, 1125, 539, 320, 2368, 49407] + Array(repeating: 0, count: 70))
    }

    func testEmptyPromptIsBosEosThenPadZeros() throws {
        let expected = [49406, 49407] + Array(repeating: 0, count: 75)
        XCTAssertEqual(try tokenizer().encode(""), expected)
        XCTAssertEqual(try tokenizer().encode(" \t\n "), expected, "whitespace-only prompts are empty too")
    }

    func testLiteralExclamationBecomesPadId() throws {
        // "!" is SD2's registered pad token, so Hugging Face cuts it out before BPE: every literal
        // "!" is id 0 (OpenCLIP would give 256, 748, 995 for "! !! !!!").
        XCTAssertEqual(Array(try tokenizer().encode("! !! !!!").prefix(8)), [49406, 0, 0, 0, 0, 0, 0, 49407])
        XCTAssertEqual(Array(try tokenizer().encode("hello! world!!").prefix(8)),
                       [49406, 3306, 0, 1002, 0, 0, 49407, 0])
        // Even when a combining mark follows it (one grapheme, two code points).
        XCTAssertEqual(try tokenizer().encode("!\u{301}")[1], 0)
    }

    func testTruncatesTo75ContentTokens() throws {
        let tokenizer = try tokenizer()
        let prompt = Array(repeating: "cat", count: 100).joined(separator: " ")
        let ids = tokenizer.encode(prompt)
        XCTAssertEqual(ids.count, 77)
        XCTAssertEqual(ids.first, 49406)
        XCTAssertEqual(ids.last, 49407, "EOS is kept after truncation")
        XCTAssertEqual(Array(ids[1...75]), Array(repeating: 2368, count: 75))
        XCTAssertEqual(tokenizer.contentTokenIDs(prompt).count, 100, "contentTokenIDs does not truncate")
    }

    func testDigitsSplitOnePerToken() throws {
        // "1024": four tokens "1</w>" "0</w>" "2</w>" "4</w>"; separators are their own tokens.
        XCTAssertEqual(try tokenizer().contentTokenIDs("1024"), [272, 271, 273, 275])
        XCTAssertEqual(try tokenizer().contentTokenIDs("1,234.56"), [272, 267, 273, 274, 275, 269, 276, 277])
    }

    func testTypedSpecialTokensBecomeBosAndEosInAnyCase() throws {
        // BOS/EOS are normalised special tokens: matched after lowercasing.
        XCTAssertEqual(try tokenizer().contentTokenIDs("<|endoftext|>x<|ENDOFTEXT|><|StartOfText|>"),
                       [49407, 343, 49407, 49406])
    }

    func testUppercaseAndWhitespaceDoNotMatter() throws {
        let tokenizer = try tokenizer()
        XCTAssertEqual(tokenizer.encode("A  Photo\tOF\na CAT"), tokenizer.encode("a photo of a cat"))
    }

    func testDefaultCleaningKeepsHTMLEntitiesButFtfyCleaningUnescapesThem() throws {
        let plain = try tokenizer()
        let ftfy = try BPETokenizer.bundled(cleaning: .ftfy)
        // transformers 5 has no ftfy step: "&amp;" is "&", "amp", ";".
        XCTAssertEqual(plain.contentTokenIDs("&amp;"), [261, 6259, 282])
        XCTAssertEqual(ftfy.contentTokenIDs("&amp;"), [261])
        XCTAssertEqual(ftfy.contentTokenIDs("Ã©tÃ©"), ftfy.contentTokenIDs("été"))
        XCTAssertEqual(ftfy.contentTokenIDs("ﬁne"), ftfy.contentTokenIDs("fine"))
        XCTAssertEqual(ftfy.contentTokenIDs("“quoted”"), ftfy.contentTokenIDs("\"quoted\""))
    }

    func testCustomMaxLength() throws {
        let tokenizer = try BPETokenizer.bundled(maxLength: 5)
        XCTAssertEqual(tokenizer.encode("a photo of a cat"), [49406, 320, 1125, 539, 49407])
        XCTAssertEqual(tokenizer.encode("a"), [49406, 320, 49407, 0, 0])
    }

    func testMaxLengthBelowTwoIsRejected() {
        XCTAssertThrowsError(try BPETokenizer.bundled(maxLength: 1)) { error in
            XCTAssertEqual(error as? TokenizerError, .invalidMaxLength(1))
        }
    }

    func testBatchEncodingMatchesSingleEncoding() throws {
        let tokenizer = try tokenizer()
        XCTAssertEqual(tokenizer.encode(["", "a cat"]), [tokenizer.encode(""), tokenizer.encode("a cat")])
    }

    func testConcurrentEncodingIsConsistent() throws {
        let tokenizer = try BPETokenizer.bundled()
        let prompts = (0..<64).map { "prompt number \($0), a castle on a hill, café, 東京 \($0 * 7919)!" }
        let expected = prompts.map { try? BPETokenizer.bundled().encode($0) }
        var results = [[Int]?](repeating: nil, count: prompts.count)
        let lock = NSLock()
        DispatchQueue.concurrentPerform(iterations: prompts.count) { i in
            let ids = tokenizer.encode(prompts[i])
            lock.lock()
            results[i] = ids
            lock.unlock()
        }
        XCTAssertEqual(results, expected)
    }
}
