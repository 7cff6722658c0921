/// The validated header of a safetensors file.
///
/// Layout: an 8-byte little-endian u64 `N`, then `N` bytes of JSON, then the data section.
/// The JSON maps each tensor name to `{"dtype", "shape", "data_offsets": [begin, end]}`
/// (offsets relative to the data section) plus an optional `"__metadata__"` string map.
///
/// Everything is checked here, once, so that reading a tensor later is plain pointer
/// arithmetic that cannot go out of bounds: a weight file is untrusted input (a truncated
/// download, a renamed pickle, a hand-edited header) and must fail with a message, not a crash.
/// Gaps in the data section are allowed (they are harmless); overlaps are not, because they
/// mean two tensors alias each other's bytes, which no correct writer produces.
struct SafeTensorsHeader {
    /// Same sanity limit as the reference implementation: SD-sized headers are ~200 KB.
    static let maxLength = 100_000_000
    static let metadataKey = "__metadata__"

    /// `N`, the JSON length in bytes.
    let length: Int
    /// File offset of the data section (`8 + N`).
    var dataStart: Int { 8 + length }
    let tensors: [String: SafeTensorInfo]
    let metadata: [String: String]

    /// Parses and validates the header at the start of `file` (the whole file's bytes).
    init(path: String, file: UnsafeRawBufferPointer) throws {
        guard file.count >= 8 else { throw SafeTensorsError.fileTooShort(path: path, size: file.count) }
        let declared = UInt64(littleEndian: file.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        let available = file.count - 8
        guard declared <= UInt64(available) else {
            throw SafeTensorsError.headerPastEnd(path: path, headerLength: declared, fileSize: file.count)
        }
        guard declared <= UInt64(Self.maxLength) else {
            throw SafeTensorsError.headerTooLarge(path: path, headerLength: declared, limit: Self.maxLength)
        }
        let length = Int(declared)
        let json: SafeTensorsJSONValue
        do {
            json = try SafeTensorsJSONParser.parse(UnsafeRawBufferPointer(rebasing: file[8..<(8 + length)]))
        } catch let failure as SafeTensorsJSONParser.Failure {
            throw SafeTensorsError.headerNotJSON(path: path, reason: "\(failure.message) at byte \(failure.offset) of the header")
        }
        guard case .object(let members) = json else {
            throw SafeTensorsError.headerNotObject(path: path, found: json.kindDescription)
        }

        let dataSize = available - length
        var metadata: [String: String] = [:]
        var tensors: [String: SafeTensorInfo] = [:]
        // Sorted so that a file with several problems always reports the same one first.
        for name in members.keys.sorted() {
            guard let value = members[name] else { continue }
            if name == Self.metadataKey {
                metadata = try Self.parseMetadata(value, path: path)
                continue
            }
            tensors[name] = try Self.parseEntry(name: name, value: value, path: path,
                                                dataStart: 8 + length, dataSize: dataSize)
        }
        try Self.checkNoOverlaps(tensors.values, path: path)
        self.length = length
        self.tensors = tensors
        self.metadata = metadata
    }

    private static func parseMetadata(_ value: SafeTensorsJSONValue, path: String) throws -> [String: String] {
        guard case .object(let members) = value else {
            throw SafeTensorsError.invalidMetadata(path: path, reason: "it is \(value.kindDescription)")
        }
        var metadata: [String: String] = [:]
        for (key, entry) in members {
            guard case .string(let string) = entry else {
                throw SafeTensorsError.invalidMetadata(path: path, reason: "key \"\(key)\" holds \(entry.kindDescription)")
            }
            metadata[key] = string
        }
        return metadata
    }

    private static func parseEntry(name: String, value: SafeTensorsJSONValue, path: String,
                                   dataStart: Int, dataSize: Int) throws -> SafeTensorInfo {
        guard case .object(let fields) = value else {
            throw SafeTensorsError.entryNotObject(path: path, tensor: name, found: value.kindDescription)
        }
        func field(_ key: String) throws -> SafeTensorsJSONValue {
            guard let value = fields[key] else { throw SafeTensorsError.missingField(path: path, tensor: name, field: key) }
            return value
        }

        // dtype
        let dtypeValue = try field("dtype")
        guard case .string(let dtypeName) = dtypeValue else {
            throw SafeTensorsError.wrongFieldType(path: path, tensor: name, field: "dtype",
                                                  expected: "a string such as \"F32\"", found: dtypeValue.kindDescription)
        }
        guard let dtype = SafeTensorDType(rawValue: dtypeName) else {
            throw SafeTensorsError.unknownDType(path: path, tensor: name, dtype: dtypeName)
        }

        // shape
        let shapeValue = try field("shape")
        guard case .array(let dimensions) = shapeValue else {
            throw SafeTensorsError.wrongFieldType(path: path, tensor: name, field: "shape",
                                                  expected: "an array of non-negative integers", found: shapeValue.kindDescription)
        }
        var shape: [Int] = []
        shape.reserveCapacity(dimensions.count)
        for dimension in dimensions {
            guard case .integer(let size) = dimension, size >= 0 else {
                throw SafeTensorsError.invalidShape(path: path, tensor: name, shape: shapeValue.compactText)
            }
            shape.append(size)
        }

        // data_offsets
        let offsetsValue = try field("data_offsets")
        guard case .array(let offsets) = offsetsValue, offsets.count == 2,
              case .integer(let begin) = offsets[0], case .integer(let end) = offsets[1],
              begin >= 0, end >= 0 else {
            throw SafeTensorsError.wrongFieldType(path: path, tensor: name, field: "data_offsets",
                                                  expected: "an array of two non-negative integers [begin, end]",
                                                  found: offsetsValue.compactText)
        }
        guard begin <= end else {
            throw SafeTensorsError.invalidOffsets(path: path, tensor: name, begin: begin, end: end)
        }
        guard end <= dataSize else {
            throw SafeTensorsError.offsetsOutOfBounds(path: path, tensor: name, begin: begin, end: end, dataSize: dataSize)
        }

        // size: product(shape) × dtype size, without overflowing
        var elements = 1
        for size in shape {
            let (product, overflow) = elements.multipliedReportingOverflow(by: size)
            guard !overflow else { throw SafeTensorsError.shapeOverflow(path: path, tensor: name, shape: shape) }
            elements = product
        }
        let (expectedBytes, overflow) = elements.multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow else { throw SafeTensorsError.shapeOverflow(path: path, tensor: name, shape: shape) }
        guard expectedBytes == end - begin else {
            throw SafeTensorsError.byteSizeMismatch(path: path, tensor: name, dtype: dtype, shape: shape,
                                                    expected: expectedBytes, actual: end - begin)
        }
        // dataStart + end <= file size, so these cannot overflow.
        return SafeTensorInfo(name: name, dtype: dtype, shape: shape, dataOffsets: begin..<end,
                              fileRange: (dataStart + begin)..<(dataStart + end))
    }

    /// Sorts the non-empty ranges by start and checks each begins at or after the furthest end
    /// seen so far. Empty tensors own no bytes, so they cannot overlap anything.
    private static func checkNoOverlaps(_ tensors: some Collection<SafeTensorInfo>, path: String) throws {
        let ranges = tensors.filter { !$0.dataOffsets.isEmpty }.sorted {
            ($0.dataOffsets.lowerBound, $0.name) < ($1.dataOffsets.lowerBound, $1.name)
        }
        guard var furthest = ranges.first else { return }
        for info in ranges.dropFirst() {
            if info.dataOffsets.lowerBound < furthest.dataOffsets.upperBound {
                throw SafeTensorsError.overlappingTensors(path: path, first: furthest.name, second: info.name)
            }
            if info.dataOffsets.upperBound > furthest.dataOffsets.upperBound { furthest = info }
        }
    }
}

extension SafeTensorsJSONValue {
    /// Compact JSON-ish rendering for error messages (`[2, -1]`), truncated if long.
    var compactText: String {
        let text: String
        switch self {
        case .null: text = "null"
        case .bool(let value): text = String(value)
        case .integer(let value): text = String(value)
        case .number(let value): text = String(value)
        case .string(let value): text = Self.quoted(value)
        case .array(let values): text = "[" + values.map(\.compactText).joined(separator: ", ") + "]"
        case .object(let members):
            text = "{" + members.keys.sorted().map { Self.quoted($0) + ": " + (members[$0]?.compactText ?? "") }
                .joined(separator: ", ") + "}"
        }
        return text.count > 120 ? String(text.prefix(117)) + "..." : text
    }
}
