/// A PNG text chunk to write. The chunk type follows PIL's `PngInfo.add_text`, which is how
/// AUTOMATIC1111 stores its `parameters`: tEXt when the value is Latin-1, otherwise an uncompressed
/// iTXt holding UTF-8 (with empty language tag and translated keyword).
public struct PNGTextChunk: Equatable, Sendable {
    public var key: String
    public var value: String

    public init(key: String, value: String) {
        self.key = key
        self.value = value
    }

    /// The `parameters` chunk AUTOMATIC1111-compatible tools read (A1111's PNG Info tab, Civitai,
    /// ComfyUI importers, InvokeAI).
    public static func parameters(_ parameters: GenerationParameters) -> PNGTextChunk {
        PNGTextChunk(key: GenerationParameters.pngTextKey, value: parameters.a1111Text())
    }

    /// Whether the value fits a tEXt chunk (every character is Latin-1).
    public var isLatin1: Bool { value.unicodeScalars.allSatisfy { $0.value <= 0xFF } }

    /// Bytes as they go into the file: the keyword in Latin-1, the value in Latin-1 or UTF-8.
    func encoded() throws -> (key: [UInt8], value: [UInt8], utf8: Bool) {
        let keyScalars = Array(key.unicodeScalars)
        guard (1...79).contains(keyScalars.count),
              keyScalars.allSatisfy({ (0x20...0x7E).contains($0.value) || (0xA1...0xFF).contains($0.value) }),
              keyScalars.first != " ", keyScalars.last != " ", !key.contains("  ") else {
            throw ImageError.invalidArgument(
                "PNG text keyword \"\(key)\" is invalid: it must be 1-79 printable Latin-1 characters "
                + "without leading, trailing or double spaces")
        }
        guard !value.unicodeScalars.contains("\u{0}") else {
            throw ImageError.invalidArgument("PNG text chunk \"\(key)\" contains a NUL character, which PNG text cannot hold")
        }
        let keyBytes = keyScalars.map { UInt8($0.value) }
        if isLatin1 {
            return (keyBytes, value.unicodeScalars.map { UInt8($0.value) }, false)
        }
        return (keyBytes, Array(value.utf8), true)
    }
}
