/// Element types a safetensors header may name, spelled exactly as in the format's `dtype`
/// field (the raw value), so parsing a header is a plain `init(rawValue:)`.
///
/// Every byte-sized type of the reference implementation is listed, even those Atelier cannot
/// convert (the 8-bit floats, complex): a file that uses them is still a *valid* file, so the
/// header parses and only asking for that one tensor fails with `unsupportedDType`. A dtype
/// outside this list (including the sub-byte `F4`/`F6_*` packings) is `unknownDType`.
public enum SafeTensorDType: String, Sendable, CaseIterable, CustomStringConvertible {
    case bool = "BOOL"
    case u8 = "U8"
    case i8 = "I8"
    case f8E5M2 = "F8_E5M2"
    case f8E4M3 = "F8_E4M3"
    case f8E8M0 = "F8_E8M0"
    case i16 = "I16"
    case u16 = "U16"
    case f16 = "F16"
    case bf16 = "BF16"
    case i32 = "I32"
    case u32 = "U32"
    case f32 = "F32"
    case c64 = "C64"
    case f64 = "F64"
    case i64 = "I64"
    case u64 = "U64"

    /// Bytes per element; the header's byte range must equal this × the element count.
    public var byteSize: Int {
        switch self {
        case .bool, .u8, .i8, .f8E5M2, .f8E4M3, .f8E8M0: 1
        case .i16, .u16, .f16, .bf16: 2
        case .i32, .u32, .f32: 4
        case .c64, .f64, .i64, .u64: 8
        }
    }

    /// Whether `SafeTensorsFile.tensor(_:)` can turn this type into an fp32 `Tensor`.
    /// Integer and boolean types are converted too (fixtures store token ids and timesteps
    /// that way); the 8-bit floats and complex numbers have no single sensible fp32 reading.
    public var isConvertibleToFloat32: Bool {
        switch self {
        case .f8E5M2, .f8E4M3, .f8E8M0, .c64: false
        default: true
        }
    }

    public var description: String { rawValue }
}
