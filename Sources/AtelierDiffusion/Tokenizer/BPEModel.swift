/// Byte-level BPE over integer symbol ids: the vocabulary, the merge ranks, and the merge loop.
///
/// Why integers: the reference implementations merge strings, but every merge result is itself a
/// vocabulary entry, so a word can be kept as vocabulary ids from the start and each merge becomes
/// one dictionary lookup on a packed `(left, right)` pair. The result is identical to CLIP's
/// `bpe()` (lowest-rank pair first, all its occurrences left to right, `</w>` on the last symbol).
struct BPEModel: Sendable {
    /// Vocabulary entry → id, as in `vocab.json`.
    let vocabulary: [String: Int]
    /// id → vocabulary entry (for diagnostics and `token(forID:)`).
    let tokens: [String]
    /// Number of merges loaded.
    let mergeCount: Int

    /// Symbol id of each byte inside a word (`ā`, `a`, …).
    private let byteSymbol: [Int32]
    /// Symbol id of each byte at the end of a word (`a</w>`, …).
    private let finalByteSymbol: [Int32]
    /// `left << 32 | right` → `rank << 32 | merged id`.
    private let merges: [UInt64: UInt64]

    static let endOfWord = "</w>"

    /// Builds the model from a vocabulary and the merge list in rank order.
    /// - Throws: `TokenizerError.inconsistentVocabulary` when a byte symbol, a merge part or a
    ///   merge result is missing from the vocabulary (a truncated or mismatched pair of files).
    init(vocabulary: [String: Int], merges mergeList: [(String, String)], source: String) throws {
        self.vocabulary = vocabulary
        var tokens = [String](repeating: "", count: (vocabulary.values.max() ?? -1) + 1)
        for (token, id) in vocabulary where id >= 0 { tokens[id] = token }
        self.tokens = tokens

        var byteSymbol = [Int32](repeating: 0, count: 256)
        var finalByteSymbol = [Int32](repeating: 0, count: 256)
        for byte in 0..<256 {
            let symbol = ByteEncoder.symbol(UInt8(byte))
            guard let inner = vocabulary[symbol], let final = vocabulary[symbol + Self.endOfWord] else {
                throw TokenizerError.inconsistentVocabulary(
                    source: source,
                    detail: "byte symbol \(symbol.debugDescription) (byte 0x\(String(byte, radix: 16))) or its "
                        + "\"</w>\" form is missing; this is not a CLIP byte-level BPE vocabulary")
            }
            byteSymbol[byte] = Int32(inner)
            finalByteSymbol[byte] = Int32(final)
        }
        self.byteSymbol = byteSymbol
        self.finalByteSymbol = finalByteSymbol

        var table = [UInt64: UInt64](minimumCapacity: mergeList.count)
        for (rank, (left, right)) in mergeList.enumerated() {
            guard let l = vocabulary[left], let r = vocabulary[right], let merged = vocabulary[left + right] else {
                throw TokenizerError.inconsistentVocabulary(
                    source: source,
                    detail: "merge #\(rank + 1) \"\(left) \(right)\" uses or produces a symbol that is not in "
                        + "the vocabulary; vocab.json and merges.txt do not belong together")
            }
            // Later duplicates win, as in Python's dict(zip(merges, range(...))) and in tokenizers.
            table[UInt64(l) << 32 | UInt64(r)] = UInt64(rank) << 32 | UInt64(merged)
        }
        self.merges = table
        self.mergeCount = mergeList.count
    }

    /// BPE-encodes one pre-tokenized word given as UTF-8 bytes.
    func encodeWord(_ bytes: [UInt8]) -> [Int32] {
        guard let last = bytes.last else { return [] }
        var word = [Int32]()
        word.reserveCapacity(bytes.count)
        for byte in bytes.dropLast() { word.append(byteSymbol[Int(byte)]) }
        word.append(finalByteSymbol[Int(last)])

        var scratch = [Int32]()
        scratch.reserveCapacity(word.count)
        while word.count > 1 {
            // Find the adjacent pair with the lowest merge rank.
            var bestRank = UInt64.max
            var bestPair: UInt64 = 0
            var bestMerged: Int32 = 0
            for i in 0..<(word.count - 1) {
                let key = UInt64(UInt32(bitPattern: word[i])) << 32 | UInt64(UInt32(bitPattern: word[i + 1]))
                if let entry = merges[key], entry >> 32 < bestRank {
                    bestRank = entry >> 32
                    bestPair = key
                    bestMerged = Int32(truncatingIfNeeded: entry & 0xFFFF_FFFF)
                }
            }
            if bestRank == .max { break }
            let first = Int32(bitPattern: UInt32(bestPair >> 32))
            let second = Int32(bitPattern: UInt32(bestPair & 0xFFFF_FFFF))
            // Merge every occurrence, left to right, without overlaps.
            scratch.removeAll(keepingCapacity: true)
            var i = 0
            while i < word.count {
                if i + 1 < word.count, word[i] == first, word[i + 1] == second {
                    scratch.append(bestMerged)
                    i += 2
                } else {
                    scratch.append(word[i])
                    i += 1
                }
            }
            swap(&word, &scratch)
        }
        return word
    }
}
