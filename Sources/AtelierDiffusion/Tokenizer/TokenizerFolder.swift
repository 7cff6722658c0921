import Foundation

/// Everything a `BPETokenizer` needs, read from a Hugging Face tokenizer folder or built from the
/// bundled vocabulary.
struct TokenizerDefinition {
    var model: BPEModel
    var bos: SpecialToken
    var eos: SpecialToken
    var pad: SpecialToken
    /// Every registered special token, each once (later definitions of the same text win).
    var specials: [SpecialToken]
    /// `model_max_length` from tokenizer_config.json, when it is a sensible sequence length.
    var modelMaxLength: Int?
}

/// Reads the tokenizer folder formats diffusers models come with.
///
/// - diffusers / transformers 4 layout: `vocab.json` + `merges.txt`, with the special tokens in
///   `special_tokens_map.json` and `tokenizer_config.json`.
/// - transformers 5 layout: `tokenizer.json` (vocabulary in `model.vocab`, merges in
///   `model.merges`, special tokens in `added_tokens`) + `tokenizer_config.json`.
///
/// Special tokens follow transformers 5.23 as checked against it: a value in
/// special_tokens_map.json overrides the same key in tokenizer_config.json (so SD2's pad is `"!"`,
/// id 0, although its tokenizer_config.json says `<|endoftext|>`); a plain string is a
/// non-normalised token, a dict carries its own `normalized` flag; the tokens are registered in
/// the order bos, eos, unk, pad, and a later registration of the same text replaces the flag.
enum TokenizerFolder {
    static func load(_ folder: URL) throws -> TokenizerDefinition {
        let folder = try resolveFolder(folder)
        let fm = FileManager.default
        let vocabURL = folder.appendingPathComponent("vocab.json")
        let mergesURL = folder.appendingPathComponent("merges.txt")
        let tokenizerJSONURL = folder.appendingPathComponent("tokenizer.json")
        let hasVocab = fm.fileExists(atPath: vocabURL.path)
        let hasMerges = fm.fileExists(atPath: mergesURL.path)
        let hasTokenizerJSON = fm.fileExists(atPath: tokenizerJSONURL.path)

        let config = try optionalJSONObject(folder.appendingPathComponent("tokenizer_config.json"))
        let specialMap = try optionalJSONObject(folder.appendingPathComponent("special_tokens_map.json"))

        if hasVocab && hasMerges {
            let vocabulary = try readVocabulary(vocabURL)
            let merges = try readMergesText(mergesURL)
            let model = try BPEModel(vocabulary: vocabulary, merges: merges, source: folder.path)
            return try definition(model: model, config: config, specialMap: specialMap,
                                  addedTokens: nil, source: folder.path)
        }
        if hasTokenizerJSON {
            return try loadTokenizerJSON(tokenizerJSONURL, config: config, specialMap: specialMap)
        }
        var missing: [String] = []
        if !hasVocab { missing.append("vocab.json") }
        if !hasMerges { missing.append("merges.txt") }
        missing.append("(or tokenizer.json)")
        throw TokenizerError.missingFiles(folder: folder.path, missing: missing)
    }

    /// Accepts the tokenizer folder itself or a diffusers model folder that contains `tokenizer/`.
    private static func resolveFolder(_ folder: URL) throws -> URL {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw TokenizerError.folderNotFound(path: folder.path)
        }
        let fm = FileManager.default
        let hasOwnFiles = ["vocab.json", "merges.txt", "tokenizer.json"].contains {
            fm.fileExists(atPath: folder.appendingPathComponent($0).path)
        }
        let nested = folder.appendingPathComponent("tokenizer")
        if !hasOwnFiles, fm.fileExists(atPath: nested.path, isDirectory: &isDirectory), isDirectory.boolValue {
            return nested
        }
        return folder
    }

    // MARK: vocab.json + merges.txt

    private static func readVocabulary(_ url: URL) throws -> [String: Int] {
        guard let object = try jsonObject(url) as? [String: Any] else {
            throw TokenizerError.malformedJSON(path: url.path, detail: "expected an object mapping tokens to ids")
        }
        return try vocabulary(from: object, path: url.path)
    }

    private static func vocabulary(from object: [String: Any], path: String) throws -> [String: Int] {
        var vocabulary = [String: Int](minimumCapacity: object.count)
        for (token, value) in object {
            guard let id = intValue(value), id >= 0, id < 10_000_000 else {
                throw TokenizerError.malformedJSON(path: path, detail: "token \(token.debugDescription) has no valid id")
            }
            vocabulary[token] = id
        }
        if vocabulary.isEmpty { throw TokenizerError.malformedJSON(path: path, detail: "the vocabulary is empty") }
        return vocabulary
    }

    /// `merges.txt`: an optional `#version` header, then one `left right` pair per line.
    static func readMergesText(_ url: URL) throws -> [(String, String)] {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw TokenizerError.unreadableFile(path: url.path, reason: error.localizedDescription)
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw TokenizerError.malformedMerges(path: url.path, line: 0, detail: "the file is not UTF-8")
        }
        return try parseMerges(text, path: url.path)
    }

    /// Parses merge lines. Works on UTF-8 bytes: it is fast (48,894 lines), and `String.split`
    /// would see `"\r\n"` as one Character and miss Windows line ends.
    static func parseMerges(_ text: String, path: String) throws -> [(String, String)] {
        var text = text
        return try text.withUTF8 { bytes -> [(String, String)] in
            var merges: [(String, String)] = []
            merges.reserveCapacity(49_000)
            var lineNumber = 0
            var lineStart = 0
            while lineStart < bytes.count {
                var lineEnd = lineStart
                while lineEnd < bytes.count, bytes[lineEnd] != 0x0A { lineEnd += 1 }
                let next = lineEnd + 1
                lineNumber += 1
                if lineEnd > lineStart, bytes[lineEnd - 1] == 0x0D { lineEnd -= 1 }
                defer { lineStart = next }
                let line = UnsafeBufferPointer(rebasing: bytes[lineStart..<lineEnd])
                if line.isEmpty || (lineNumber == 1 && line.starts(with: "#version".utf8)) { continue }
                guard let space = line.firstIndex(of: 0x20), space > 0, space + 1 < line.count,
                      !line[(space + 1)...].contains(0x20) else {
                    throw TokenizerError.malformedMerges(
                        path: path, line: lineNumber,
                        detail: "expected two symbols, got \(String(decoding: line, as: UTF8.self).debugDescription)")
                }
                merges.append((String(decoding: UnsafeBufferPointer(rebasing: line[..<space]), as: UTF8.self),
                               String(decoding: UnsafeBufferPointer(rebasing: line[(space + 1)...]), as: UTF8.self)))
            }
            if merges.isEmpty { throw TokenizerError.malformedMerges(path: path, line: 0, detail: "no merges found") }
            return merges
        }
    }

    // MARK: tokenizer.json

    private static func loadTokenizerJSON(
        _ url: URL, config: [String: Any]?, specialMap: [String: Any]?
    ) throws -> TokenizerDefinition {
        guard let root = try jsonObject(url) as? [String: Any], let model = root["model"] as? [String: Any] else {
            throw TokenizerError.malformedJSON(path: url.path, detail: "no \"model\" object")
        }
        let type = model["type"] as? String ?? "BPE"
        guard type == "BPE" else {
            throw TokenizerError.unsupportedModel(path: url.path, detail: "model type \(type)")
        }
        if let suffix = model["end_of_word_suffix"] as? String, suffix != BPEModel.endOfWord {
            throw TokenizerError.unsupportedModel(path: url.path, detail: "end_of_word_suffix \(suffix.debugDescription)")
        }
        guard let vocabObject = model["vocab"] as? [String: Any] else {
            throw TokenizerError.malformedJSON(path: url.path, detail: "no \"model.vocab\" object")
        }
        guard let mergeEntries = model["merges"] as? [Any] else {
            throw TokenizerError.malformedJSON(path: url.path, detail: "no \"model.merges\" array")
        }
        let vocabulary = try vocabulary(from: vocabObject, path: url.path)
        var merges: [(String, String)] = []
        merges.reserveCapacity(mergeEntries.count)
        for (index, entry) in mergeEntries.enumerated() {
            // Older files store "left right" strings, newer ones ["left", "right"] pairs.
            if let pair = entry as? [String], pair.count == 2 {
                merges.append((pair[0], pair[1]))
            } else if let line = entry as? String {
                let parts = line.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2 else {
                    throw TokenizerError.malformedMerges(path: url.path, line: index + 1, detail: line.debugDescription)
                }
                merges.append((String(parts[0]), String(parts[1])))
            } else {
                throw TokenizerError.malformedMerges(path: url.path, line: index + 1, detail: "not a string or a pair")
            }
        }
        let bpe = try BPEModel(vocabulary: vocabulary, merges: merges, source: url.path)

        var added: [SpecialToken] = []
        for case let entry as [String: Any] in root["added_tokens"] as? [Any] ?? [] {
            guard let content = entry["content"] as? String, let id = intValue(entry["id"] as Any) else { continue }
            added.append(SpecialToken(content: content, id: id, normalized: entry["normalized"] as? Bool ?? false))
        }
        // The pad token of a transformers-5 save lives in tokenizer_config.json; older files may
        // only have it in the `padding` section.
        var config = config ?? [:]
        if config["pad_token"] == nil, let padding = root["padding"] as? [String: Any],
           let padToken = padding["pad_token"] as? String {
            config["pad_token"] = padToken
        }
        return try definition(model: bpe, config: config, specialMap: specialMap, addedTokens: added, source: url.path)
    }

    // MARK: special tokens

    private static func definition(
        model: BPEModel, config: [String: Any]?, specialMap: [String: Any]?,
        addedTokens: [SpecialToken]?, source: String
    ) throws -> TokenizerDefinition {
        func spec(_ key: String, default content: String) -> (content: String, normalized: Bool) {
            let value = specialMap?[key] ?? config?[key]
            if let string = value as? String { return (string, false) }
            if let dict = value as? [String: Any], let string = dict["content"] as? String {
                return (string, dict["normalized"] as? Bool ?? false)
            }
            return (content, false)
        }
        let roles: [(role: String, spec: (content: String, normalized: Bool))] = [
            ("BOS", spec("bos_token", default: "<|startoftext|>")),
            ("EOS", spec("eos_token", default: "<|endoftext|>")),
            ("unknown", spec("unk_token", default: "<|endoftext|>")),
            ("pad", spec("pad_token", default: "<|endoftext|>")),
        ]

        // tokenizer.json lists its added tokens with ids and flags; they are authoritative. For the
        // vocab.json layout the four roles are registered in order, and registering the same text
        // again replaces its flag (SD1's pad "<|endoftext|>" as a plain string makes EOS
        // non-normalised, exactly as transformers 5.23 does).
        var specials: [SpecialToken] = []
        func register(_ token: SpecialToken) {
            if let index = specials.firstIndex(where: { $0.content == token.content }) {
                specials[index] = token
            } else {
                specials.append(token)
            }
        }
        addedTokens?.forEach(register)
        for (role, spec) in roles where addedTokens == nil || !specials.contains(where: { $0.content == spec.content }) {
            guard let id = model.vocabulary[spec.content] else {
                throw TokenizerError.missingSpecialToken(role: role, token: spec.content, source: source)
            }
            register(SpecialToken(content: spec.content, id: id, normalized: spec.normalized))
        }
        func final(_ index: Int) -> SpecialToken {
            let content = roles[index].spec.content
            // Every role was registered above, so the lookup cannot fail; the fallback is never used.
            return specials.first { $0.content == content } ?? SpecialToken(content: content, id: 0, normalized: false)
        }
        var maxLength: Int?
        if let value = config?["model_max_length"], let length = intValue(value), (2...100_000).contains(length) {
            maxLength = length
        }
        return TokenizerDefinition(model: model, bos: final(0), eos: final(1), pad: final(3),
                                   specials: specials, modelMaxLength: maxLength)
    }

    // MARK: JSON helpers

    private static func optionalJSONObject(_ url: URL) throws -> [String: Any]? {
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        guard let object = try jsonObject(url) as? [String: Any] else {
            throw TokenizerError.malformedJSON(path: url.path, detail: "expected a JSON object")
        }
        return object
    }

    private static func jsonObject(_ url: URL) throws -> Any {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw TokenizerError.unreadableFile(path: url.path, reason: error.localizedDescription)
        }
        if data.starts(with: Array("version https://git-lfs".utf8)) {
            throw TokenizerError.malformedJSON(path: url.path, detail: "this is a Git LFS pointer, not the file")
        }
        do {
            return try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            throw TokenizerError.malformedJSON(path: url.path, detail: "not valid JSON (\(error.localizedDescription))")
        }
    }

    private static func intValue(_ value: Any) -> Int? {
        if let int = value as? Int { return int }
        if let double = value as? Double, double.isFinite, double.rounded() == double, abs(double) < 1e15 {
            return Int(double)
        }
        return nil
    }
}
