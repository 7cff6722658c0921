/// The SD2 tokenizer rebuilt from the embedded CLIP merge list, for single-file checkpoints that
/// carry no `tokenizer/` folder.
///
/// Why the vocabulary is derived rather than stored: CLIP's `vocab.json` is fully determined by the
/// merges (256 byte symbols, the same 256 with `</w>`, one entry per merge, then
/// `<|startoftext|>` = 49406 and `<|endoftext|>` = 49407), so shipping the merges alone halves
/// the embedded data. The special tokens are those of the SD2 repositories: BOS/EOS normalised,
/// pad `"!"` = id 0 non-normalised.
enum BundledCLIPVocabulary {
    static let startOfText = "<|startoftext|>"
    static let endOfText = "<|endoftext|>"
    static let padToken = "!"
    /// 256 + 256 + 48,894 + 2.
    static let vocabularySize = 49_408

    /// The parsed definition, built once per process (about 30 ms in a release build).
    static let definition: Result<TokenizerDefinition, TokenizerError> = {
        do {
            return .success(try makeDefinition())
        } catch let error as TokenizerError {
            return .failure(error)
        } catch {
            return .failure(.inconsistentVocabulary(source: "bundled CLIP vocabulary", detail: "\(error)"))
        }
    }()

    private static func makeDefinition() throws -> TokenizerDefinition {
        let source = "bundled CLIP vocabulary"
        let merges = try TokenizerFolder.parseMerges(BundledCLIPMerges.text, path: source)
        guard merges.count == BundledCLIPMerges.count else {
            throw TokenizerError.inconsistentVocabulary(
                source: source, detail: "expected \(BundledCLIPMerges.count) merges, found \(merges.count)")
        }
        var tokens: [String] = []
        tokens.reserveCapacity(vocabularySize)
        let bytes = ByteEncoder.vocabularyOrder
        tokens.append(contentsOf: bytes.map(ByteEncoder.symbol))
        tokens.append(contentsOf: bytes.map { ByteEncoder.symbol($0) + BPEModel.endOfWord })
        tokens.append(contentsOf: merges.map { $0.0 + $0.1 })
        tokens.append(startOfText)
        tokens.append(endOfText)
        var vocabulary = [String: Int](minimumCapacity: tokens.count)
        for (id, token) in tokens.enumerated() where vocabulary[token] == nil { vocabulary[token] = id }
        guard vocabulary.count == vocabularySize else {
            throw TokenizerError.inconsistentVocabulary(
                source: source, detail: "expected \(vocabularySize) distinct entries, found \(vocabulary.count)")
        }
        let model = try BPEModel(vocabulary: vocabulary, merges: merges, source: source)
        let bos = SpecialToken(content: startOfText, id: tokens.count - 2, normalized: true)
        let eos = SpecialToken(content: endOfText, id: tokens.count - 1, normalized: true)
        let pad = SpecialToken(content: padToken, id: vocabulary[padToken] ?? 0, normalized: false)
        return TokenizerDefinition(model: model, bos: bos, eos: eos, pad: pad, specials: [bos, eos, pad],
                                   modelMaxLength: 77)
    }
}
