import Foundation
import XCTest
@testable import AtelierDiffusion

/// Loading tokenizer folders: the SD2 layout, SD1-style and plain-string configs, transformers-5
/// `tokenizer.json` saves, and the errors for missing or corrupt files. The folders are written
/// from the bundled vocabulary with the config files stored in the corpus, and the expected ids
/// come from transformers 5.23 loading the same folders.
final class TokenizerFolderTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = try TokenizerFolderWriter.makeTemporaryDirectory()
    }

    override func tearDownWithError() throws {
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }

    func testVocabMergesFolderVariantsMatchTransformers() throws {
        let corpus = try TokenizerCorpus.load()
        for name in ["sd2", "sd1_no_special_tokens_map", "plain_strings"] {
            let variant = try XCTUnwrap(corpus.folderVariants[name], name)
            let folder = directory.appendingPathComponent(name)
            try TokenizerFolderWriter.writeVocabMergesFolder(
                at: folder, specialTokensMap: variant["special_tokens_map.json"],
                tokenizerConfig: variant["tokenizer_config.json"])
            let tokenizer = try BPETokenizer(folder: folder)
            try assertVariant(variant, tokenizer: tokenizer, name: name)
        }
    }

    func testTransformers5TokenizerJSONFolderMatchesTransformers() throws {
        let corpus = try TokenizerCorpus.load()
        let variant = try XCTUnwrap(corpus.folderVariants["transformers5_tokenizer_json"])
        for pairs in [true, false] {
            let folder = directory.appendingPathComponent("v5-\(pairs)")
            try TokenizerFolderWriter.writeTokenizerJSONFolder(
                at: folder, model: variant["model_keys"] as? [String: Any] ?? [:],
                addedTokens: variant["added_tokens"] ?? [], tokenizerConfig: variant["tokenizer_config.json"],
                mergesAsPairs: pairs)
            let tokenizer = try BPETokenizer(folder: folder)
            try assertVariant(variant, tokenizer: tokenizer, name: "tokenizer.json (merges as \(pairs ? "pairs" : "strings"))")
        }
    }

    func testSD2FolderEqualsBundledVocabularyOnTheCorpus() throws {
        let corpus = try TokenizerCorpus.load()
        let variant = try XCTUnwrap(corpus.folderVariants["sd2"])
        try TokenizerFolderWriter.writeVocabMergesFolder(
            at: directory, specialTokensMap: variant["special_tokens_map.json"],
            tokenizerConfig: variant["tokenizer_config.json"])
        let folder = try BPETokenizer(folder: directory)
        let bundled = try BPETokenizer.bundled()
        XCTAssertEqual(folder.maxLength, 77, "model_max_length is read from tokenizer_config.json")
        for item in corpus.cases {
            XCTAssertEqual(folder.encode(item.prompt), item.ids, scalarDump(item.prompt))
        }
        XCTAssertEqual(folder.encode("a cat!"), bundled.encode("a cat!"))
    }

    func testModelFolderWithTokenizerSubfolderIsAccepted() throws {
        let corpus = try TokenizerCorpus.load()
        let variant = try XCTUnwrap(corpus.folderVariants["sd2"])
        try TokenizerFolderWriter.writeVocabMergesFolder(
            at: directory.appendingPathComponent("tokenizer"), specialTokensMap: variant["special_tokens_map.json"],
            tokenizerConfig: variant["tokenizer_config.json"])
        let tokenizer = try BPETokenizer.load(folder: directory)
        XCTAssertEqual(tokenizer.encode("a photo of a cat"), try BPETokenizer.bundled().encode("a photo of a cat"))
    }

    func testLoadWithoutFolderUsesBundledVocabulary() throws {
        XCTAssertEqual(try BPETokenizer.load(folder: nil).encode("hello!"), try BPETokenizer.bundled().encode("hello!"))
    }

    // MARK: errors

    func testMissingFolderThrowsFolderNotFound() {
        let missing = directory.appendingPathComponent("nope")
        XCTAssertThrowsError(try BPETokenizer(folder: missing)) { error in
            XCTAssertEqual(error as? TokenizerError, .folderNotFound(path: missing.path))
            XCTAssertTrue("\(error)".contains("bundled CLIP vocabulary"), "\(error)")
        }
    }

    func testMissingMergesThrowsMissingFiles() throws {
        try Data("{\"a\": 0}".utf8).write(to: directory.appendingPathComponent("vocab.json"))
        XCTAssertThrowsError(try BPETokenizer(folder: directory)) { error in
            guard case .missingFiles(_, let missing)? = error as? TokenizerError else {
                return XCTFail("unexpected \(error)")
            }
            XCTAssertEqual(missing.first, "merges.txt")
        }
    }

    func testTruncatedVocabThrowsMalformedJSON() throws {
        let vocab = directory.appendingPathComponent("vocab.json")
        try Data("{\"!\": 0, \"\\\"\": 1, \"#\": ".utf8).write(to: vocab)
        try Data("#version: 0.2\ni n\n".utf8).write(to: directory.appendingPathComponent("merges.txt"))
        XCTAssertThrowsError(try BPETokenizer(folder: directory)) { error in
            guard case .malformedJSON(let path, _)? = error as? TokenizerError else { return XCTFail("unexpected \(error)") }
            XCTAssertEqual(path, vocab.path)
        }
    }

    func testGitLFSPointerIsReportedAsSuch() throws {
        try Data("#version: 0.2\ni n\n".utf8).write(to: directory.appendingPathComponent("merges.txt"))
        let vocab = directory.appendingPathComponent("vocab.json")
        try Data("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 1\n".utf8).write(to: vocab)
        XCTAssertThrowsError(try BPETokenizer(folder: directory)) { error in
            XCTAssertTrue("\(error)".contains("Git LFS pointer"), "\(error)")
        }
    }

    func testCorruptMergesLineIsReportedWithItsLineNumber() throws {
        try Data("{\"a\": 0}".utf8).write(to: directory.appendingPathComponent("vocab.json"))
        let merges = directory.appendingPathComponent("merges.txt")
        try Data("#version: 0.2\ni n\nt h e\n".utf8).write(to: merges)
        XCTAssertThrowsError(try BPETokenizer(folder: directory)) { error in
            guard case .malformedMerges(_, let line, _)? = error as? TokenizerError else {
                return XCTFail("unexpected \(error)")
            }
            XCTAssertEqual(line, 3)
        }
    }

    func testMergesFromAnotherVocabularyAreRejected() throws {
        try TokenizerFolderWriter.writeVocabMergesFolder(at: directory, specialTokensMap: nil, tokenizerConfig: nil)
        try Data("#version: 0.2\nzq xw\n".utf8).write(to: directory.appendingPathComponent("merges.txt"))
        XCTAssertThrowsError(try BPETokenizer(folder: directory)) { error in
            guard case .inconsistentVocabulary? = error as? TokenizerError else { return XCTFail("unexpected \(error)") }
        }
    }

    func testUnknownPadTokenIsRejected() throws {
        try TokenizerFolderWriter.writeVocabMergesFolder(
            at: directory, specialTokensMap: ["pad_token": "<pad>"], tokenizerConfig: nil)
        XCTAssertThrowsError(try BPETokenizer(folder: directory)) { error in
            XCTAssertEqual(error as? TokenizerError,
                           .missingSpecialToken(role: "pad", token: "<pad>", source: directory.path))
        }
    }

    // MARK: helpers

    private func assertVariant(_ variant: [String: Any], tokenizer: BPETokenizer, name: String) throws {
        XCTAssertEqual(tokenizer.padTokenID, variant["pad_token_id"] as? Int, "\(name): pad id")
        let cases = try XCTUnwrap(variant["cases"] as? [[String: Any]], name)
        XCTAssertFalse(cases.isEmpty)
        for item in cases {
            let prompt = try XCTUnwrap(item["prompt"] as? String)
            let expected = try XCTUnwrap(item["ids"] as? [Int])
            XCTAssertEqual(tokenizer.encode(prompt), expected, "\(name): \(scalarDump(prompt))")
        }
    }
}
