import Foundation
import XCTest
@testable import AtelierDiffusion

/// The parity corpus written by Tests/Reference/tokenizer/make_tokenizer_fixtures.py.
///
/// It lives in Tests/Reference/tokenizer/ (outside any SwiftPM target) and is found relative to
/// this file, so no resource declaration or Bundle lookup is needed.
struct TokenizerCorpus {
    struct Case {
        var prompt: String
        /// transformers 5.23 `CLIPTokenizer`.
        var ids: [Int]
        /// transformers 4.57 slow `CLIPTokenizer` with ftfy 6.3.1.
        var idsFtfy: [Int]
        /// `ftfy.fix_text(prompt)`.
        var ftfy: String
    }

    var cases: [Case]
    var maxLength: Int
    var padTokenID: Int
    var mergesSHA256: String
    /// name → raw JSON of the folder variant.
    var folderVariants: [String: [String: Any]]

    static let url = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()
        .deletingLastPathComponent()
        .appendingPathComponent("Reference/tokenizer/tokenizer_corpus.json")

    static func load() throws -> TokenizerCorpus {
        let data = try Data(contentsOf: url)
        guard let root = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let rawCases = root["cases"] as? [[String: Any]] else {
            throw CocoaError(.fileReadCorruptFile)
        }
        var cases: [Case] = []
        for raw in rawCases {
            guard let prompt = raw["prompt"] as? String, let ids = raw["ids"] as? [Int] else {
                throw CocoaError(.fileReadCorruptFile)
            }
            cases.append(Case(prompt: prompt, ids: ids, idsFtfy: raw["ids_ftfy"] as? [Int] ?? ids,
                              ftfy: raw["ftfy"] as? String ?? prompt))
        }
        return TokenizerCorpus(
            cases: cases,
            maxLength: root["max_length"] as? Int ?? 77,
            padTokenID: root["pad_token_id"] as? Int ?? 0,
            mergesSHA256: root["merges_sha256"] as? String ?? "",
            folderVariants: root["folder_variants"] as? [String: [String: Any]] ?? [:])
    }
}

/// Code points of a string, for failure messages (Swift's `debugDescription` hides some).
func scalarDump(_ text: String) -> String {
    text.unicodeScalars.map { $0.value < 0x80 && $0.value >= 0x20 ? String($0) : String(format: "\\u{%X}", $0.value) }
        .joined()
}

/// Writes a tokenizer folder built from the bundled vocabulary, in the layout requested.
enum TokenizerFolderWriter {
    static func makeTemporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("atelier-tokenizer-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static func bundledTokens() throws -> [String] {
        try BundledCLIPVocabulary.definition.get().model.tokens
    }

    static func bundledMerges() throws -> [(String, String)] {
        try TokenizerFolder.parseMerges(BundledCLIPMerges.text, path: "bundled")
    }

    /// vocab.json of the bundled vocabulary, serialised once.
    private static let vocabJSON = Result { () throws -> Data in
        var vocab: [String: Int] = [:]
        for (id, token) in try bundledTokens().enumerated() { vocab[token] = id }
        return try JSONSerialization.data(withJSONObject: vocab)
    }

    /// vocab.json + merges.txt (with the `#version: 0.2` header) + optional JSON configs.
    static func writeVocabMergesFolder(
        at folder: URL, specialTokensMap: Any?, tokenizerConfig: Any?
    ) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try vocabJSON.get().write(to: folder.appendingPathComponent("vocab.json"))
        let merges = "#version: 0.2\n" + BundledCLIPMerges.text + "\n"
        try Data(merges.utf8).write(to: folder.appendingPathComponent("merges.txt"))
        try writeJSON(specialTokensMap, to: folder.appendingPathComponent("special_tokens_map.json"))
        try writeJSON(tokenizerConfig, to: folder.appendingPathComponent("tokenizer_config.json"))
    }

    /// A transformers-5 save: tokenizer.json (vocab + merges from the bundled data) + tokenizer_config.json.
    static func writeTokenizerJSONFolder(
        at folder: URL, model: [String: Any], addedTokens: Any, tokenizerConfig: Any?, mergesAsPairs: Bool
    ) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let tokens = try bundledTokens()
        var vocab: [String: Int] = [:]
        for (id, token) in tokens.enumerated() { vocab[token] = id }
        let merges: [Any] = try bundledMerges().map { pair -> Any in
            mergesAsPairs ? [pair.0, pair.1] as Any : "\(pair.0) \(pair.1)" as Any
        }
        var modelObject = model
        modelObject["vocab"] = vocab
        modelObject["merges"] = merges
        let root: [String: Any] = ["version": "1.0", "added_tokens": addedTokens, "model": modelObject]
        try JSONSerialization.data(withJSONObject: root).write(to: folder.appendingPathComponent("tokenizer.json"))
        try writeJSON(tokenizerConfig, to: folder.appendingPathComponent("tokenizer_config.json"))
    }

    private static func writeJSON(_ object: Any?, to url: URL) throws {
        guard let object, !(object is NSNull) else { return }
        try JSONSerialization.data(withJSONObject: object).write(to: url)
    }
}
