/// GPT-2 / CLIP `bytes_to_unicode`: a reversible map from the 256 byte values to printable
/// Unicode scalars.
///
/// Why it exists: byte-level BPE works on UTF-8 bytes, but the vocabulary files store symbols as
/// text. Printable Latin-1 bytes (`!`…`~`, `¡`…`¬`, `®`…`ÿ`) map to themselves; the other 68
/// (control characters, space, DEL, NBSP, soft hyphen…) map to U+0100 and up, in byte order, so
/// that no vocabulary entry contains whitespace or control characters.
enum ByteEncoder {
    /// `scalars[b]` is the symbol that stands for byte `b`.
    static let scalars: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var next: UInt32 = 256
        for byte in 0..<256 {
            if isPrintable(UInt8(byte)) {
                table[byte] = Unicode.Scalar(UInt8(byte))
            } else {
                // 256…323 are all valid scalars; the fallback is never taken.
                table[byte] = Unicode.Scalar(next) ?? " "
                next += 1
            }
        }
        return table
    }()

    /// Byte values in the order CLIP's vocabulary lists their symbols (ids 0…255, and again
    /// with `</w>` as ids 256…511): the printable ranges first, then the remapped bytes.
    static let vocabularyOrder: [UInt8] = {
        let printable = (0..<256).map(UInt8.init).filter(isPrintable)
        let remapped = (0..<256).map(UInt8.init).filter { !isPrintable($0) }
        return printable + remapped
    }()

    /// The symbol string for one byte, as it is spelled in `vocab.json`.
    static func symbol(_ byte: UInt8) -> String {
        String(Character(scalars[Int(byte)]))
    }

    private static func isPrintable(_ byte: UInt8) -> Bool {
        (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte)
    }
}
