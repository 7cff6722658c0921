/// ftfy's `fix_encoding`: detects mojibake (UTF-8 bytes that were decoded as Windows-1252,
/// Latin-1, MacRoman, …) and reverses it, e.g. `Ã©tÃ©` → `été`. A port of ftfy 6.3.1's
/// `fix_encoding_and_explain` / `_fix_encoding_one_step_and_explain` with the default
/// configuration (restore_byte_a0, replace_lossy_sequences, decode_inconsistent_utf8 and
/// fix_c1_controls all on).
enum FtfyFixEncoding {
    /// `ftfy.fix_encoding(text)`: one-step fixes repeated until nothing changes.
    static func fixEncoding(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var text = text
        while true {
            let fixed = oneStep(text)
            if fixed == text { return text }
            text = fixed
        }
    }

    private static func oneStep(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        if text.isEmpty { return text }
        // ASCII text, and text that does not look like mojibake, is left alone.
        if text.allSatisfy({ $0.value < 0x80 }) || !FtfyBadness.isBad(text) { return text }

        // UTF-8 that was decoded with a single-byte encoding: re-encode, then decode as UTF-8.
        var possible: [String] = []
        for codec in FtfyData.codecs where codec.canEncode(text) {
            possible.append(codec.name)
            var bytes = codec.encode(text)
            if codec.name != "macroman" && containsAlteredUTF8(bytes) {
                bytes = restoreByteA0(bytes)
            }
            if codec.isSloppy {
                bytes = replaceLossySequences(bytes)
            }
            let decoded = bytes.contains(0xED) || bytes.contains(0xC0)
                ? FtfyUTF8.decodeVariants(bytes) : FtfyUTF8.decodeStrict(bytes)
            if let decoded { return decoded }
        }

        // UTF-8 mojibake embedded in otherwise fine text: fix those runs in isolation.
        let runs = FtfyBadness.utf8MojibakeRuns(text)
        if !runs.isEmpty {
            let fixed = decodeInconsistentUTF8(text, runs: runs)
            if fixed != text { return fixed }
        }

        // Latin-1 that should have been Windows-1252 (ftfy checks for "windows-1252" in a list that
        // only ever holds "sloppy-windows-1252", so this branch always tries the strict decode).
        if possible.contains("latin-1") {
            if !text.contains(where: { FtfyData.undefinedWindows1252.contains($0.value) }) {
                let fixed = fixC1Controls(text)
                if fixed != text { return fixed }
            }
        }

        if text.contains(where: { (0x80...0x9F).contains($0.value) }) {
            return fixC1Controls(text)
        }
        return text
    }

    /// `fixes.fix_c1_controls`: C1 control characters → their Windows-1252 characters.
    static func fixC1Controls(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        text.map { (0x80...0x9F).contains($0.value) ? FtfyData.sloppyWindows1252[Int($0.value - 0x80)] : $0 }
    }

    /// `fixes.decode_inconsistent_utf8`: each UTF-8-looking run that is shorter than the text and
    /// bad on its own gets `fix_encoding`.
    private static func decodeInconsistentUTF8(_ text: [Unicode.Scalar], runs: [Range<Int>]) -> [Unicode.Scalar] {
        var out = [Unicode.Scalar]()
        out.reserveCapacity(text.count)
        var last = 0
        for run in runs {
            out.append(contentsOf: text[last..<run.lowerBound])
            let piece = Array(text[run])
            if piece.count < text.count && FtfyBadness.isBad(piece) {
                out.append(contentsOf: fixEncoding(piece))
            } else {
                out.append(contentsOf: piece)
            }
            last = run.upperBound
        }
        out.append(contentsOf: text[last...])
        return out
    }

    // MARK: byte-level transcoders

    private static let lowContinuation: ClosedRange<UInt8> = 0x80...0xBF

    /// `[80-84 86-9F A1-BF]`: continuation bytes other than 0x85 and 0xA0.
    @inline(__always)
    private static func isPlainContinuation(_ b: UInt8) -> Bool {
        (0x80...0x84).contains(b) || (0x86...0x9F).contains(b) || (0xA1...0xBF).contains(b)
    }

    /// Length of an `ALTERED_UTF8_RE` match at `i` (the first alternative that matches), or nil.
    private static func alteredUTF8Match(_ b: [UInt8], at i: Int) -> Int? {
        let n = b.count
        let b0 = b[i]
        func at(_ k: Int) -> UInt8? { i + k < n ? b[i + k] : nil }
        if [0xC2, 0xC3, 0xC5, 0xCE, 0xD0, 0xD9].contains(b0), at(1) == 0x20 { return 2 }
        if b0 == 0xE2 || b0 == 0xE3, at(1) == 0x20, let c = at(2), isPlainContinuation(c) { return 3 }
        if (0xE0...0xE3).contains(b0), let c = at(1), isPlainContinuation(c), at(2) == 0x20 { return 3 }
        if b0 == 0xF0, let c1 = at(1), let c2 = at(2), let c3 = at(3) {
            if c1 == 0x20 && lowContinuation.contains(c2) && lowContinuation.contains(c3) { return 4 }
            if lowContinuation.contains(c1) && c2 == 0x20 && lowContinuation.contains(c3) { return 4 }
            if lowContinuation.contains(c1) && lowContinuation.contains(c2) && c3 == 0x20 { return 4 }
        }
        return nil
    }

    private static func containsAlteredUTF8(_ b: [UInt8]) -> Bool {
        b.indices.contains { alteredUTF8Match(b, at: $0) != nil }
    }

    /// `fixes.restore_byte_a0`: where a space stands in for byte A0 inside a UTF-8 sequence, put A0
    /// back. First the `Ã ` special case (`A_GRAVE_WORD_RE`), then `ALTERED_UTF8_RE`.
    static func restoreByteA0(_ input: [UInt8]) -> [UInt8] {
        // b"\xc3 (?! |quele|quela|quilo|s )" → b"\xc3\xa0 "
        var b = [UInt8]()
        b.reserveCapacity(input.count + 8)
        var i = 0
        while i < input.count {
            if input[i] == 0xC3, i + 1 < input.count, input[i + 1] == 0x20,
               !startsWithAny(input, at: i + 2, [[0x20], Array("quele".utf8), Array("quela".utf8),
                                                  Array("quilo".utf8), [0x73, 0x20]]) {
                b.append(contentsOf: [0xC3, 0xA0, 0x20])
                i += 2
            } else {
                b.append(input[i])
                i += 1
            }
        }
        var i2 = 0
        while i2 < b.count {
            if let length = alteredUTF8Match(b, at: i2) {
                for k in i2..<(i2 + length) where b[k] == 0x20 { b[k] = 0xA0 }
                i2 += length
            } else {
                i2 += 1
            }
        }
        return b
    }

    private static func startsWithAny(_ b: [UInt8], at i: Int, _ prefixes: [[UInt8]]) -> Bool {
        prefixes.contains { prefix in
            i + prefix.count <= b.count && zip(b[i...], prefix).allSatisfy { $0 == $1 }
        }
    }

    /// `fixes.replace_lossy_sequences`: UTF-8 sequences whose bytes were lost to `?` or U+FFFD
    /// (encoded as 0x1A by the sloppy codecs) become one U+FFFD.
    static func replaceLossySequences(_ b: [UInt8]) -> [UInt8] {
        guard b.contains(0x1A) || b.contains(0x3F) else { return b }
        var out = [UInt8]()
        out.reserveCapacity(b.count)
        var i = 0
        while i < b.count {
            if let length = lossyMatch(b, at: i) {
                out.append(contentsOf: [0xEF, 0xBF, 0xBD])
                i += length
            } else {
                out.append(b[i])
                i += 1
            }
        }
        return out
    }

    /// Length of a `LOSSY_UTF8_RE` match at `i` (first matching alternative), or nil.
    private static func lossyMatch(_ b: [UInt8], at i: Int) -> Int? {
        let n = b.count
        func at(_ k: Int) -> UInt8? { i + k < n ? b[i + k] : nil }
        func lost(_ k: Int) -> Bool { let v = at(k); return v == 0x1A || v == 0x3F }               // [\x1a?]
        func subOrCont(_ k: Int) -> Bool { guard let v = at(k) else { return false }; return v == 0x1A || lowContinuation.contains(v) } // [\x1a\x80-\xbf]
        func any(_ k: Int) -> Bool { guard let v = at(k) else { return false }; return v == 0x1A || v == 0x3F || lowContinuation.contains(v) } // [\x1a?\x80-\xbf]
        func inRange(_ k: Int, _ r: ClosedRange<UInt8>) -> Bool { guard let v = at(k) else { return false }; return r.contains(v) }
        let b0 = b[i]
        if (0xC2...0xDF).contains(b0) && at(1) == 0x1A { return 2 }
        if (0xC2...0xC3).contains(b0) && at(1) == 0x3F { return 2 }
        if b0 == 0xED && inRange(1, 0xA0...0xAF) && lost(2) && at(3) == 0xED && inRange(4, 0xB0...0xBF) && any(5) { return 6 }
        if b0 == 0xED && inRange(1, 0xA0...0xAF) && any(2) && at(3) == 0xED && inRange(4, 0xB0...0xBF) && lost(5) { return 6 }
        if (0xE0...0xEF).contains(b0) && lost(1) && subOrCont(2) { return 3 }
        if (0xE0...0xEF).contains(b0) && subOrCont(1) && lost(2) { return 3 }
        if (0xF0...0xF4).contains(b0) && lost(1) && subOrCont(2) && subOrCont(3) { return 4 }
        if (0xF0...0xF4).contains(b0) && subOrCont(1) && lost(2) && subOrCont(3) { return 4 }
        if (0xF0...0xF4).contains(b0) && subOrCont(1) && subOrCont(2) && lost(3) { return 4 }
        if b0 == 0x1A { return 1 }
        return nil
    }
}
