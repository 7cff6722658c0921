/// CLIP's pre-tokenisation regex, as a hand-written scanner over Unicode scalars:
///
///     <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
///
/// Why a scanner: Swift `Regex` is far slower, and a backtracking regex with ordered alternatives is
/// easy to emulate exactly: at each position try the alternatives in order and take the first that
/// matches; text matched by none (whitespace) is dropped. Note `[\p{N}]` has no `+`: every digit
/// is its own word, so "1024" is four tokens.
enum CLIPPreTokenizer {
    /// One match of the regex.
    enum Piece: Equatable {
        /// A word to BPE-encode.
        case word(Range<Int>)
        /// A literal `<|startoftext|>` / `<|endoftext|>` in the cleaned text. What it becomes depends
        /// on the tokenizer flavour (see `BPETokenizer`).
        case specialLiteral(Range<Int>, isStartOfText: Bool)
    }

    enum ScalarClass: UInt8 {
        case whitespace, letter, number, other
    }

    static let startOfText: [Unicode.Scalar] = Array("<|startoftext|>".unicodeScalars)
    static let endOfText: [Unicode.Scalar] = Array("<|endoftext|>".unicodeScalars)

    private static let asciiClasses: [ScalarClass] = (0..<128).map { value -> ScalarClass in
        switch value {
        case 0x09...0x0D, 0x20: return .whitespace
        case 0x30...0x39: return .number
        case 0x41...0x5A, 0x61...0x7A: return .letter
        default: return .other
        }
    }

    /// Classifies a scalar for the regex: `\s` is the Unicode White_Space property (the same set in
    /// Oniguruma, which tokenizers uses, and in Python's `regex` module). Letters and numbers newer
    /// than the regex engine's Unicode `version` are unassigned to it, hence "other".
    @inline(__always)
    static func classify(_ scalar: Unicode.Scalar, version: UnicodeScalarText.Version) -> ScalarClass {
        if scalar.value < 128 { return asciiClasses[Int(scalar.value)] }
        if UnicodeScalarText.isWhiteSpace(scalar) { return .whitespace }
        let cls: ScalarClass
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            cls = .letter
        case .decimalNumber, .letterNumber, .otherNumber:
            cls = .number
        default:
            return .other
        }
        return UnicodeScalarText.isNewer(scalar, than: version) ? .other : cls
    }

    /// Calls `body` with each piece of `text[range]` in order; stops early when `body` returns false.
    ///
    /// - Parameter caseInsensitive: the slow transformers-4 tokenizer compiles the regex with
    ///   `IGNORECASE` (Python `regex` module). On lowercased text this has two visible effects,
    ///   found by checking every code point: `'ſ` (long s) matches `'s`, and U+0345 COMBINING
    ///   GREEK YPOGEGRAMMENI (which case-folds to ι) matches none of the classes, so it is
    ///   dropped like whitespace.
    static func forEachPiece(
        in text: [Unicode.Scalar], range: Range<Int>, caseInsensitive: Bool,
        unicodeVersion: UnicodeScalarText.Version, _ body: (Piece) -> Bool
    ) {
        @inline(__always) func classify(_ scalar: Unicode.Scalar) -> ScalarClass {
            caseInsensitive && scalar.value == 0x345 ? .whitespace : Self.classify(scalar, version: unicodeVersion)
        }
        var i = range.lowerBound
        let end = range.upperBound
        while i < end {
            let scalar = text[i]
            let cls = classify(scalar)
            if cls == .whitespace {
                i += 1
                continue
            }
            let piece: Piece
            if scalar == "<", let special = specialLiteral(in: text, at: i, end: end) {
                piece = special
            } else if scalar == "'", let length = contractionLength(in: text, at: i, end: end, caseInsensitive: caseInsensitive) {
                piece = .word(i..<(i + length))
            } else {
                switch cls {
                case .letter:
                    var j = i + 1
                    while j < end, classify(text[j]) == .letter { j += 1 }
                    piece = .word(i..<j)
                case .number:
                    piece = .word(i..<(i + 1))
                default:
                    var j = i + 1
                    while j < end, classify(text[j]) == .other { j += 1 }
                    piece = .word(i..<j)
                }
            }
            guard body(piece) else { return }
            switch piece {
            case .word(let r), .specialLiteral(let r, _): i = r.upperBound
            }
        }
    }

    private static func specialLiteral(in text: [Unicode.Scalar], at i: Int, end: Int) -> Piece? {
        if hasPrefix(text, at: i, end: end, startOfText) {
            return .specialLiteral(i..<(i + startOfText.count), isStartOfText: true)
        }
        if hasPrefix(text, at: i, end: end, endOfText) {
            return .specialLiteral(i..<(i + endOfText.count), isStartOfText: false)
        }
        return nil
    }

    /// `'s|'t|'re|'ve|'m|'ll|'d`.
    private static func contractionLength(
        in text: [Unicode.Scalar], at i: Int, end: Int, caseInsensitive: Bool
    ) -> Int? {
        guard i + 1 < end else { return nil }
        let next = text[i + 1]
        switch next {
        case "s", "t", "m", "d":
            return 2
        case "\u{17F}" where caseInsensitive:  // ſ folds to s
            return 2
        case "r", "v":
            return i + 2 < end && text[i + 2] == "e" ? 3 : nil
        case "l":
            return i + 2 < end && text[i + 2] == "l" ? 3 : nil
        default:
            return nil
        }
    }

    private static func hasPrefix(_ text: [Unicode.Scalar], at i: Int, end: Int, _ prefix: [Unicode.Scalar]) -> Bool {
        guard i + prefix.count <= end else { return false }
        for k in 0..<prefix.count where text[i + k] != prefix[k] { return false }
        return true
    }
}
