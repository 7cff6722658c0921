/// ftfy's mojibake detectors: `badness.is_bad` (does `BADNESS_RE` match anywhere?) and
/// `chardata.UTF8_DETECTOR_RE` (runs that look like UTF-8 decoded as a single-byte encoding).
///
/// Why hand-written: both regexes are alternations of fixed-length character-class sequences, so a
/// position-by-position check of each alternative gives the same answer as Python's `re.search`.
/// The alternatives below are in the order of ftfy 6.3.1's `BADNESS_RE`.
enum FtfyBadness {
    typealias C = FtfyCharacterClass

    // Character classes that recur in BADNESS_RE.
    private static let accented: C = [.lowerAccented, .upperAccented]
    private static let punctuation: C = [.startPunctuation, .endPunctuation]
    private static let alt2First: C = [.bad, .lowerAccented, .upperAccented, .box, .startPunctuation,
                                       .endPunctuation, .currency, .numeric, .law]
    private static let alt4Second: C = [.lowerAccented, .upperAccented, .box, .startPunctuation,
                                        .endPunctuation, .currency, .numeric, .law]

    /// The badness categories (the UTF-8 clue bits are not used by `BADNESS_RE`).
    private static let badnessClasses = C(rawValue: (1 << 14) - 1)

    /// `badness.is_bad(text)`.
    static func isBad(_ text: [Unicode.Scalar]) -> Bool {
        let classes = text.map(FtfyData.classes)
        for i in text.indices {
            // A match can only start at a categorised character (every non-ASCII literal in the
            // alternatives is categorised too), an ASCII letter, `.,?!`, or whitespace.
            if classes[i].isDisjoint(with: badnessClasses) {
                let v = text[i].value
                let asciiLead = (0x41...0x5A).contains(v) || (0x61...0x7A).contains(v)
                    || v == 0x2E || v == 0x2C || v == 0x3F || v == 0x21
                if !asciiLead && !UnicodeScalarText.isPythonSpace(text[i]) { continue }
            }
            if matches(text, classes, at: i) { return true }
        }
        return false
    }

    // swiftlint:disable:next cyclomatic_complexity function_body_length
    private static func matches(_ t: [Unicode.Scalar], _ k: [C], at i: Int) -> Bool {
        let n = t.count
        let c0 = k[i]
        let s0 = t[i].value
        let has1 = i + 1 < n, has2 = i + 2 < n
        let c1: C = has1 ? k[i + 1] : []
        let c2: C = has2 ? k[i + 2] : []
        let s1: UInt32 = has1 ? t[i + 1].value : 0xFFFF_FFFF
        let s2: UInt32 = has2 ? t[i + 2].value : 0xFFFF_FFFF

        // [c1]
        if c0.contains(.c1) { return true }
        if has1 {
            // [bad lower_acc upper_acc box start end currency numeric law] [bad]
            if !c0.isDisjoint(with: alt2First) && c1.contains(.bad) { return true }
        }
        if has2 {
            // [a-zA-Z] [lower_common upper_common] [bad]
            if isASCIILetter(s0) && !c1.isDisjoint(with: [.lowerCommon, .upperCommon]) && c2.contains(.bad) { return true }
        }
        if has1 {
            // [bad] [lower_acc upper_acc box start end currency numeric law]
            if c0.contains(.bad) && !c1.isDisjoint(with: alt4Second) { return true }
            // [lower_acc lower_common box end currency numeric] [upper_acc]
            if !c0.isDisjoint(with: [.lowerAccented, .lowerCommon, .box, .endPunctuation, .currency, .numeric])
                && c1.contains(.upperAccented) { return true }
            // [box end currency numeric] [lower_acc]
            if !c0.isDisjoint(with: [.box, .endPunctuation, .currency, .numeric]) && c1.contains(.lowerAccented) { return true }
            // [lower_acc box end] [currency]
            if !c0.isDisjoint(with: [.lowerAccented, .box, .endPunctuation]) && c1.contains(.currency) { return true }
        }
        if has2 {
            // \s [upper_acc] [currency]
            if c1.contains(.upperAccented) && c2.contains(.currency) && UnicodeScalarText.isPythonSpace(t[i]) { return true }
        }
        if has1 {
            // [upper_acc box] [numeric law]
            if !c0.isDisjoint(with: [.upperAccented, .box]) && !c1.isDisjoint(with: [.numeric, .law]) { return true }
        }
        if has2 {
            // [lower_acc upper_acc box currency end] [start] [numeric]
            if !c0.isDisjoint(with: [.lowerAccented, .upperAccented, .box, .currency, .endPunctuation])
                && c1.contains(.startPunctuation) && c2.contains(.numeric) { return true }
            // [lower_acc upper_acc currency numeric box law] [end] [start]
            if !c0.isDisjoint(with: [.lowerAccented, .upperAccented, .currency, .numeric, .box, .law])
                && c1.contains(.endPunctuation) && c2.contains(.startPunctuation) { return true }
        }
        if has1 {
            // [currency numeric box] [start]
            if !c0.isDisjoint(with: [.currency, .numeric, .box]) && c1.contains(.startPunctuation) { return true }
        }
        if has2 {
            // [a-z] [upper_acc] [start currency]
            if (0x61...0x7A).contains(s0) && c1.contains(.upperAccented)
                && !c2.isDisjoint(with: [.startPunctuation, .currency]) { return true }
        }
        if has1 {
            // [box] [kaomoji]
            if c0.contains(.box) && c1.contains(.kaomoji) { return true }
            // [lower_acc upper_acc currency numeric start end law] [box]
            if !c0.isDisjoint(with: [.lowerAccented, .upperAccented, .currency, .numeric, .startPunctuation,
                                     .endPunctuation, .law]) && c1.contains(.box) { return true }
            // [box] [end]
            if c0.contains(.box) && c1.contains(.endPunctuation) { return true }
        }
        if has2 {
            // [lower_acc upper_acc] [start end] \w
            if !c0.isDisjoint(with: accented) && !c1.isDisjoint(with: punctuation)
                && UnicodeScalarText.isPythonWordCharacter(t[i + 2]) { return true }
        }
        if has1 {
            // [Œœ][^A-Za-z]
            if (s0 == 0x152 || s0 == 0x153) && !isASCIILetter(s1) { return true }
            // [upper_acc]°
            if c0.contains(.upperAccented) && s1 == 0xB0 { return true }
            // [ÂÃÎÐ][€œŠš¢£Ÿž\xa0\xad®©°·»{start}{end}–—´]
            if [0xC2, 0xC3, 0xCE, 0xD0].contains(s0)
                && ([0x20AC, 0x153, 0x160, 0x161, 0xA2, 0xA3, 0x178, 0x17E, 0xA0, 0xAD, 0xAE, 0xA9, 0xB0, 0xB7, 0xBB,
                     0x2013, 0x2014, 0xB4].contains(s1) || !c1.isDisjoint(with: punctuation)) { return true }
            // × [²³]
            if s0 == 0xD7 && (s1 == 0xB2 || s1 == 0xB3) { return true }
        }
        if i + 3 < n {
            // [ØÙ] [common currency bad numeric start ŸŠ®°µ»] twice
            if isArabicMojibakeLead(s0) && isArabicMojibakeFollower(t[i + 1].value, c1)
                && isArabicMojibakeLead(s2) && isArabicMojibakeFollower(t[i + 3].value, k[i + 3]) { return true }
        }
        if has1 {
            // à[²µ¹¼½¾]
            if s0 == 0xE0 && [0xB2, 0xB5, 0xB9, 0xBC, 0xBD, 0xBE].contains(s1) { return true }
            // √[±∂†≠®™´≤≥¥µø]
            if s0 == 0x221A && [0xB1, 0x2202, 0x2020, 0x2260, 0xAE, 0x2122, 0xB4, 0x2264, 0x2265, 0xA5, 0xB5, 0xF8]
                .contains(s1) { return true }
            // ≈[°¢]
            if s0 == 0x2248 && (s1 == 0xB0 || s1 == 0xA2) { return true }
        }
        if has2 {
            // ‚Ä[ìîïòôúùû†°¢π]
            if s0 == 0x201A && s1 == 0xC4
                && [0xEC, 0xEE, 0xEF, 0xF2, 0xF4, 0xFA, 0xF9, 0xFB, 0x2020, 0xB0, 0xA2, 0x3C0].contains(s2) { return true }
            // ‚[âó][àä°ê]
            if s0 == 0x201A && (s1 == 0xE2 || s1 == 0xF3) && [0xE0, 0xE4, 0xB0, 0xEA].contains(s2) { return true }
        }
        if has1 {
            // вЂ
            if s0 == 0x432 && s1 == 0x402 { return true }
        }
        if has2 {
            // [ВГРС][c1 bad start end currency °µ][ВГРС]
            let cyrillic: [UInt32] = [0x412, 0x413, 0x420, 0x421]
            if cyrillic.contains(s0) && cyrillic.contains(s2)
                && (!c1.isDisjoint(with: [.c1, .bad, .startPunctuation, .endPunctuation, .currency]) || s1 == 0xB0 || s1 == 0xB5) {
                return true
            }
        }
        if i + 6 < n {
            // ГўВЂВ.[A-Za-z ]
            if s0 == 0x413 && s1 == 0x45E && s2 == 0x412 && t[i + 3].value == 0x402 && t[i + 4].value == 0x412
                && t[i + 5].value != 0x0A && (isASCIILetter(t[i + 6].value) || t[i + 6].value == 0x20) { return true }
        }
        if has1 {
            // Ã[\xa0¡]
            if s0 == 0xC3 && (s1 == 0xA0 || s1 == 0xA1) { return true }
        }
        // [a-z]\s?[ÃÂ][ ]
        if (0x61...0x7A).contains(s0) && has2 {
            if (s1 == 0xC3 || s1 == 0xC2) && s2 == 0x20 { return true }
            if i + 3 < n && (s2 == 0xC3 || s2 == 0xC2) && t[i + 3].value == 0x20
                && UnicodeScalarText.isPythonSpace(t[i + 1]) { return true }
        }
        // ^[ÃÂ][ ]
        if i == 0 && has1 && (s0 == 0xC3 || s0 == 0xC2) && s1 == 0x20 { return true }
        if has2 {
            // [a-z.,?!{end}] Â [ {start}{end}]
            let lead = (0x61...0x7A).contains(s0) || [0x2E, 0x2C, 0x3F, 0x21].contains(s0) || c0.contains(.endPunctuation)
            if lead && s1 == 0xC2 && (s2 == 0x20 || !c2.isDisjoint(with: punctuation)) { return true }
            // β€[™\xa0Ά\xad®°]
            if s0 == 0x3B2 && s1 == 0x20AC && [0x2122, 0xA0, 0x386, 0xAD, 0xAE, 0xB0].contains(s2) { return true }
            // [ΒΓΞΟ][c1 bad start end currency °][ΒΓΞΟ]
            let greek: [UInt32] = [0x392, 0x393, 0x39E, 0x39F]
            if greek.contains(s0) && greek.contains(s2)
                && (!c1.isDisjoint(with: [.c1, .bad, .startPunctuation, .endPunctuation, .currency]) || s1 == 0xB0) {
                return true
            }
        }
        if has1 {
            // ā€
            if s0 == 0x101 && s1 == 0x20AC { return true }
        }
        return false
    }

    @inline(__always)
    private static func isASCIILetter(_ v: UInt32) -> Bool {
        (0x41...0x5A).contains(v) || (0x61...0x7A).contains(v)
    }

    private static func isArabicMojibakeLead(_ v: UInt32) -> Bool { v == 0xD8 || v == 0xD9 }

    private static func isArabicMojibakeFollower(_ v: UInt32, _ c: C) -> Bool {
        !c.isDisjoint(with: [.common, .currency, .bad, .numeric, .startPunctuation])
            || [0x178, 0x160, 0xAE, 0xB0, 0xB5, 0xBB].contains(v)
    }

    // MARK: UTF8_DETECTOR_RE

    /// Ranges of `UTF8_DETECTOR_RE` matches, left to right and non-overlapping, as `re.sub` finds
    /// them:
    ///
    ///     (?<! [continuation_strict]) ( [first_of_2][cont] | [first_of_3][cont]{2} | [first_of_4][cont]{3} )+
    static func utf8MojibakeRuns(_ text: [Unicode.Scalar]) -> [Range<Int>] {
        let classes = text.map(FtfyData.classes)
        let n = text.count
        var runs: [Range<Int>] = []
        var i = 0
        while i < n {
            if i > 0 && classes[i - 1].contains(.utf8ContinuationStrict) {
                i += 1
                continue
            }
            var j = i
            while j < n {
                let c = classes[j]
                if c.contains(.utf8FirstOf2) && continuations(classes, from: j + 1, count: 1) {
                    j += 2
                } else if c.contains(.utf8FirstOf3) && continuations(classes, from: j + 1, count: 2) {
                    j += 3
                } else if c.contains(.utf8FirstOf4) && continuations(classes, from: j + 1, count: 3) {
                    j += 4
                } else {
                    break
                }
            }
            if j > i {
                runs.append(i..<j)
                i = j
            } else {
                i += 1
            }
        }
        return runs
    }

    private static func continuations(_ classes: [C], from start: Int, count: Int) -> Bool {
        guard start + count <= classes.count else { return false }
        for k in start..<(start + count) where !classes[k].contains(.utf8Continuation) { return false }
        return true
    }
}
