import CAtelierPNG
import Foundation

/// Limits checked before a decoded image's pixel buffer is allocated, so a hostile header
/// (a 100000x100000 IHDR in a 60-byte file) cannot make the reader allocate gigabytes.
public struct PNGReadLimits: Equatable, Sendable {
    public var maxDimension: Int
    public var maxPixels: Int

    public init(maxDimension: Int = 32_768, maxPixels: Int = 1 << 28) {
        self.maxDimension = maxDimension
        self.maxPixels = maxPixels
    }

    public static let `default` = PNGReadLimits()
}

/// PNG reading and writing through libpng (via the CAtelierPNG shim, which keeps libpng's
/// longjmp error handling out of Swift frames).
///
/// Reading never traps on bad input: every failure is an `ImageError` naming the file.
/// Writing is atomic (see `ImageFiles.writeAtomically`).
public enum PNGCodec {
    // MARK: Reading

    public static func read(contentsOf url: URL, limits: PNGReadLimits = .default) throws -> DecodedPNG {
        try read(path: url.path, limits: limits)
    }

    public static func read(path: String, limits: PNGReadLimits = .default) throws -> DecodedPNG {
        let bytes = try ImageFiles.read(path)
        return try decode(bytes, source: path, limits: limits)
    }

    /// Decodes PNG bytes; `source` names them in errors.
    public static func decode(_ bytes: [UInt8], source: String = "<memory>",
                              limits: PNGReadLimits = .default) throws -> DecodedPNG {
        if bytes.count < 8 || !bytes.starts(with: signature) {
            throw ImageError.notPNG(path: source, detectedFormat: guessFormat(bytes))
        }
        var image = atelier_png_image()
        defer { atelier_png_image_free(&image) }
        let status = bytes.withUnsafeBufferPointer { buffer in
            atelier_png_decode(buffer.baseAddress, buffer.count,
                               UInt32(clamping: max(limits.maxDimension, 0)),
                               UInt64(clamping: max(limits.maxPixels, 0)), &image)
        }
        let message = withUnsafeBytes(of: image.message) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        switch status {
        case ATELIER_PNG_OK:
            break
        case ATELIER_PNG_NOT_PNG:
            throw ImageError.notPNG(path: source, detectedFormat: guessFormat(bytes))
        case ATELIER_PNG_TRUNCATED:
            throw ImageError.truncated(path: source)
        case ATELIER_PNG_TOO_LARGE:
            throw ImageError.tooLarge(path: source, width: Int(image.width), height: Int(image.height),
                                      limit: "\(limits.maxDimension) pixels per side and \(limits.maxPixels) pixels in all")
        case ATELIER_PNG_UNSUPPORTED:
            throw ImageError.unsupportedFormat(path: source, detail: message)
        case ATELIER_PNG_OUT_OF_MEMORY:
            throw ImageError.unreadable(path: source, reason: "out of memory (\(message))")
        default:
            throw ImageError.corrupt(path: source, detail: message.isEmpty ? "libpng error" : message)
        }

        let width = Int(image.width), height = Int(image.height)
        let count = width * height * Int(image.channels)
        guard let base = image.pixels, image.pixels_length == count * Int(image.bit_depth / 8) else {
            throw ImageError.corrupt(path: source, detail: "decoder returned an inconsistent pixel buffer")
        }
        let samples = UnsafeBufferPointer(start: base, count: image.pixels_length)
        let pixels: DecodedPNG.Pixels
        switch (image.channels, image.bit_depth) {
        case (1, 8): pixels = .gray8(Array(samples))
        case (2, 8): pixels = .grayAlpha8(Array(samples))
        case (3, 8): pixels = .rgb8(Array(samples))
        case (4, 8): pixels = .rgba8(Array(samples))
        case (1, 16):
            // libpng hands 16-bit samples over big-endian (PNG byte order).
            pixels = .gray16((0..<count).map { UInt16(samples[2 * $0]) << 8 | UInt16(samples[2 * $0 + 1]) })
        default:
            throw ImageError.unsupportedFormat(
                path: source, detail: "\(image.channels) channels at \(image.bit_depth) bits")
        }

        var text = [String: String]()
        for i in 0..<Int(image.text_count) {
            let chunk = image.texts[i]
            guard let keyPointer = chunk.key else { continue }
            let key = latin1String(UnsafeBufferPointer(start: UnsafeRawPointer(keyPointer).assumingMemoryBound(to: UInt8.self),
                                                       count: strlen(keyPointer)))
            let valueBytes = UnsafeBufferPointer(start: chunk.text, count: chunk.text == nil ? 0 : chunk.text_length)
            text[key] = chunk.is_utf8 != 0 ? String(decoding: valueBytes, as: UTF8.self) : latin1String(valueBytes)
        }

        return DecodedPNG(width: width, height: height, pixels: pixels, text: text,
                          sourceColorType: Int(image.source_color_type),
                          sourceBitDepth: Int(image.source_bit_depth), source: source)
    }

    // MARK: Writing

    /// Writes an 8-bit RGB PNG atomically. Text chunks go before the image data.
    public static func write(_ image: RGBImage, to url: URL, text: [PNGTextChunk] = []) throws {
        try writeEncoded(to: url.path) {
            try encode(samples: image.pixels, width: image.width, height: image.height, channels: 3,
                       bitDepth: 8, text: text, destination: url.path)
        }
    }

    /// Writes an 8-bit RGB PNG carrying the AUTOMATIC1111 `parameters` chunk.
    public static func write(_ image: RGBImage, to url: URL, parameters: GenerationParameters,
                             extraText: [PNGTextChunk] = []) throws {
        try write(image, to: url, text: [.parameters(parameters)] + extraText)
    }

    /// Writes an 8-bit grayscale PNG (masks) atomically.
    public static func write(_ image: GrayImage, to url: URL, text: [PNGTextChunk] = []) throws {
        try writeEncoded(to: url.path) {
            try encode(samples: image.pixels, width: image.width, height: image.height, channels: 1,
                       bitDepth: 8, text: text, destination: url.path)
        }
    }

    /// Writes a 16-bit grayscale PNG (depth maps) atomically.
    public static func write(_ image: GrayImage16, to url: URL, text: [PNGTextChunk] = []) throws {
        try writeEncoded(to: url.path) {
            try encode(samples: bigEndianBytes(image.pixels), width: image.width, height: image.height,
                       channels: 1, bitDepth: 16, text: text, destination: url.path)
        }
    }

    /// PNG bytes for an 8-bit RGB image.
    public static func encode(_ image: RGBImage, text: [PNGTextChunk] = []) throws -> [UInt8] {
        try encode(samples: image.pixels, width: image.width, height: image.height, channels: 3,
                   bitDepth: 8, text: text, destination: nil)
    }

    /// PNG bytes for an 8-bit grayscale image.
    public static func encode(_ image: GrayImage, text: [PNGTextChunk] = []) throws -> [UInt8] {
        try encode(samples: image.pixels, width: image.width, height: image.height, channels: 1,
                   bitDepth: 8, text: text, destination: nil)
    }

    /// PNG bytes for a 16-bit grayscale image.
    public static func encode(_ image: GrayImage16, text: [PNGTextChunk] = []) throws -> [UInt8] {
        try encode(samples: bigEndianBytes(image.pixels), width: image.width, height: image.height,
                   channels: 1, bitDepth: 16, text: text, destination: nil)
    }

    // MARK: Internals

    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    private static func writeEncoded(to path: String, _ encodeBytes: () throws -> [UInt8]) throws {
        let bytes = try encodeBytes()
        try ImageFiles.writeAtomically(bytes, to: path)
    }

    private static func bigEndianBytes(_ samples: [UInt16]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: samples.count * 2)
        for (i, v) in samples.enumerated() {
            out[2 * i] = UInt8(v >> 8)
            out[2 * i + 1] = UInt8(v & 0xFF)
        }
        return out
    }

    /// Encodes packed samples. Keywords and values are laid out in one NUL-separated buffer so the
    /// C side gets stable pointers for the whole call.
    private static func encode(samples: [UInt8], width: Int, height: Int, channels: Int, bitDepth: Int,
                               text: [PNGTextChunk], destination: String?) throws -> [UInt8] {
        func failure(_ reason: String) -> ImageError {
            if let destination { return .writeFailed(path: destination, reason: reason) }
            return .invalidArgument("cannot encode PNG: \(reason)")
        }
        guard width > 0, height > 0, width <= Int(Int32.max), height <= Int(Int32.max),
              samples.count == width * height * channels * (bitDepth / 8) else {
            throw failure("invalid image size \(width)x\(height)")
        }
        let encodedText: [(key: [UInt8], value: [UInt8], utf8: Bool)]
        do {
            encodedText = try text.map { try $0.encoded() }
        } catch let error as ImageError {
            throw failure(error.description)
        }
        var storage = [UInt8]()
        var offsets = [(key: Int, value: Int, length: Int, utf8: Bool)]()
        for chunk in encodedText {
            let keyOffset = storage.count
            storage += chunk.key + [0]
            let valueOffset = storage.count
            storage += chunk.value + [0]
            offsets.append((keyOffset, valueOffset, chunk.value.count, chunk.utf8))
        }
        storage.append(0)  // never empty, so baseAddress is non-nil

        var buffer = atelier_png_buffer()
        defer { atelier_png_buffer_free(&buffer) }
        let status: atelier_png_status = storage.withUnsafeBufferPointer { store in
            guard let base = store.baseAddress else { return ATELIER_PNG_INVALID_ARGUMENT }
            let entries = offsets.map { o in
                atelier_png_text_in(
                    key: UnsafeRawPointer(base + o.key).assumingMemoryBound(to: CChar.self),
                    text: base + o.value, text_length: o.length, utf8: o.utf8 ? 1 : 0)
            }
            return samples.withUnsafeBufferPointer { pixels in
                entries.withUnsafeBufferPointer { list in
                    atelier_png_encode(pixels.baseAddress, UInt32(width), UInt32(height), Int32(channels),
                                       Int32(bitDepth), list.baseAddress, Int32(list.count), &buffer)
                }
            }
        }
        guard status == ATELIER_PNG_OK, let data = buffer.data else {
            let message = withUnsafeBytes(of: buffer.message) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            throw failure(message.isEmpty ? "libpng could not encode the image" : message)
        }
        return Array(UnsafeBufferPointer(start: data, count: buffer.length))
    }

    private static func latin1String(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        var scalars = String.UnicodeScalarView()
        for b in bytes { scalars.append(Unicode.Scalar(b)) }
        return String(scalars)
    }

    /// Names common non-PNG files so the error can say what the user actually passed.
    static func guessFormat(_ bytes: [UInt8]) -> String? {
        func starts(_ prefix: [UInt8], at offset: Int = 0) -> Bool {
            bytes.count >= offset + prefix.count && Array(bytes[offset..<(offset + prefix.count)]) == prefix
        }
        if bytes.isEmpty { return "an empty file" }
        if starts([0xFF, 0xD8, 0xFF]) { return "a JPEG image" }
        if starts(Array("GIF8".utf8)) { return "a GIF image" }
        if starts(Array("RIFF".utf8)) && starts(Array("WEBP".utf8), at: 8) { return "a WebP image" }
        if starts(Array("ftyp".utf8), at: 4) { return "an HEIF/AVIF image" }
        if starts([0x49, 0x49, 0x2A, 0x00]) || starts([0x4D, 0x4D, 0x00, 0x2A]) { return "a TIFF image" }
        if starts(Array("BM".utf8)) { return "a BMP image" }
        if starts([0x89, 0x50, 0x4E, 0x47]) {
            return "a PNG whose signature was damaged (often a text-mode transfer that rewrote line endings)"
        }
        if bytes.count < 8 { return "a \(bytes.count)-byte file, too short to be a PNG" }
        return nil
    }
}
