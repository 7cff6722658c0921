/// A registered special ("added") token: its text, its id, and whether Hugging Face matches it
/// before or after normalisation.
struct SpecialToken: Sendable, Equatable {
    var content: String
    var id: Int
    /// `true`: matched in the NFC-normalised, lowercased text (so `<|ENDOFTEXT|>` also matches).
    /// `false`: matched in the prompt as typed, before any cleaning. SD2's pad token `"!"` is
    /// non-normalised; its BOS/EOS are normalised.
    var normalized: Bool
}

/// Cuts text at occurrences of special tokens, the way Hugging Face's added-token matcher does:
/// leftmost match first and, at one position, the longest token.
///
/// Why this matters for SD2: the pad token `"!"` is a registered special token, so every literal
/// `!` in a prompt is cut out and becomes the pad id 0 instead of being BPE-encoded.
struct SpecialTokenSplitter: Sendable {
    /// A piece of the input: plain text (a range of scalar offsets) or a special token id.
    enum Piece: Equatable {
        case text(Range<Int>)
        case special(Int)
    }

    private let tokens: [(scalars: [Unicode.Scalar], id: Int)]
    /// First scalar of each token (a handful; a linear scan beats hashing).
    private let firstScalars: [Unicode.Scalar]

    init(_ specials: [SpecialToken]) {
        // Longest first, so the first hit at a position is the longest one.
        tokens = specials
            .map { (scalars: Array($0.content.unicodeScalars), id: $0.id) }
            .filter { !$0.scalars.isEmpty }
            .sorted { $0.scalars.count > $1.scalars.count }
        firstScalars = Array(Set(tokens.map { $0.scalars[0] }))
    }

    var isEmpty: Bool { tokens.isEmpty }

    /// Splits `text[range]` into text pieces and special tokens, in order. Empty text pieces are
    /// dropped.
    func split(_ text: [Unicode.Scalar], in range: Range<Int>) -> [Piece] {
        if tokens.isEmpty { return range.isEmpty ? [] : [.text(range)] }
        var pieces: [Piece] = []
        var textStart = range.lowerBound
        var i = range.lowerBound
        outer: while i < range.upperBound {
            if firstScalars.contains(text[i]) {
                for token in tokens where i + token.scalars.count <= range.upperBound {
                    var matches = true
                    for (k, scalar) in token.scalars.enumerated() where text[i + k] != scalar {
                        matches = false
                        break
                    }
                    if matches {
                        if textStart < i { pieces.append(.text(textStart..<i)) }
                        pieces.append(.special(token.id))
                        i += token.scalars.count
                        textStart = i
                        continue outer
                    }
                }
            }
            i += 1
        }
        if textStart < range.upperBound { pieces.append(.text(textStart..<range.upperBound)) }
        return pieces
    }
}
