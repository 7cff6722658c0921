/// What a safetensors header says about one tensor, already validated: the dtype is known,
/// the shape's size fits in an `Int`, and the byte range lies inside the data section and is
/// exactly `elementCount × dtype.byteSize` long.
public struct SafeTensorInfo: Equatable, Hashable, Sendable {
    public let name: String
    public let dtype: SafeTensorDType
    public let shape: [Int]
    /// The header's `data_offsets`: bytes relative to the start of the data section.
    public let dataOffsets: Range<Int>
    /// The same bytes as offsets from the start of the file (`dataOffsets` + 8 + header length).
    public let fileRange: Range<Int>

    public init(name: String, dtype: SafeTensorDType, shape: [Int], dataOffsets: Range<Int>, fileRange: Range<Int>) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.dataOffsets = dataOffsets
        self.fileRange = fileRange
    }

    /// Number of elements (1 for a scalar, whose shape is `[]`).
    public var elementCount: Int { shape.reduce(1, *) }

    /// Size of the tensor's data in the file.
    public var byteCount: Int { dataOffsets.count }
}
