/// Everything that can go wrong reading or writing a safetensors file.
///
/// Each failure is its own case so tests (and callers that want to react, e.g. by suggesting a
/// re-download) can tell them apart, and every description starts with the file path and says
/// in plain words what is wrong and, where there is one, what to do about it: the person reading
/// it usually has a multi-gigabyte download that is truncated or is not what its name claims.
public enum SafeTensorsError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file could not be opened, stat-ed or mapped (`reason` is the system's message).
    case cannotOpen(path: String, reason: String)
    /// Shorter than the 8-byte header-length prefix every safetensors file starts with.
    case fileTooShort(path: String, size: Int)
    /// The header length prefix exceeds the sanity limit (100 MB, as in the reference reader).
    case headerTooLarge(path: String, headerLength: UInt64, limit: Int)
    /// The header length prefix points past the end of the file.
    case headerPastEnd(path: String, headerLength: UInt64, fileSize: Int)
    /// The header bytes are not valid JSON (or not UTF-8).
    case headerNotJSON(path: String, reason: String)
    /// The header is valid JSON but not an object (`found` is e.g. "an array").
    case headerNotObject(path: String, found: String)
    /// `__metadata__` is not an object mapping strings to strings.
    case invalidMetadata(path: String, reason: String)
    /// A tensor's entry is not a JSON object.
    case entryNotObject(path: String, tensor: String, found: String)
    /// A tensor's entry lacks `dtype`, `shape` or `data_offsets`.
    case missingField(path: String, tensor: String, field: String)
    /// A tensor's field has the wrong JSON type (`expected` describes the right one).
    case wrongFieldType(path: String, tensor: String, field: String, expected: String, found: String)
    /// A tensor's `dtype` is not one of the safetensors element types.
    case unknownDType(path: String, tensor: String, dtype: String)
    /// A shape entry is negative or not an integer (`shape` is the entry as written).
    case invalidShape(path: String, tensor: String, shape: String)
    /// The product of the shape (or its size in bytes) does not fit in a machine integer.
    case shapeOverflow(path: String, tensor: String, shape: [Int])
    /// `data_offsets` has begin > end.
    case invalidOffsets(path: String, tensor: String, begin: Int, end: Int)
    /// `data_offsets` reaches past the data section.
    case offsetsOutOfBounds(path: String, tensor: String, begin: Int, end: Int, dataSize: Int)
    /// The byte range's length is not element count × dtype size.
    case byteSizeMismatch(path: String, tensor: String, dtype: SafeTensorDType, shape: [Int], expected: Int, actual: Int)
    /// Two tensors claim some of the same bytes.
    case overlappingTensors(path: String, first: String, second: String)
    /// No tensor of that name in the file.
    case tensorNotFound(path: String, name: String)
    /// The tensor exists but its element type cannot be converted to fp32.
    case unsupportedDType(path: String, tensor: String, dtype: SafeTensorDType)
    /// The writer was given a name the format cannot hold (empty, duplicate, `__metadata__`).
    case invalidTensorName(path: String, name: String, reason: String)
    /// The writer was asked for an element type it does not write.
    case unsupportedWriteDType(path: String, dtype: SafeTensorDType)
    /// Creating or writing the output file failed (`reason` is the system's message).
    case writeFailed(path: String, reason: String)

    /// The file the error is about.
    public var path: String {
        switch self {
        case .cannotOpen(let path, _), .fileTooShort(let path, _), .headerTooLarge(let path, _, _),
             .headerPastEnd(let path, _, _), .headerNotJSON(let path, _), .headerNotObject(let path, _),
             .invalidMetadata(let path, _), .entryNotObject(let path, _, _), .missingField(let path, _, _),
             .wrongFieldType(let path, _, _, _, _), .unknownDType(let path, _, _), .invalidShape(let path, _, _),
             .shapeOverflow(let path, _, _), .invalidOffsets(let path, _, _, _),
             .offsetsOutOfBounds(let path, _, _, _, _), .byteSizeMismatch(let path, _, _, _, _, _),
             .overlappingTensors(let path, _, _), .tensorNotFound(let path, _), .unsupportedDType(let path, _, _),
             .invalidTensorName(let path, _, _), .unsupportedWriteDType(let path, _), .writeFailed(let path, _):
            return path
        }
    }

    public var description: String {
        let corrupt = "the file is corrupt or was not written by a safetensors writer; re-download or re-convert it"
        switch self {
        case .cannotOpen(let path, let reason):
            return "\(path): cannot open for reading: \(reason)"
        case .fileTooShort(let path, let size):
            return "\(path): only \(size) bytes long, shorter than the 8-byte header length every safetensors file starts with (empty, truncated or not a safetensors file?)"
        case .headerTooLarge(let path, let length, let limit):
            return "\(path): header length \(length) exceeds the \(limit)-byte limit for a safetensors header (not a safetensors file?)"
        case .headerPastEnd(let path, let length, let size):
            return "\(path): header length \(length) points past the end of the \(size)-byte file (truncated or not a safetensors file?)"
        case .headerNotJSON(let path, let reason):
            return "\(path): header is not valid JSON (\(reason)); \(corrupt)"
        case .headerNotObject(let path, let found):
            return "\(path): header is \(found), but a safetensors header must be a JSON object mapping tensor names to entries; \(corrupt)"
        case .invalidMetadata(let path, let reason):
            return "\(path): \"__metadata__\" must map strings to strings, but \(reason); \(corrupt)"
        case .entryNotObject(let path, let tensor, let found):
            return "\(path): entry for tensor \"\(tensor)\" is \(found), expected an object with dtype, shape and data_offsets; \(corrupt)"
        case .missingField(let path, let tensor, let field):
            return "\(path): tensor \"\(tensor)\" has no \"\(field)\" field (every entry needs dtype, shape and data_offsets); \(corrupt)"
        case .wrongFieldType(let path, let tensor, let field, let expected, let found):
            return "\(path): tensor \"\(tensor)\" field \"\(field)\" must be \(expected), found \(found); \(corrupt)"
        case .unknownDType(let path, let tensor, let dtype):
            let known = SafeTensorDType.allCases.map(\.rawValue).joined(separator: ", ")
            return "\(path): tensor \"\(tensor)\" has unknown dtype \"\(dtype)\" (known: \(known)); the file may come from a newer safetensors version or be corrupt"
        case .invalidShape(let path, let tensor, let shape):
            return "\(path): tensor \"\(tensor)\" has shape \(shape), but shape entries must be non-negative integers; \(corrupt)"
        case .shapeOverflow(let path, let tensor, let shape):
            return "\(path): tensor \"\(tensor)\" has shape \(shape), whose size overflows a 64-bit integer; \(corrupt)"
        case .invalidOffsets(let path, let tensor, let begin, let end):
            return "\(path): tensor \"\(tensor)\" has data_offsets [\(begin), \(end)], whose begin is after its end; \(corrupt)"
        case .offsetsOutOfBounds(let path, let tensor, let begin, let end, let dataSize):
            return "\(path): tensor \"\(tensor)\" has data_offsets [\(begin), \(end)], past the end of the \(dataSize)-byte data section (truncated download?)"
        case .byteSizeMismatch(let path, let tensor, let dtype, let shape, let expected, let actual):
            return "\(path): tensor \"\(tensor)\" is \(dtype) with shape \(shape), which needs \(expected) bytes, but its data_offsets span \(actual) bytes; \(corrupt)"
        case .overlappingTensors(let path, let first, let second):
            return "\(path): tensors \"\(first)\" and \"\(second)\" overlap in the data section; \(corrupt)"
        case .tensorNotFound(let path, let name):
            return "\(path): no tensor named \"\(name)\" (wrong checkpoint for this model, or a different naming scheme?)"
        case .unsupportedDType(let path, let tensor, let dtype):
            return "\(path): tensor \"\(tensor)\" is stored as \(dtype), which Atelier cannot convert to fp32; re-save the checkpoint as F32, F16 or BF16"
        case .invalidTensorName(let path, let name, let reason):
            return "\(path): cannot write tensor named \"\(name)\": \(reason)"
        case .unsupportedWriteDType(let path, let dtype):
            return "\(path): cannot write tensors as \(dtype); the writer supports F32 and F16"
        case .writeFailed(let path, let reason):
            return "\(path): cannot write file: \(reason)"
        }
    }
}
