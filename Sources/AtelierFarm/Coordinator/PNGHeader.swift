import Foundation

/// The size a PNG declares in its IHDR chunk, read from the first 24 bytes without decoding
/// anything. A result is checked against the size its task must have *before* it is decoded: a
/// 782 KB PNG can declare 16384×16384 and make a decoder allocate gigabytes, so the declared size
/// is the first thing a coordinator looks at.
struct PNGHeader: Equatable, Sendable {
    let width: Int
    let height: Int

    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// Parses the signature and the IHDR chunk (which the PNG spec requires to come first).
    /// - Throws: `CoordinatorError.invalid` naming what is wrong.
    init(_ png: Data, field: String = "result_png") throws {
        let bytes = png.prefix(24)
        guard bytes.count == 24 else {
            throw CoordinatorError.invalid("\(field) is \(png.count) bytes, too short to be a PNG")
        }
        let b = [UInt8](bytes)
        guard Array(b[0..<8]) == PNGHeader.signature else {
            throw CoordinatorError.invalid("\(field) is not a PNG (its first 8 bytes are not the PNG signature)")
        }
        func u32(_ at: Int) -> UInt32 {
            UInt32(b[at]) << 24 | UInt32(b[at + 1]) << 16 | UInt32(b[at + 2]) << 8 | UInt32(b[at + 3])
        }
        guard u32(8) == 13, b[12] == 0x49, b[13] == 0x48, b[14] == 0x44, b[15] == 0x52 else {
            throw CoordinatorError.invalid("\(field) does not start with an IHDR chunk")
        }
        let w = u32(16), h = u32(20)
        guard w > 0, h > 0, w <= 0x7FFF_FFFF, h <= 0x7FFF_FFFF else {
            throw CoordinatorError.invalid("\(field) declares an invalid size \(w)x\(h)")
        }
        width = Int(w)
        height = Int(h)
    }
}
