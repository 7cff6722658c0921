import Foundation

/// The text conventions of AUTOMATIC1111's "infotext" (the PNG `parameters` chunk), reproduced
/// from `modules/processing.py` `create_infotext` and `modules/infotext_utils.py`
/// (`quote`, `unquote`, `parse_generation_parameters`). The Python behaviours that matter are
/// spelled out here because they decide whether a value round-trips:
///
/// - a value is written as `json.dumps(v, ensure_ascii=False)` when `str(v)` contains `,`, `:`
///   or a newline, and verbatim otherwise;
/// - floats are written as Python's `repr` ("7.0", "0.8", "1e-05");
/// - the settings line is split with the regex `re_param` below, and a quoted value is decoded
///   with `json.loads` (kept verbatim if that fails);
/// - lines are trimmed with `str.strip()`, whose whitespace set differs slightly from Swift's.
enum A1111Infotext {
    /// `re_param_code` from A1111, unchanged.
    static let parameterPattern = #"\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)"#

    private static let parameterRegex: NSRegularExpression? = try? NSRegularExpression(pattern: parameterPattern)

    /// `re_param.findall(line)`: (key, raw value) pairs in order.
    static func findParameters(_ line: String) -> [(key: String, value: String)] {
        guard let regex = parameterRegex else { return [] }
        let ns = line as NSString
        return regex.matches(in: line, range: NSRange(location: 0, length: ns.length)).map { m in
            (ns.substring(with: m.range(at: 1)), ns.substring(with: m.range(at: 2)))
        }
    }

    /// A1111's `quote`: JSON-encode when the text holds a comma, colon or newline.
    static func quote(_ text: String) -> String {
        guard text.contains(",") || text.contains(":") || text.unicodeScalars.contains("\n") else { return text }
        return jsonString(text)
    }

    /// A1111's `unquote`: decode a `"…"` value as a JSON string; anything else (or invalid JSON)
    /// comes back unchanged.
    static func unquote(_ text: String) -> String {
        guard text.unicodeScalars.count >= 2, text.unicodeScalars.first == "\"", text.unicodeScalars.last == "\"" else {
            return text
        }
        return decodeJSONString(text) ?? text
    }

    /// `json.dumps(text, ensure_ascii=False)`.
    static func jsonString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if scalar.value < 0x20 {
                    out += String(format: "\\u%04x", scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    /// `json.loads` restricted to one string literal filling the whole text; nil where Python
    /// would raise (unescaped control characters, bad escapes, trailing data).
    static func decodeJSONString(_ text: String) -> String? {
        let scalars = Array(text.unicodeScalars)
        guard scalars.count >= 2, scalars[0] == "\"" else { return nil }
        var out = String.UnicodeScalarView()
        var i = 1
        func hex4(_ at: Int) -> UInt32? {
            guard at + 4 <= scalars.count else { return nil }
            var v: UInt32 = 0
            for s in scalars[at..<(at + 4)] {
                guard let d = Character(s).hexDigitValue else { return nil }
                v = v << 4 | UInt32(d)
            }
            return v
        }
        while i < scalars.count {
            let s = scalars[i]
            if s == "\"" {
                return i == scalars.count - 1 ? String(out) : nil
            }
            if s.value < 0x20 { return nil }
            if s != "\\" {
                out.append(s)
                i += 1
                continue
            }
            guard i + 1 < scalars.count else { return nil }
            let e = scalars[i + 1]
            i += 2
            switch e {
            case "\"": out.append("\"")
            case "\\": out.append("\\")
            case "/": out.append("/")
            case "b": out.append("\u{08}")
            case "f": out.append("\u{0C}")
            case "n": out.append("\n")
            case "r": out.append("\r")
            case "t": out.append("\t")
            case "u":
                guard var code = hex4(i) else { return nil }
                i += 4
                if (0xD800...0xDBFF).contains(code), i + 1 < scalars.count, scalars[i] == "\\", scalars[i + 1] == "u",
                   let low = hex4(i + 2), (0xDC00...0xDFFF).contains(low) {
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    i += 6
                }
                // Python keeps a lone surrogate; a Swift string cannot, so it becomes U+FFFD.
                out.append(Unicode.Scalar(code) ?? "\u{FFFD}")
            default:
                return nil
            }
        }
        return nil
    }

    /// Python's `str.isspace` set: Unicode White_Space plus the information separators U+001C–U+001F.
    static func isPythonSpace(_ s: Unicode.Scalar) -> Bool {
        s.properties.isWhitespace || (0x1C...0x1F).contains(s.value)
    }

    /// Python's `str.strip()`, on Unicode scalars (so "\r\n" is two characters, as in Python).
    static func pythonStrip(_ text: String) -> String {
        let scalars = Array(text.unicodeScalars)
        var start = 0, end = scalars.count
        while start < end, isPythonSpace(scalars[start]) { start += 1 }
        while end > start, isPythonSpace(scalars[end - 1]) { end -= 1 }
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars[start..<end])
        return String(view)
    }

    /// Python's `str.split("\n")`: splits on U+000A only, keeping empty pieces.
    static func splitLines(_ text: String) -> [String] {
        var lines = [String]()
        var current = String.UnicodeScalarView()
        for s in text.unicodeScalars {
            if s == "\n" {
                lines.append(String(current))
                current = String.UnicodeScalarView()
            } else {
                current.append(s)
            }
        }
        lines.append(String(current))
        return lines
    }

    /// Python's `repr(float)`: shortest round-trip digits, fixed notation for decimal exponents
    /// from -4 to 15 (always with a fractional part), scientific otherwise ("1e-05", "1e+16").
    static func pythonFloat(_ value: Double) -> String {
        if value.isNaN { return "nan" }
        if value.isInfinite { return value < 0 ? "-inf" : "inf" }
        let sign = value.sign == .minus ? "-" : ""
        // Swift's description also prints the shortest round-trip digits; only the layout differs.
        var text = Swift.abs(value).description
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            exponent = Int(text[text.index(after: e)...]) ?? 0
            text = String(text[..<e])
        }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        let intPart = String(parts[0])
        let fracPart = parts.count > 1 ? String(parts[1]) : ""
        var digits = intPart + fracPart
        var decimalPoint = intPart.count + exponent  // value = 0.digits × 10^decimalPoint
        while digits.first == "0" {
            digits.removeFirst()
            decimalPoint -= 1
        }
        while digits.last == "0" { digits.removeLast() }
        if digits.isEmpty { return sign + "0.0" }

        if decimalPoint > -4 && decimalPoint <= 16 {
            if decimalPoint <= 0 {
                return sign + "0." + String(repeating: "0", count: -decimalPoint) + digits
            }
            if decimalPoint >= digits.count {
                return sign + digits + String(repeating: "0", count: decimalPoint - digits.count) + ".0"
            }
            let cut = digits.index(digits.startIndex, offsetBy: decimalPoint)
            return sign + digits[..<cut] + "." + digits[cut...]
        }
        let e = decimalPoint - 1
        let mantissa = digits.count > 1 ? "\(digits.prefix(1)).\(digits.dropFirst())" : digits
        let exponentText = String(format: "%02d", Swift.abs(e))
        return sign + mantissa + "e" + (e < 0 ? "-" : "+") + exponentText
    }
}
