import Foundation

/// The CLIP byte-level BPE tokenizer of Stable Diffusion 2, matching Hugging Face
/// `CLIPTokenizer(prompt, padding="max_length", max_length=77, truncation=True)` as diffusers calls
/// it: `[BOS] + first 75 content ids + [EOS] + pad ids` (77 ids in all).
///
/// What it reproduces, and why each point matters for parity:
/// - **Special-token splitting.** Registered special tokens are cut out of the prompt before any
///   BPE. SD2's pad token is `"!"` (id 0), so *every literal `!` becomes id 0*, and padding is 0,
///   not EOS. `<|startoftext|>` / `<|endoftext|>` typed in a prompt (any case) become 49406/49407.
/// - **Cleaning** (`CLIPTextCleaning`): by default what transformers 5 does (NFC, lowercase, no
///   ftfy); `.ftfy` gives the transformers-4 slow tokenizer's `ftfy.fix_text` cleaning.
/// - **Pre-tokenisation** with CLIP's regex (digits one per token), **byte-level BPE** with `</w>`
///   on each word's last symbol, lowest merge rank first.
///
/// Thread-safe; encoded words are cached, so repeated prompts are cheap.
public final class BPETokenizer: @unchecked Sendable {
    /// SD2's text length: BOS + 75 content tokens + EOS.
    public static let defaultMaxLength = 77

    /// Length of every `encode` result.
    public let maxLength: Int
    public let bosTokenID: Int
    public let eosTokenID: Int
    /// The id used to fill the tail (0 = `"!"` for SD2; 49407 for SD1-style folders).
    public let padTokenID: Int
    public let cleaning: CLIPTextCleaning
    /// Number of vocabulary entries (49408 for CLIP).
    public var vocabularySize: Int { model.tokens.count }

    private let model: BPEModel
    /// Special tokens matched in the prompt as typed (transformers 5: the non-normalised ones; the
    /// slow transformers-4 tokenizer matches all of them this way).
    private let rawSplitter: SpecialTokenSplitter
    /// Special tokens matched after NFC + lowercase (transformers 5 only).
    private let normalizedSplitter: SpecialTokenSplitter
    private let startOfTextID: Int?
    private let endOfTextID: Int?
    private let cache = WordCache()

    /// Loads a diffusers `tokenizer/` folder (`vocab.json` + `merges.txt` + `special_tokens_map.json`
    /// + `tokenizer_config.json`), a transformers-5 folder with `tokenizer.json`, or a model folder
    /// that contains `tokenizer/`.
    ///
    /// - Parameters:
    ///   - maxLength: output length; defaults to the folder's `model_max_length`, else 77.
    ///   - cleaning: text cleaning flavour; `.transformers` matches the pinned reference.
    /// - Throws: `TokenizerError` naming the missing or corrupt file.
    public convenience init(folder: URL, maxLength: Int? = nil, cleaning: CLIPTextCleaning = .transformers) throws {
        let definition = try TokenizerFolder.load(folder)
        try self.init(definition: definition, maxLength: maxLength ?? definition.modelMaxLength ?? Self.defaultMaxLength,
                      cleaning: cleaning)
    }

    /// The SD2 tokenizer built from the bundled CLIP vocabulary (for single-file checkpoints).
    /// Identical to the `tokenizer/` folder of the stabilityai SD2 repositories.
    public static func bundled(
        maxLength: Int = defaultMaxLength, cleaning: CLIPTextCleaning = .transformers
    ) throws -> BPETokenizer {
        try BPETokenizer(definition: BundledCLIPVocabulary.definition.get(), maxLength: maxLength, cleaning: cleaning)
    }

    /// Loads `folder` when given (and it exists), else the bundled vocabulary: the choice a pipeline
    /// makes for a diffusers folder vs. a single-file checkpoint.
    public static func load(
        folder: URL?, maxLength: Int? = nil, cleaning: CLIPTextCleaning = .transformers
    ) throws -> BPETokenizer {
        if let folder { return try BPETokenizer(folder: folder, maxLength: maxLength, cleaning: cleaning) }
        return try bundled(maxLength: maxLength ?? defaultMaxLength, cleaning: cleaning)
    }

    init(definition: TokenizerDefinition, maxLength: Int, cleaning: CLIPTextCleaning) throws {
        guard maxLength >= 2 else { throw TokenizerError.invalidMaxLength(maxLength) }
        self.maxLength = maxLength
        self.cleaning = cleaning
        model = definition.model
        bosTokenID = definition.bos.id
        eosTokenID = definition.eos.id
        padTokenID = definition.pad.id
        switch cleaning {
        case .transformers:
            rawSplitter = SpecialTokenSplitter(definition.specials.filter { !$0.normalized })
            normalizedSplitter = SpecialTokenSplitter(definition.specials.filter { $0.normalized })
        case .ftfy:
            rawSplitter = SpecialTokenSplitter(definition.specials)
            normalizedSplitter = SpecialTokenSplitter([])
        }
        startOfTextID = model.vocabulary["<|startoftext|>"]
        endOfTextID = model.vocabulary["<|endoftext|>"]
    }

    /// Token ids for one prompt: `[BOS] + content (truncated to maxLength − 2) + [EOS]`, padded
    /// with `padTokenID` to exactly `maxLength` ids.
    public func encode(_ prompt: String) -> [Int] {
        var ids = [Int]()
        ids.reserveCapacity(maxLength)
        ids.append(bosTokenID)
        appendContentIDs(of: prompt, to: &ids, limit: maxLength - 2)
        ids.append(eosTokenID)
        while ids.count < maxLength { ids.append(padTokenID) }
        return ids
    }

    /// Several prompts at once (e.g. `[negative, positive]`).
    public func encode(_ prompts: [String]) -> [[Int]] {
        prompts.map { encode($0) }
    }

    /// The content ids of a prompt without BOS/EOS, padding or truncation; `count > maxLength − 2`
    /// means `encode` truncates (diffusers logs a warning in that case).
    public func contentTokenIDs(_ prompt: String) -> [Int] {
        var ids = [Int]()
        appendContentIDs(of: prompt, to: &ids, limit: .max)
        return ids
    }

    /// The vocabulary entry of an id (`"cat</w>"`, `"!"`…), for diagnostics.
    public func token(forID id: Int) -> String? {
        model.tokens.indices.contains(id) ? model.tokens[id] : nil
    }

    // MARK: pipeline

    private func appendContentIDs(of prompt: String, to ids: inout [Int], limit: Int) {
        let target = limit == .max ? Int.max : ids.count + limit
        let scalars = Array(prompt.unicodeScalars)
        for piece in rawSplitter.split(scalars, in: 0..<scalars.count) {
            if ids.count >= target { break }
            switch piece {
            case .special(let id):
                ids.append(id)
            case .text(let range):
                let cleaned = cleaning.clean(Array(scalars[range]))
                for inner in normalizedSplitter.split(cleaned, in: 0..<cleaned.count) {
                    if ids.count >= target { break }
                    switch inner {
                    case .special(let id):
                        ids.append(id)
                    case .text(let innerRange):
                        appendWords(cleaned, range: innerRange, to: &ids, target: target)
                    }
                }
            }
        }
        if ids.count > target { ids.removeLast(ids.count - target) }
    }

    private func appendWords(_ text: [Unicode.Scalar], range: Range<Int>, to ids: inout [Int], target: Int) {
        CLIPPreTokenizer.forEachPiece(in: text, range: range, caseInsensitive: cleaning == .ftfy,
                                      unicodeVersion: cleaning.regexUnicodeVersion) { piece in
            switch piece {
            case .word(let r):
                appendBPE(text[r], to: &ids)
            case .specialLiteral(let r, let isStart):
                let literalID = isStart ? startOfTextID : endOfTextID
                if cleaning == .ftfy, let literalID {
                    // The slow tokenizer's BPE cache maps these two words to themselves.
                    ids.append(literalID)
                } else {
                    // tokenizers' ByteLevel step re-splits the word GPT-2 style: "<|", name, "|>".
                    let name = (r.lowerBound + 2)..<(r.upperBound - 2)
                    appendBPE(text[r.lowerBound..<name.lowerBound], to: &ids)
                    appendBPE(text[name], to: &ids)
                    appendBPE(text[name.upperBound..<r.upperBound], to: &ids)
                }
            }
            return ids.count < target
        }
    }

    private func appendBPE(_ word: ArraySlice<Unicode.Scalar>, to ids: inout [Int]) {
        var bytes = [UInt8]()
        bytes.reserveCapacity(word.count)
        for scalar in word {
            let v = scalar.value
            switch v {
            case 0..<0x80:
                bytes.append(UInt8(v))
            case 0x80..<0x800:
                bytes.append(UInt8(0xC0 | v >> 6))
                bytes.append(UInt8(0x80 | v & 0x3F))
            case 0x800..<0x10000:
                bytes.append(UInt8(0xE0 | v >> 12))
                bytes.append(UInt8(0x80 | v >> 6 & 0x3F))
                bytes.append(UInt8(0x80 | v & 0x3F))
            default:
                bytes.append(UInt8(0xF0 | v >> 18))
                bytes.append(UInt8(0x80 | v >> 12 & 0x3F))
                bytes.append(UInt8(0x80 | v >> 6 & 0x3F))
                bytes.append(UInt8(0x80 | v & 0x3F))
            }
        }
        if let cached = cache[bytes] {
            ids.append(contentsOf: cached.lazy.map(Int.init))
            return
        }
        let encoded = model.encodeWord(bytes)
        cache[bytes] = encoded
        ids.append(contentsOf: encoded.lazy.map(Int.init))
    }
}

/// Word → BPE ids, shared across threads.
///
/// Why bounded: prompts are open-ended user input, so the cache is simply emptied when it grows
/// past `capacity` rather than growing without limit.
private final class WordCache: @unchecked Sendable {
    private var storage: [[UInt8]: [Int32]] = [:]
    private let lock = NSLock()
    private let capacity = 100_000

    subscript(key: [UInt8]) -> [Int32]? {
        get {
            lock.lock()
            defer { lock.unlock() }
            return storage[key]
        }
        set {
            lock.lock()
            defer { lock.unlock() }
            if storage.count >= capacity { storage.removeAll(keepingCapacity: true) }
            storage[key] = newValue
        }
    }
}
