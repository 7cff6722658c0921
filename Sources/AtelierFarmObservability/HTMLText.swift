/// Escaping for text placed in HTML: every string that came from a user or a worker (prompts,
/// worker names, model names, error messages, ids) goes through it before it reaches the status
/// page, in element content and in quoted attribute values alike.
public enum HTMLText {
    /// `text` with `& < > " '` replaced by character references, and control characters other
    /// than tab and newline dropped (they have no business on the page and some confuse parsers).
    public static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            case "\t", "\n": out.unicodeScalars.append(scalar)
            default:
                if scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) { continue }
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
