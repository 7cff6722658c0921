/// The two UTF-8 decoders ftfy uses when it reverses mojibake.
///
/// Why not `String(decoding:)`: that repairs invalid input with U+FFFD, while ftfy needs to know
/// that decoding *failed* (Python raises `UnicodeDecodeError`), and it also needs the
/// "utf-8-variants" codec that accepts Java's `C0 80` NUL and CESU-8 surrogate pairs.
enum FtfyUTF8 {
    /// Python's strict `bytes.decode("utf-8")`: nil on any invalid, overlong, surrogate or
    /// truncated sequence.
    static func decodeStrict(_ bytes: [UInt8]) -> [Unicode.Scalar]? {
        decode(bytes, variants: false)
    }

    /// ftfy's `utf-8-variants` codec: strict UTF-8, plus `C0 80` → U+0000 and a CESU-8 pair
    /// `ED A0-AF 80-BF ED B0-BF 80-BF` → the supplementary character it encodes. Any other
    /// surrogate encoding fails, as in ftfy.
    static func decodeVariants(_ bytes: [UInt8]) -> [Unicode.Scalar]? {
        decode(bytes, variants: true)
    }

    private static func decode(_ b: [UInt8], variants: Bool) -> [Unicode.Scalar]? {
        var out = [Unicode.Scalar]()
        out.reserveCapacity(b.count)
        let n = b.count
        var i = 0
        @inline(__always) func cont(_ k: Int) -> UInt32? {
            guard k < n, b[k] & 0xC0 == 0x80 else { return nil }
            return UInt32(b[k] & 0x3F)
        }
        while i < n {
            let lead = b[i]
            if lead < 0x80 {
                out.append(Unicode.Scalar(lead))
                i += 1
                continue
            }
            if variants {
                if lead == 0xC0 {
                    guard i + 1 < n, b[i + 1] == 0x80 else { return nil }
                    out.append("\u{0}")
                    i += 2
                    continue
                }
                if lead == 0xED, i + 1 < n, (0xA0...0xBF).contains(b[i + 1]) {
                    guard i + 5 < n, (0xA0...0xAF).contains(b[i + 1]), (0x80...0xBF).contains(b[i + 2]),
                          b[i + 3] == 0xED, (0xB0...0xBF).contains(b[i + 4]), (0x80...0xBF).contains(b[i + 5])
                    else { return nil }
                    let code = (UInt32(b[i + 1] & 0x0F) << 16) + (UInt32(b[i + 2] & 0x3F) << 10)
                        + (UInt32(b[i + 4] & 0x0F) << 6) + UInt32(b[i + 5] & 0x3F) + 0x10000
                    guard let scalar = Unicode.Scalar(code) else { return nil }
                    out.append(scalar)
                    i += 6
                    continue
                }
            }
            let code: UInt32
            switch lead {
            case 0xC2...0xDF:
                guard let c1 = cont(i + 1) else { return nil }
                code = UInt32(lead & 0x1F) << 6 | c1
                i += 2
            case 0xE0...0xEF:
                guard let c1 = cont(i + 1), let c2 = cont(i + 2) else { return nil }
                // Overlong (E0 80-9F) and surrogates (ED A0-BF) are invalid.
                if lead == 0xE0 && b[i + 1] < 0xA0 { return nil }
                if lead == 0xED && b[i + 1] > 0x9F { return nil }
                code = UInt32(lead & 0x0F) << 12 | c1 << 6 | c2
                i += 3
            case 0xF0...0xF4:
                guard let c1 = cont(i + 1), let c2 = cont(i + 2), let c3 = cont(i + 3) else { return nil }
                if lead == 0xF0 && b[i + 1] < 0x90 { return nil }
                if lead == 0xF4 && b[i + 1] > 0x8F { return nil }
                code = UInt32(lead & 0x07) << 18 | c1 << 12 | c2 << 6 | c3
                i += 4
            default:
                return nil
            }
            guard let scalar = Unicode.Scalar(code) else { return nil }
            out.append(scalar)
        }
        return out
    }
}
