import AtelierRequests
import Foundation

/// The size a PNG declares in its IHDR chunk, read from the first 24 bytes without decoding
/// anything. Every door checks it against its own limits first (`GenerationValidation`), so an
/// 800 KB file that declares 16384² pixels is refused before an 8 GiB buffer is allocated.
public enum PNGHeader {
    /// The declared width × height of PNG `bytes` (only the first 24 are read). `source` names
    /// the image in errors.
    public static func declaredSize(_ bytes: some Collection<UInt8>, source: String = "<memory>") throws -> ImageSize {
        let head = Array(bytes.prefix(24))
        guard head.count >= 8, head.starts(with: PNGCodec.signature) else {
            throw ImageError.notPNG(path: source, detectedFormat: PNGCodec.guessFormat(head))
        }
        guard head.count == 24 else { throw ImageError.truncated(path: source) }
        // IHDR must come first: length 13, type "IHDR", then width and height (big-endian).
        guard Array(head[8..<16]) == [0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52] else {
            throw ImageError.corrupt(path: source, detail: "the first chunk is not IHDR")
        }
        func be32(_ at: Int) -> Int { head[at..<at + 4].reduce(0) { $0 << 8 | Int($1) } }
        let width = be32(16), height = be32(20)
        guard width > 0, height > 0 else {
            throw ImageError.corrupt(path: source, detail: "IHDR declares a \(width)×\(height) image")
        }
        return ImageSize(width: width, height: height)
    }

    /// The declared size of the PNG file at `path`, reading only its first 24 bytes.
    public static func declaredSize(path: String) throws -> ImageSize {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDir) {
                throw ImageError.unreadable(path: path, reason: isDir.boolValue ? "it is a folder" : "permission denied")
            }
            throw ImageError.fileNotFound(path: path)
        }
        defer { try? handle.close() }
        let head: Data
        do { head = try handle.read(upToCount: 24) ?? Data() } catch {
            throw ImageError.unreadable(path: path, reason: "\(error)")
        }
        return try declaredSize(head, source: path)
    }
}

extension PNGReadLimits {
    /// The decoder's limits matching a door's declared-size limits (a second line of defence:
    /// the header is checked first).
    public init(maxSide: Int) {
        self.init(maxDimension: maxSide, maxPixels: maxSide * maxSide)
    }

    /// Init images, masks and depth maps (`RequestLimits.inputImageSide`).
    public static let inputImage = PNGReadLimits(maxSide: RequestLimits.inputImageSide)
}
