/// ftfy's character classes (`badness.MOJIBAKE_CATEGORIES`, then `chardata.UTF8_CLUES`), as bits.
/// The bit order is the order of `FtfyTables.categoryNames`.
struct FtfyCharacterClass: OptionSet, Sendable {
    let rawValue: UInt32

    static let common = Self(rawValue: 1 << 0)
    static let c1 = Self(rawValue: 1 << 1)
    static let bad = Self(rawValue: 1 << 2)
    static let law = Self(rawValue: 1 << 3)
    static let currency = Self(rawValue: 1 << 4)
    static let startPunctuation = Self(rawValue: 1 << 5)
    static let endPunctuation = Self(rawValue: 1 << 6)
    static let numeric = Self(rawValue: 1 << 7)
    static let kaomoji = Self(rawValue: 1 << 8)
    static let upperAccented = Self(rawValue: 1 << 9)
    static let lowerAccented = Self(rawValue: 1 << 10)
    static let upperCommon = Self(rawValue: 1 << 11)
    static let lowerCommon = Self(rawValue: 1 << 12)
    static let box = Self(rawValue: 1 << 13)
    static let utf8FirstOf2 = Self(rawValue: 1 << 14)
    static let utf8FirstOf3 = Self(rawValue: 1 << 15)
    static let utf8FirstOf4 = Self(rawValue: 1 << 16)
    static let utf8Continuation = Self(rawValue: 1 << 17)
    static let utf8ContinuationStrict = Self(rawValue: 1 << 18)
}

/// One of the single-byte encodings ftfy tries when it reverses mojibake.
struct FtfySingleByteCodec: Sendable {
    let name: String
    /// ftfy's "sloppy" codecs decode every byte (undefined ones as Latin-1) and map 0x1A to U+FFFD.
    let isSloppy: Bool
    /// What bytes 0x80…0xFF decode to.
    let high: [Unicode.Scalar]
    /// Non-ASCII characters (and whatever byte 0x1A decodes to) → byte.
    private let encodeTable: [UInt32: UInt8]

    init(name: String, decoded: [Unicode.Scalar]) {
        self.name = name
        isSloppy = name.hasPrefix("sloppy")
        high = Array(decoded.prefix(128))
        var table = [UInt32: UInt8]()
        for (offset, scalar) in decoded.prefix(128).enumerated() { table[scalar.value] = UInt8(0x80 + offset) }
        if decoded.count > 128 { table[decoded[128].value] = 0x1A }
        encodeTable = table
    }

    /// ftfy's `possible_encoding`: every character is ASCII other than 0x1A, or one of the
    /// characters this codec decodes bytes 0x80…0xFF / 0x1A to.
    func canEncode(_ text: [Unicode.Scalar]) -> Bool {
        text.allSatisfy { ($0.value < 0x80 && $0.value != 0x1A) || encodeTable[$0.value] != nil }
    }

    /// Encodes text for which `canEncode` is true.
    func encode(_ text: [Unicode.Scalar]) -> [UInt8] {
        text.map { scalar in
            if scalar.value < 0x80 && scalar.value != 0x1A { return UInt8(scalar.value) }
            return encodeTable[scalar.value] ?? 0x1A
        }
    }
}

/// The parsed ftfy tables. Each is built once, on first use.
enum FtfyData {
    static let classTable: [UInt32: FtfyCharacterClass] = {
        var table = [UInt32: FtfyCharacterClass]()
        for item in items(FtfyTables.categories) {
            let parts = item.split(separator: ":")
            guard parts.count == 2, let scalar = UInt32(parts[0], radix: 16), let mask = UInt32(parts[1], radix: 16)
            else { continue }
            table[scalar] = FtfyCharacterClass(rawValue: mask)
        }
        return table
    }()

    @inline(__always)
    static func classes(_ scalar: Unicode.Scalar) -> FtfyCharacterClass {
        // Only the space is classified among ASCII characters (as a UTF-8 continuation stand-in).
        if scalar.value < 0x80 { return scalar.value == 0x20 ? .utf8Continuation : [] }
        return classTable[scalar.value] ?? []
    }

    /// `chardata.CHARMAP_ENCODINGS`, in ftfy's order.
    static let codecs: [FtfySingleByteCodec] = items(FtfyTables.codecs).compactMap { item in
        guard let (name, scalars) = keyAndScalars(item), scalars.count == 129 else { return nil }
        return FtfySingleByteCodec(name: name, decoded: scalars)
    }

    /// Decoding of bytes 0x80…0x9F in sloppy Windows-1252 (what `fix_c1_controls` maps C1 to).
    static let sloppyWindows1252: [Unicode.Scalar] = {
        codecs.first { $0.name == "sloppy-windows-1252" }?.high ?? (0x80..<0x100).compactMap(Unicode.Scalar.init)
    }()

    static let undefinedWindows1252: Set<UInt32> = Set(FtfyTables.undefinedWindows1252.map(UInt32.init))

    /// `chardata.WIDTH_MAP`.
    static let widthMap: [UInt32: [Unicode.Scalar]] = scalarMap(FtfyTables.widthMap)

    /// `chardata.HTML_ENTITIES`, keyed by the name between `&` and `;`.
    static let htmlEntities: [String: [Unicode.Scalar]] = {
        var table = [String: [Unicode.Scalar]]()
        for item in items(FtfyTables.htmlEntities) {
            if let (name, scalars) = keyAndScalars(item) { table[name] = scalars }
        }
        return table
    }()

    /// Python `html._invalid_charrefs`.
    static let invalidCharrefs: [UInt32: [Unicode.Scalar]] = scalarMap(FtfyTables.invalidCharrefs)

    /// Python `html._invalid_codepoints`.
    static let invalidCodepoints: Set<UInt32> = Set(
        FtfyTables.invalidCodepoints.split(whereSeparator: { $0 == "," || $0 == "\n" }).compactMap { UInt32($0, radix: 16) })

    // MARK: parsing

    private static func items(_ text: String) -> [Substring] {
        text.split(whereSeparator: { $0 == ";" || $0 == "\n" })
    }

    private static func keyAndScalars(_ item: Substring) -> (String, [Unicode.Scalar])? {
        guard let equals = item.firstIndex(of: "=") else { return nil }
        let key = String(item[..<equals])
        let values = item[item.index(after: equals)...].split(separator: ",")
            .compactMap { UInt32($0, radix: 16).flatMap(Unicode.Scalar.init) }
        return (key, values)
    }

    private static func scalarMap(_ text: String) -> [UInt32: [Unicode.Scalar]] {
        var table = [UInt32: [Unicode.Scalar]]()
        for item in items(text) {
            if let (key, scalars) = keyAndScalars(item), let code = UInt32(key, radix: 16) { table[code] = scalars }
        }
        return table
    }
}
