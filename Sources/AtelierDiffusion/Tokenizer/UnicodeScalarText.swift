/// Unicode operations on scalar arrays, written to match the reference implementations code point
/// for code point.
///
/// Why scalar arrays and not `String`: Swift compares and iterates `String` by grapheme cluster and
/// canonical equivalence (`"e\u{301}" == "é"`), while Python and Rust work on code points. The
/// tokenizer and the ftfy port both need the code-point view: a `!` followed by a combining accent
/// is still a `!` to Hugging Face, and ftfy stops iterating only when no code point changed.
enum UnicodeScalarText {
    /// A Unicode version, for emulating a reference whose character tables are older than this
    /// toolchain's (Swift 6.3 ships Unicode 17.0 data).
    struct Version: Comparable, Sendable {
        var major: Int
        var minor: Int

        static func < (a: Version, b: Version) -> Bool { (a.major, a.minor) < (b.major, b.minor) }

        /// tokenizers 0.23's NFC tables (crate `unicode-normalization-alignments`): Unicode 9.0,
        /// measured: it does not reorder marks added in 10.0 or compose Dives Akuru (13.0).
        static let tokenizersNormalization = Version(major: 9, minor: 0)
        /// tokenizers 0.23's Oniguruma classes: Unicode 16.0, measured on every code point
        /// (everything up to 16.0 matches; letters added in 17.0 are not `\p{L}` to it).
        static let tokenizersRegex = Version(major: 16, minor: 0)
        /// tokenizers 0.23's `Lowercase` (Rust `char::to_lowercase`): Unicode 17.0, measured
        /// (U+A7CE, new in 17.0, is lowercased).
        static let tokenizersLowercase = Version(major: 17, minor: 0)
        /// The `regex` module used by the slow transformers-4 tokenizer. Version 2026.11.19 already
        /// has Unicode 18.0 tables, newer than this toolchain's; no cap applies, and the few
        /// thousand letters new in 18.0 (unassigned here) are the one known difference.
        static let pythonRegexModule = Version(major: 17, minor: 0)
        /// Python 3.11's `unicodedata` (`str.lower`, NFC, `re`'s `\s`/`\w`): Unicode 14.0.
        static let python311 = Version(major: 14, minor: 0)
    }

    /// Whether `scalar` was assigned after `version`, i.e. is an unassigned code point to an
    /// implementation with `version`'s tables.
    @inline(__always)
    static func isNewer(_ scalar: Unicode.Scalar, than version: Version) -> Bool {
        guard let age = scalar.properties.age else { return false }
        return age.major > version.major || (age.major == version.major && age.minor > version.minor)
    }

    /// NFC normalisation with the character tables of Unicode `version`.
    ///
    /// Uses the standard library's normaliser, `String._nfcCodeUnits` (public but underscored; the
    /// tests check it against Python's `unicodedata` and tokenizers, and it agrees on every code
    /// point except the three Tibetan vowels handled below). Foundation's
    /// `precomposedStringWithCanonicalMapping` was tried and is wrong for a thousand code points on
    /// Linux. Characters newer than `version`
    /// are unassigned to the reference: combining class 0, no decomposition, no composition, so
    /// they split the text into independently normalised pieces.
    static func nfc(_ scalars: [Unicode.Scalar], version: Version) -> [Unicode.Scalar] {
        // Everything below U+0300 is NFC-stable and cannot combine with a neighbour: the first
        // combining mark and every composable second character are at U+0300 or above.
        guard scalars.contains(where: { $0.value >= 0x300 }) else { return scalars }
        var out = [Unicode.Scalar]()
        out.reserveCapacity(scalars.count)
        var pieceStart = 0
        for (i, scalar) in scalars.enumerated() where scalar.value >= 0x300 && isNewer(scalar, than: version) {
            out.append(contentsOf: standardNFC(scalars[pieceStart..<i]))
            out.append(scalar)
            pieceStart = i + 1
        }
        out.append(contentsOf: standardNFC(scalars[pieceStart...]))
        return out
    }

    private static func standardNFC(_ scalars: ArraySlice<Unicode.Scalar>) -> [Unicode.Scalar] {
        guard scalars.contains(where: { $0.value >= 0x300 }) else { return Array(scalars) }
        var string = String()
        for scalar in scalars {
            // U+0F73, U+0F75 and U+0F81 have combining class 0 but decompose into non-starters. The
            // standard library does not reorder across them (Python and tokenizers do); handing it
            // the decomposition (they are composition exclusions, so NFC never keeps them) fixes it.
            switch scalar.value {
            case 0xF73: string.unicodeScalars.append(contentsOf: ["\u{F71}", "\u{F72}"])
            case 0xF75: string.unicodeScalars.append(contentsOf: ["\u{F71}", "\u{F74}"])
            case 0xF81: string.unicodeScalars.append(contentsOf: ["\u{F71}", "\u{F80}"])
            default: string.unicodeScalars.append(scalar)
            }
        }
        return Array(String(decoding: string._nfcCodeUnits, as: UTF8.self).unicodeScalars)
    }

    /// Lowercasing as the tokenizers `Lowercase` normaliser does it (Rust `char::to_lowercase`): the
    /// full Unicode lowercase mapping of each scalar on its own, so `İ` → `i̇` and `Σ` → `σ` always
    /// (no final-sigma rule).
    static func lowercasedPerScalar(_ scalars: [Unicode.Scalar], version: Version) -> [Unicode.Scalar] {
        var out = [Unicode.Scalar]()
        out.reserveCapacity(scalars.count)
        for scalar in scalars { appendLowercase(scalar, version: version, to: &out) }
        return out
    }

    /// Lowercasing as Python's `str.lower()` does it: the full lowercase mapping, plus the
    /// Final_Sigma rule (`Σ` → `ς` after a cased letter and not before one, case-ignorable
    /// characters skipped on both sides).
    static func pythonLowercased(_ scalars: [Unicode.Scalar], version: Version = .python311) -> [Unicode.Scalar] {
        var out = [Unicode.Scalar]()
        out.reserveCapacity(scalars.count)
        for (i, scalar) in scalars.enumerated() {
            if scalar.value == 0x3A3 {
                out.append(isFinalSigma(scalars, at: i, version: version) ? "\u{3C2}" : "\u{3C3}")
            } else {
                appendLowercase(scalar, version: version, to: &out)
            }
        }
        return out
    }

    /// The Unicode White_Space property (`\s` in Oniguruma and in Python's `regex` module).
    ///
    /// Spelled out because it is checked for every character and this set has been fixed since
    /// Unicode 6.3 (when U+180E left it); `Unicode.Scalar.Properties` lookups cost far more.
    @inline(__always)
    static func isWhiteSpace(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09...0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            return true
        default:
            return false
        }
    }

    /// Python's `str.isspace()` (and `\s` of the `re` module): White_Space plus U+001C…U+001F,
    /// which have bidirectional class B/S.
    @inline(__always)
    static func isPythonSpace(_ scalar: Unicode.Scalar) -> Bool {
        (0x1C...0x1F).contains(scalar.value) || isWhiteSpace(scalar)
    }

    /// Python's `\w` for `str` patterns: `str.isalnum()` or `_`.
    static func isPythonWordCharacter(_ scalar: Unicode.Scalar, version: Version = .python311) -> Bool {
        if scalar.value < 0x80 {
            let v = scalar.value
            return (0x30...0x39).contains(v) || (0x41...0x5A).contains(v) || (0x61...0x7A).contains(v) || v == 0x5F
        }
        if isNewer(scalar, than: version) { return false }
        let properties = scalar.properties
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            return true
        default:
            return properties.numericType != nil
        }
    }

    @inline(__always)
    private static func appendLowercase(_ scalar: Unicode.Scalar, version: Version, to out: inout [Unicode.Scalar]) {
        let v = scalar.value
        if v < 0x80 {
            out.append((0x41...0x5A).contains(v) ? Unicode.Scalar(UInt8(v + 0x20)) : scalar)
        } else if scalar.properties.changesWhenLowercased && !isNewer(scalar, than: version) {
            out.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars)
        } else {
            out.append(scalar)
        }
    }

    /// CPython's `handle_capital_sigma` (characters newer than `version` are neither cased nor
    /// case-ignorable to it).
    ///
    /// Checked against Python 3.11 on every code point: the standard library's Cased and
    /// Case_Ignorable agree except for two characters whose properties changed after Unicode 14.0,
    /// U+0295 ʕ (cased in 14.0) and U+1171E (case-ignorable in 14.0).
    private static func isFinalSigma(_ scalars: [Unicode.Scalar], at index: Int, version: Version) -> Bool {
        let python = version <= .python311
        func ignorable(_ s: Unicode.Scalar) -> Bool {
            if python && s.value == 0x1171E { return true }
            return s.properties.isCaseIgnorable && !isNewer(s, than: version)
        }
        func cased(_ s: Unicode.Scalar) -> Bool {
            if python && s.value == 0x295 { return true }
            return s.properties.isCased && !isNewer(s, than: version)
        }
        var j = index - 1
        while j >= 0, ignorable(scalars[j]) { j -= 1 }
        guard j >= 0, cased(scalars[j]) else { return false }
        var k = index + 1
        while k < scalars.count, ignorable(scalars[k]) { k += 1 }
        return k == scalars.count || !cased(scalars[k])
    }
}
