/// Everything that can go wrong reading, writing or converting an image. Every case names the
/// file (when there is one) and says what to do about it, because these messages reach the user
/// of the CLI verbatim.
public enum ImageError: Error, CustomStringConvertible, Equatable, Sendable {
    /// Nothing exists at the path.
    case fileNotFound(path: String)
    /// The path exists but could not be read (a directory, no permission, an I/O error).
    case unreadable(path: String, reason: String)
    /// The file does not start with the PNG signature. `detectedFormat` names what it looks like
    /// instead ("JPEG", "an empty file", ...), when recognisable.
    case notPNG(path: String, detectedFormat: String?)
    /// The file ends before the image does (an interrupted download or copy).
    case truncated(path: String)
    /// libpng rejected the data: a bad checksum, a broken compressed stream, an invalid header.
    case corrupt(path: String, detail: String)
    /// A well-formed file in a layout this reader does not handle, or a conversion that has no
    /// meaning for the image (for example a grayscale-only operation on colour data).
    case unsupportedFormat(path: String, detail: String)
    /// The image is larger than the reader's limits; refused before allocating its pixels.
    case tooLarge(path: String, width: Int, height: Int, limit: String)
    /// The output could not be written; the destination is left as it was.
    case writeFailed(path: String, reason: String)
    /// Invalid arguments to an image operation (sizes, channel counts, text chunk contents).
    case invalidArgument(String)

    public var description: String {
        switch self {
        case .fileNotFound(let path):
            return "\(path): no such file; check the path"
        case .unreadable(let path, let reason):
            return "\(path): cannot read the file (\(reason))"
        case .notPNG(let path, let detected):
            if let detected {
                return "\(path): not a PNG file (it looks like \(detected)); convert it to PNG first"
            }
            return "\(path): not a PNG file (the PNG signature is missing); convert it to PNG first"
        case .truncated(let path):
            return "\(path): the PNG file is truncated (it ends before the image does); re-export or re-download it"
        case .corrupt(let path, let detail):
            return "\(path): the PNG file is corrupt (\(detail)); re-export it"
        case .unsupportedFormat(let path, let detail):
            return "\(path): unsupported image format (\(detail))"
        case .tooLarge(let path, let width, let height, let limit):
            return "\(path): image is \(width)x\(height), larger than the limit of \(limit); downscale it first"
        case .writeFailed(let path, let reason):
            return "\(path): could not write the image (\(reason)); the destination was not changed"
        case .invalidArgument(let message):
            return message
        }
    }
}
