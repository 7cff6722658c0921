/// A small deterministic input mutator (libFuzzer's basic moves: bit flips, byte sets,
/// interesting integers, inserts, deletes, duplicated and spliced ranges) for the CI replay and
/// for machines where `-sanitize=fuzzer` is unavailable. Without coverage feedback it explores far
/// less than libFuzzer; its value is that a seed reproduces the exact same inputs anywhere.
public struct SeededMutator {
    private var state: UInt64

    public init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }

    /// splitmix64.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    public mutating func below(_ n: Int) -> Int { n <= 1 ? 0 : Int(next() % UInt64(n)) }

    private static let interesting: [[UInt8]] = [
        [0x00], [0xFF], [0x7F], [0x80], [0x00, 0x00, 0x00, 0x00], [0xFF, 0xFF, 0xFF, 0xFF], [0xFF, 0xFF, 0xFF, 0x7F],
        [0x00, 0x00, 0x00, 0x80], [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], Array("-1".utf8),
        Array("4294967296".utf8), Array("1e300".utf8), Array("\"".utf8), Array("{}".utf8), Array("[]".utf8),
    ]

    /// 1–4 mutations of `input`, splicing from `other` sometimes; at most `maxLength` bytes.
    public mutating func mutate(_ input: [UInt8], other: [UInt8], maxLength: Int) -> [UInt8] {
        var bytes = input
        for _ in 0...below(4) {
            switch below(9) {
            case 0 where !bytes.isEmpty:  // flip a bit
                let i = below(bytes.count)
                bytes[i] ^= UInt8(1) << UInt8(below(8))
            case 1 where !bytes.isEmpty:  // set a byte
                bytes[below(bytes.count)] = UInt8(truncatingIfNeeded: next())
            case 2:  // insert random bytes
                let n = 1 + below(8)
                bytes.insert(contentsOf: (0..<n).map { _ in UInt8(truncatingIfNeeded: next()) }, at: below(bytes.count + 1))
            case 3 where !bytes.isEmpty:  // delete a range
                let start = below(bytes.count)
                bytes.removeSubrange(start..<min(bytes.count, start + 1 + below(16)))
            case 4 where !bytes.isEmpty:  // overwrite with an interesting value
                let value = Self.interesting[below(Self.interesting.count)]
                let start = below(bytes.count)
                for (k, b) in value.enumerated() where start + k < bytes.count { bytes[start + k] = b }
            case 5 where !bytes.isEmpty:  // duplicate a range
                let start = below(bytes.count), end = min(bytes.count, start + 1 + below(64))
                bytes.insert(contentsOf: bytes[start..<end], at: below(bytes.count + 1))
            case 6 where !other.isEmpty:  // splice from another input
                let start = below(other.count), end = min(other.count, start + 1 + below(256))
                let at = below(bytes.count + 1)
                bytes.replaceSubrange(at..<min(bytes.count, at + (end - start)), with: other[start..<end])
            case 7 where !bytes.isEmpty:  // increment/decrement a byte (lengths, varints)
                let i = below(bytes.count)
                bytes[i] = below(2) == 0 ? bytes[i] &+ 1 : bytes[i] &- 1
            case 8 where bytes.count > 1:  // truncate
                bytes.removeLast(below(bytes.count))
            default:
                bytes.append(UInt8(truncatingIfNeeded: next()))
            }
        }
        if bytes.count > maxLength { bytes.removeLast(bytes.count - maxLength) }
        return bytes
    }
}
