/// A port of `ftfy.fix_text` (ftfy 6.3.1, default configuration), the text repair the slow
/// transformers-4 `CLIPTokenizer` applies when ftfy is installed.
///
/// Steps, repeated on each line until the line stops changing (code point equality):
/// HTML entities (`&amp;` → `&`, skipped once a `<` has been seen, see `FtfyHTMLUnescape`),
/// mojibake (`Ã©` → `é`, see `FtfyFixEncoding`), C1 controls → Windows-1252, Latin ligatures
/// (`ﬁ` → `fi`), full-width/half-width forms (`Ｆｕｌｌ` → `Full`, U+3000 → space), curly quotes
/// → straight, line breaks → `\n`, ANSI terminal escapes removed, control characters removed
/// (tab, LF, FF, CR kept), NFC.
enum FtfyFixText {
    /// ftfy's `max_decode_length`: longer lines are fixed in pieces of this many code points.
    static let maxDecodeLength = 1_000_000

    static func fixText(_ text: String) -> String {
        var out = String()
        out.unicodeScalars.append(contentsOf: fixText(Array(text.unicodeScalars)))
        return out
    }

    /// `ftfy.fix_text(text)`.
    static func fixText(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var out = [Unicode.Scalar]()
        out.reserveCapacity(text.count)
        var unescapeHTML = true  // config.unescape_html == "auto", until a segment contains "<"
        var position = 0
        while position < text.count {
            var lineBreak = position
            while lineBreak < text.count, text[lineBreak] != "\n" { lineBreak += 1 }
            var end = lineBreak < text.count ? lineBreak + 1 : text.count
            if end - position > maxDecodeLength { end = position + maxDecodeLength }
            let segment = Array(text[position..<end])
            if unescapeHTML && segment.contains("<") { unescapeHTML = false }
            out.append(contentsOf: fixSegment(segment, unescapeHTML: unescapeHTML))
            position = end
        }
        return out
    }

    /// `ftfy.fix_and_explain(segment)` without the explanation.
    static func fixSegment(_ segment: [Unicode.Scalar], unescapeHTML: Bool) -> [Unicode.Scalar] {
        // Printable ASCII (plus tab, LF, FF) without `&` is left unchanged by every step.
        if segment.allSatisfy({ (0x20...0x7E).contains($0.value) && $0 != "&" || $0 == "\t" || $0 == "\n" || $0 == "\u{C}" }) {
            return segment
        }
        var text = segment
        while true {
            let original = text
            if unescapeHTML { text = FtfyHTMLUnescape.unescape(text) }
            text = FtfyFixEncoding.fixEncoding(text)
            text = FtfyFixEncoding.fixC1Controls(text)
            text = fixLatinLigatures(text)
            text = fixCharacterWidth(text)
            text = uncurlQuotes(text)
            text = fixLineBreaks(text)
            // fix_surrogates: a Swift string cannot hold lone surrogates; nothing to do.
            text = removeTerminalEscapes(text)
            text = removeControlCharacters(text)
            text = UnicodeScalarText.nfc(text, version: .python311)
            if text == original { return text }
        }
    }

    // MARK: the simple fixers

    /// `chardata.LIGATURES`.
    private static let ligatures: [UInt32: String] = [
        0x132: "IJ", 0x133: "ij", 0x149: "\u{2BC}n",
        0x1F1: "DZ", 0x1F2: "Dz", 0x1F3: "dz", 0x1C4: "D\u{17D}", 0x1C5: "D\u{17E}", 0x1C6: "d\u{17E}",
        0x1C7: "LJ", 0x1C8: "Lj", 0x1C9: "lj", 0x1CA: "NJ", 0x1CB: "Nj", 0x1CC: "nj",
        0xFB00: "ff", 0xFB01: "fi", 0xFB02: "fl", 0xFB03: "ffi", 0xFB04: "ffl", 0xFB05: "\u{17F}t", 0xFB06: "st",
    ]

    static func fixLatinLigatures(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        guard text.contains(where: { (0x132...0x1F3).contains($0.value) || (0xFB00...0xFB06).contains($0.value) })
        else { return text }
        var out = [Unicode.Scalar]()
        for scalar in text {
            if let replacement = ligatures[scalar.value] {
                out.append(contentsOf: replacement.unicodeScalars)
            } else {
                out.append(scalar)
            }
        }
        return out
    }

    /// `chardata.WIDTH_MAP`: U+3000 and the NFKC forms of U+FF01…U+FFEF.
    static func fixCharacterWidth(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        guard text.contains(where: { $0.value == 0x3000 || (0xFF01...0xFFEF).contains($0.value) }) else { return text }
        var out = [Unicode.Scalar]()
        for scalar in text {
            if let replacement = FtfyData.widthMap[scalar.value] {
                out.append(contentsOf: replacement)
            } else {
                out.append(scalar)
            }
        }
        return out
    }

    /// `[\u02bc\u2018-\u201b]` → `'` and `[\u201c-\u201f]` → `"`.
    static func uncurlQuotes(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        text.map { scalar in
            switch scalar.value {
            case 0x2BC, 0x2018...0x201B: return "'"
            case 0x201C...0x201F: return "\""
            default: return scalar
            }
        }
    }

    /// CRLF, CR, U+2028, U+2029 and U+0085 → LF.
    static func fixLineBreaks(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var out = [Unicode.Scalar]()
        out.reserveCapacity(text.count)
        var i = 0
        while i < text.count {
            switch text[i].value {
            case 0x0D:
                out.append("\n")
                if i + 1 < text.count, text[i + 1] == "\n" { i += 1 }
            case 0x2028, 0x2029, 0x85:
                out.append("\n")
            default:
                out.append(text[i])
            }
            i += 1
        }
        return out
    }

    /// `ANSI_RE = \033\[((?:\d|;)*)([a-zA-Z])` removed (`\d` is any Unicode decimal digit).
    static func removeTerminalEscapes(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        guard text.contains("\u{1B}") else { return text }
        var out = [Unicode.Scalar]()
        var i = 0
        while i < text.count {
            if text[i] == "\u{1B}", i + 1 < text.count, text[i + 1] == "[" {
                var j = i + 2
                while j < text.count, text[j] == ";" || isDecimalDigit(text[j]) { j += 1 }
                if j < text.count, (0x41...0x5A).contains(text[j].value) || (0x61...0x7A).contains(text[j].value) {
                    i = j + 1
                    continue
                }
            }
            out.append(text[i])
            i += 1
        }
        return out
    }

    /// Python `re`'s `\d`: Unicode category Nd (in Python 3.11's Unicode 14.0).
    private static func isDecimalDigit(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.value < 0x80 { return (0x30...0x39).contains(scalar.value) }
        return scalar.properties.generalCategory == .decimalNumber && !UnicodeScalarText.isNewer(scalar, than: .python311)
    }

    /// `chardata.CONTROL_CHARS`: U+0000–U+0008, U+000B, U+000E–U+001F, U+007F, U+206A–U+206F,
    /// U+FEFF, U+FFF9–U+FFFC.
    static func removeControlCharacters(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        text.filter { scalar in
            switch scalar.value {
            case 0x00...0x08, 0x0B, 0x0E...0x1F, 0x7F, 0x206A...0x206F, 0xFEFF, 0xFFF9...0xFFFC: return false
            default: return true
            }
        }
    }
}
