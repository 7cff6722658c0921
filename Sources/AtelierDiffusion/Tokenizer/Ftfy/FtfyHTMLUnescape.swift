/// ftfy's `fixes.unescape_html`: decodes HTML entities, but more cautiously than `html.unescape`.
///
/// The rules (ftfy 6.3.1):
/// - Only `&name;` / `&#digits;` / `&#xhex;` with 1…24 ASCII letters or digits and a closing
///   semicolon are candidates (`HTML_ENTITY_RE = &#?[0-9A-Za-z]{1,24};`); `&amp` without `;` stays.
/// - Named entities come from the HTML5 table, plus ALL-CAPS forms of lowercase names
///   (`&EACUTE;` → `É`); unknown names stay as typed.
/// - Numeric references follow Python's `html.unescape` (Windows-1252 for 0x80…0x9F, U+FFFD for
///   surrogates and out-of-range numbers, nothing for non-characters), except that a reference
///   whose decoded text contains `;` is left alone, so `&#59;` stays `&#59;`.
/// - `fix_text` skips this step for a line containing `<`, and for every line after it (the
///   input is probably real HTML then).
enum FtfyHTMLUnescape {
    static func unescape(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        guard text.contains("&") else { return text }
        var out = [Unicode.Scalar]()
        out.reserveCapacity(text.count)
        let n = text.count
        var i = 0
        while i < n {
            if text[i] == "&" {
                var j = i + 1
                let numeric = j < n && text[j] == "#"
                if numeric { j += 1 }
                let bodyStart = j
                while j < n, j - bodyStart < 25, isASCIIAlphanumeric(text[j]) { j += 1 }
                let length = j - bodyStart
                if (1...24).contains(length), j < n, text[j] == ";" {
                    let body = String(String.UnicodeScalarView(text[bodyStart..<j]))
                    if let replacement = resolve(body: body, numeric: numeric) {
                        out.append(contentsOf: replacement)
                    } else {
                        out.append(contentsOf: text[i...j])
                    }
                    i = j + 1
                    continue
                }
            }
            out.append(text[i])
            i += 1
        }
        return out
    }

    /// The replacement for `&body;` / `&#body;`, or nil to keep the match as typed.
    private static func resolve(body: String, numeric: Bool) -> [Unicode.Scalar]? {
        guard numeric else { return FtfyData.htmlEntities[body] }
        let scalars = Array(body.unicodeScalars)
        let value: UInt64?
        if scalars.allSatisfy({ ("0"..."9").contains($0) }) {
            value = parse(scalars[...], radix: 10)
        } else if let first = scalars.first, first == "x" || first == "X", scalars.count > 1,
                  scalars.dropFirst().allSatisfy(isHexDigit) {
            value = parse(scalars.dropFirst(), radix: 16)
        } else {
            // html.unescape decodes only a prefix (or nothing); the leftover `;` makes ftfy keep it.
            return nil
        }
        let decoded = characterReference(value)
        return decoded.contains(";") ? nil : decoded
    }

    /// Python `html._replace_charref` for a number (nil: too large for 64 bits).
    private static func characterReference(_ value: UInt64?) -> [Unicode.Scalar] {
        guard let value, value <= 0x10FFFF else { return ["\u{FFFD}"] }
        let code = UInt32(value)
        if let fixed = FtfyData.invalidCharrefs[code] { return fixed }
        if (0xD800...0xDFFF).contains(code) { return ["\u{FFFD}"] }
        if FtfyData.invalidCodepoints.contains(code) { return [] }
        return Unicode.Scalar(code).map { [$0] } ?? ["\u{FFFD}"]
    }

    private static func parse(_ digits: ArraySlice<Unicode.Scalar>, radix: UInt64) -> UInt64? {
        var value: UInt64 = 0
        for digit in digits {
            guard let d = hexValue(digit) else { return nil }
            let (m, o1) = value.multipliedReportingOverflow(by: radix)
            let (s, o2) = m.addingReportingOverflow(d)
            if o1 || o2 { return nil }
            value = s
        }
        return value
    }

    private static func hexValue(_ s: Unicode.Scalar) -> UInt64? {
        switch s.value {
        case 0x30...0x39: return UInt64(s.value - 0x30)
        case 0x41...0x46: return UInt64(s.value - 0x41 + 10)
        case 0x61...0x66: return UInt64(s.value - 0x61 + 10)
        default: return nil
        }
    }

    private static func isHexDigit(_ s: Unicode.Scalar) -> Bool { hexValue(s) != nil }

    private static func isASCIIAlphanumeric(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        return (0x30...0x39).contains(v) || (0x41...0x5A).contains(v) || (0x61...0x7A).contains(v)
    }
}
