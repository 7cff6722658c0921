import AtelierKernels
@testable import AtelierModels
import Foundation
import XCTest

/// Reading well-formed files: round trips through the writer, zero-copy F32, dtype decoding.
final class SafeTensorsFileTests: XCTestCase {
    private var scratch: SafeTensorsScratch!

    override func setUpWithError() throws { scratch = try SafeTensorsScratch() }
    override func tearDown() { scratch.remove() }

    /// A header entry for hand-crafted files.
    private func entry(_ dtype: String, _ shape: [Int], _ begin: Int, _ end: Int) -> String {
        #"{"dtype":"\#(dtype)","shape":[\#(shape.map(String.init).joined(separator: ","))],"data_offsets":[\#(begin),\#(end)]}"#
    }

    private func littleEndianBytes<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
        values.flatMap { withUnsafeBytes(of: $0.littleEndian) { Array($0) } }
    }

    // MARK: - F32 round trip

    func testF32RoundTripReturnsTensorsThatBorrowTheMapping() throws {
        let weight = Tensor(shape: [2, 3], values: [1, -2, 3.5, 0, .greatestFiniteMagnitude, -.leastNonzeroMagnitude])
        let bias = Tensor(shape: [3], values: [0.25, 0.5, 0.75])
        let url = scratch.url("model.safetensors")
        try SafeTensorsWriter.write([("layer.weight", weight), ("layer.bias", bias)], to: url)

        let file = try SafeTensorsFile(url: url)
        XCTAssertEqual(file.url, url)
        XCTAssertEqual(file.count, 2)
        let readWeight = try file.tensor("layer.weight")
        XCTAssertEqual(readWeight.shape, [2, 3])
        XCTAssertEqual(readWeight.scalars, weight.scalars)
        XCTAssertEqual(try file.tensor("layer.bias").scalars, bias.scalars)

        // Zero copy: the elements live inside the mapping, not in a fresh allocation.
        XCTAssertTrue(file.isMapped(readWeight))
        XCTAssertTrue(file.isMapped(try file.tensor("layer.bias")))
        XCTAssertFalse(file.isMapped(weight))
        XCTAssertEqual(readWeight.pointer, try file.tensor("layer.weight").pointer,
                       "the same mapped bytes are handed out each time")
        XCTAssertEqual(file.info("layer.weight")?.fileRange.count, 24)
    }

    func testBorrowedTensorsKeepTheMappingAliveAfterTheFileIsReleased() throws {
        let url = scratch.url("alive.safetensors")
        try SafeTensorsWriter.write([("x", Tensor(shape: [4], values: [1, 2, 3, 4]))], to: url)
        var file: SafeTensorsFile? = try SafeTensorsFile(url: url)
        weak let weakFile = file
        let tensor = try XCTUnwrap(file).tensor("x")
        file = nil
        XCTAssertNotNil(weakFile, "the borrowed storage must retain the file (and its mapping)")
        XCTAssertEqual(tensor.scalars, [1, 2, 3, 4])
    }

    func testMisalignedF32DataIsCopiedInsteadOfBorrowed() throws {
        // Pad the header so the data section starts at an odd offset: the floats are misaligned.
        let header = #"{"x":\#(entry("F32", [2], 0, 8))}"#
        var padded = header
        while (8 + padded.utf8.count) % 4 != 1 { padded += " " }
        let url = try scratch.craft(header: padded, data: safeTensorsBytes([1.5, -7]))
        let file = try SafeTensorsFile(url: url)
        let tensor = try file.tensor("x")
        XCTAssertEqual(tensor.scalars, [1.5, -7])
        XCTAssertFalse(file.isMapped(tensor))
    }

    func testNamesAreSortedAndInfoDescribesEachTensorWithoutReadingIt() throws {
        let url = scratch.url("info.safetensors")
        var writer = SafeTensorsWriter()
        writer.add("zeta", Tensor(shape: [1], values: [1]))
        writer.add("alpha", Tensor(zeros: [2, 2]), as: .f16)
        writer.add("mid", Tensor(zeros: [3]))
        try writer.write(to: url)

        let file = try SafeTensorsFile(url: url)
        XCTAssertEqual(file.names, ["alpha", "mid", "zeta"])
        XCTAssertTrue(file.contains("mid"))
        XCTAssertFalse(file.contains("missing"))
        XCTAssertNil(file.info("missing"))
        let alpha = try XCTUnwrap(file.info("alpha"))
        XCTAssertEqual(alpha.dtype, .f16)
        XCTAssertEqual(alpha.shape, [2, 2])
        XCTAssertEqual(alpha.elementCount, 4)
        XCTAssertEqual(alpha.byteCount, 8)
        XCTAssertEqual(alpha.fileRange.lowerBound, file.dataStart + alpha.dataOffsets.lowerBound)
        // Widest dtype first: the F32 tensors come before the F16 one in the data section.
        XCTAssertEqual(file.info("zeta")?.dataOffsets, 0..<4)
        XCTAssertEqual(file.info("mid")?.dataOffsets, 4..<16)
        XCTAssertEqual(alpha.dataOffsets, 16..<24)
    }

    func testScalarTensorsHaveAnEmptyShapeAndOneElement() throws {
        let url = scratch.url("scalar.safetensors")
        try SafeTensorsWriter.write([("t", Tensor(shape: [], values: [42]))], to: url)
        let tensor = try SafeTensorsFile(url: url).tensor("t")
        XCTAssertEqual(tensor.shape, [])
        XCTAssertEqual(tensor.scalars, [42])
    }

    // MARK: - Metadata and header layout

    func testMetadataRoundTripsIncludingCharactersThatNeedEscaping() throws {
        let metadata = ["format": "pt", "note": "quote \" backslash \\ newline \n tab \t ünïcode ✓", "empty": ""]
        let url = scratch.url("meta.safetensors")
        try SafeTensorsWriter.write([("x", Tensor(zeros: [1]))], to: url, metadata: metadata)
        XCTAssertEqual(try SafeTensorsFile(url: url).metadata, metadata)
    }

    func testFileWithoutMetadataHasEmptyMetadata() throws {
        let url = scratch.url("nometa.safetensors")
        try SafeTensorsWriter.write([("x", Tensor(zeros: [1]))], to: url)
        XCTAssertEqual(try SafeTensorsFile(url: url).metadata, [:])
        let bytes = try [UInt8](Data(contentsOf: url))
        XCTAssertFalse(String(decoding: bytes, as: UTF8.self).contains("__metadata__"))
    }

    func testWriterPadsTheHeaderWithSpacesToAMultipleOfEight() throws {
        for nameLength in 1...9 {
            let url = scratch.url("pad\(nameLength).safetensors")
            try SafeTensorsWriter.write([(String(repeating: "n", count: nameLength), Tensor(zeros: [1]))], to: url)
            let bytes = try [UInt8](Data(contentsOf: url))
            let length = bytes[0..<8].reversed().reduce(0) { $0 << 8 | Int($1) }
            XCTAssertEqual(length % 8, 0)
            XCTAssertEqual(bytes[8], UInt8(ascii: "{"))
            let header = bytes[8..<(8 + length)]
            let closing = try XCTUnwrap(header.lastIndex(of: UInt8(ascii: "}")))
            XCTAssertTrue(header[(closing + 1)...].allSatisfy { $0 == UInt8(ascii: " ") })
            XCTAssertLessThan(header.endIndex - closing - 1, 8)
            XCTAssertEqual(bytes.count, 8 + length + 4)
            XCTAssertEqual(try SafeTensorsFile(url: url).dataStart % 8, 0)
        }
    }

    func testWriterRejectsEmptyDuplicateAndReservedNamesAndUnsupportedDTypes() throws {
        let url = scratch.url("bad.safetensors")
        let x = Tensor(zeros: [1])
        XCTAssertThrowsError(try SafeTensorsWriter.write([("a", x), ("a", x)], to: url)) {
            XCTAssertEqual($0 as? SafeTensorsError, .invalidTensorName(path: url.path, name: "a", reason: "added more than once"))
        }
        XCTAssertThrowsError(try SafeTensorsWriter.write([("", x)], to: url)) {
            XCTAssertEqual($0 as? SafeTensorsError, .invalidTensorName(path: url.path, name: "", reason: "names must not be empty"))
        }
        XCTAssertThrowsError(try SafeTensorsWriter.write([("__metadata__", x)], to: url)) {
            guard case .invalidTensorName(_, "__metadata__", _)? = $0 as? SafeTensorsError else { return XCTFail("got \($0)") }
        }
        XCTAssertThrowsError(try SafeTensorsWriter.write([("a", x)], to: url, as: .bf16)) {
            XCTAssertEqual($0 as? SafeTensorsError, .unsupportedWriteDType(path: url.path, dtype: .bf16))
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: url.path), "nothing is written when validation fails")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scratch.directory.path), [],
                       "no temporary files are left behind")
    }

    func testWriterReportsAnUnwritableDestination() throws {
        let url = scratch.url("no-such-folder/model.safetensors")
        XCTAssertThrowsError(try SafeTensorsWriter.write([("a", Tensor(zeros: [1]))], to: url)) { error in
            guard case .writeFailed(url.path, _)? = error as? SafeTensorsError else { return XCTFail("got \(error)") }
        }
    }

    // MARK: - Lookup errors

    func testUnknownTensorNameThrowsNamingTheTensorAndTheFile() throws {
        let url = scratch.url("names.safetensors")
        try SafeTensorsWriter.write([("present", Tensor(zeros: [1]))], to: url)
        let file = try SafeTensorsFile(url: url)
        XCTAssertThrowsError(try file.tensor("absent.weight")) { error in
            XCTAssertEqual(error as? SafeTensorsError, .tensorNotFound(path: url.path, name: "absent.weight"))
            XCTAssertTrue("\(error)".contains("absent.weight"))
            XCTAssertTrue("\(error)".contains(url.path))
        }
    }

    func testEightBitFloatTensorIsUnsupportedButTheRestOfTheFileLoads() throws {
        let header = #"{"fp8":\#(entry("F8_E4M3", [4], 0, 4)),"ok":\#(entry("U8", [4], 4, 8))}"#
        let url = try scratch.craft(header: header, data: [1, 2, 3, 4, 5, 6, 7, 8])
        let file = try SafeTensorsFile(url: url)
        XCTAssertEqual(file.info("fp8")?.dtype, .f8E4M3)
        XCTAssertThrowsError(try file.tensor("fp8")) { error in
            XCTAssertEqual(error as? SafeTensorsError, .unsupportedDType(path: url.path, tensor: "fp8", dtype: .f8E4M3))
            XCTAssertTrue("\(error)".contains("\"fp8\""))
        }
        XCTAssertEqual(try file.tensor("ok").scalars, [5, 6, 7, 8])
    }

    // MARK: - Half precision

    func testF16DecodesKnownValuesIncludingSubnormalsInfinityAndNaN() throws {
        let cases: [(UInt16, Float)] = [
            (0x3C00, 1.0), (0xC100, -2.5), (0x7BFF, 65504), (0xFBFF, -65504),
            (0x0001, 0x1p-24), (0x03FF, 1023 * 0x1p-24), (0x0400, 0x1p-14),
            (0x3555, 0.333251953125), (0x0000, 0), (0x7C00, .infinity), (0xFC00, -.infinity),
        ]
        var bits = cases.map(\.0)
        bits += [0x8000, 0x7E00, 0xFE01]  // -0, quiet NaN, negative NaN with payload
        let url = try scratch.craft(header: #"{"h":\#(entry("F16", [bits.count], 0, 2 * bits.count))}"#,
                                    data: littleEndianBytes(bits))
        let values = try SafeTensorsFile(url: url).tensor("h").scalars
        for (index, (bit, expected)) in cases.enumerated() {
            XCTAssertEqual(values[index], expected, "0x\(String(bit, radix: 16))")
        }
        let negativeZero = values[cases.count]
        XCTAssertEqual(negativeZero, 0)
        XCTAssertEqual(negativeZero.sign, .minus)
        XCTAssertTrue(values[cases.count + 1].isNaN)
        XCTAssertTrue(values[cases.count + 2].isNaN)
    }

    #if !(os(macOS) && arch(x86_64))
    func testF16DecoderMatchesSwiftFloat16ForEveryBitPattern() {
        for bits in UInt16.min...UInt16.max {
            let ours = SafeTensorsFloatBits.float(fromHalfBits: bits)
            let reference = Float(Float16(bitPattern: bits))
            if reference.isNaN {
                XCTAssertTrue(ours.isNaN, "0x\(String(bits, radix: 16))")
            } else {
                XCTAssertEqual(ours.bitPattern, reference.bitPattern, "0x\(String(bits, radix: 16))")
            }
            XCTAssertEqual(SafeTensorsFloatBits.halfTable[Int(bits)].bitPattern, ours.bitPattern)
        }
    }

    func testF16EncoderMatchesSwiftFloat16Rounding() {
        var generator = SystemRandomNumberGenerator()
        var samples: [Float] = [1 + 0x1p-11, 1 + 3 * 0x1p-11, 65519, 65520, 0x1p-25, 1.5 * 0x1p-25, 0x1p-26,
                                0x1.ffcp-15, -0.0, .infinity, -.infinity, .leastNonzeroMagnitude]
        for _ in 0..<200_000 {
            // Bias towards the fp16 range, where rounding matters.
            let exponent = Int.random(in: -30...17, using: &generator)
            samples.append(Float(sign: Bool.random(using: &generator) ? .minus : .plus, exponent: exponent,
                                 significand: Float.random(in: 1..<2, using: &generator)))
        }
        for value in samples {
            XCTAssertEqual(SafeTensorsFloatBits.halfBits(from: value), Float16(value).bitPattern, "\(value)")
        }
        XCTAssertTrue(SafeTensorsFloatBits.float(fromHalfBits: SafeTensorsFloatBits.halfBits(from: .nan)).isNaN)
    }
    #endif

    func testF16EncoderRoundsToNearestEvenAndSaturatesToInfinity() {
        XCTAssertEqual(SafeTensorsFloatBits.halfBits(from: 1), 0x3C00)
        XCTAssertEqual(SafeTensorsFloatBits.halfBits(from: 1 + 0x1p-11), 0x3C00, "tie rounds to even (down)")
        XCTAssertEqual(SafeTensorsFloatBits.halfBits(from: 1 + 3 * 0x1p-11), 0x3C02, "tie rounds to even (up)")
        XCTAssertEqual(SafeTensorsFloatBits.halfBits(from: 65504), 0x7BFF)
        XCTAssertEqual(SafeTensorsFloatBits.halfBits(from: 65519), 0x7BFF)
        XCTAssertEqual(SafeTensorsFloatBits.halfBits(from: 65520), 0x7C00)
        XCTAssertEqual(SafeTensorsFloatBits.halfBits(from: -1e10), 0xFC00)
        XCTAssertEqual(SafeTensorsFloatBits.halfBits(from: 0x1p-24), 0x0001)
        XCTAssertEqual(SafeTensorsFloatBits.halfBits(from: 0x1p-25), 0x0000, "tie between 0 and 2^-24 rounds to 0")
        XCTAssertEqual(SafeTensorsFloatBits.halfBits(from: 1.5 * 0x1p-25), 0x0001)
        XCTAssertEqual(SafeTensorsFloatBits.halfBits(from: -2.5), 0xC100)
        XCTAssertEqual(SafeTensorsFloatBits.halfBits(from: -.infinity), 0xFC00)
        XCTAssertEqual(SafeTensorsFloatBits.halfBits(from: .nan) & 0x7E00, 0x7E00)
    }

    func testF16WriterRoundTripsThroughHalfPrecision() throws {
        let source = Tensor(shape: [2, 4], values: [1, -2.5, 65504, 0x1p-24, 0.1, 1e6, -0.0, 3.14159])
        let url = scratch.url("half.safetensors")
        try SafeTensorsWriter.write([("h", source)], to: url, as: .f16)
        let file = try SafeTensorsFile(url: url)
        XCTAssertEqual(file.info("h")?.dtype, .f16)
        XCTAssertEqual(file.fileSize, file.dataStart + 16, "2 bytes per element")
        let tensor = try file.tensor("h")
        XCTAssertFalse(file.isMapped(tensor), "F16 is widened into an owned tensor")
        XCTAssertEqual(tensor.shape, [2, 4])
        XCTAssertEqual(Array(tensor.scalars[0..<4]), [1, -2.5, 65504, 0x1p-24])
        XCTAssertEqual(tensor.scalars[4], 0.0999755859375)  // nearest fp16 to 0.1
        XCTAssertEqual(tensor.scalars[5], .infinity)
        XCTAssertEqual(tensor.scalars[6].sign, .minus)
        XCTAssertEqual(tensor.scalars[7], 3.140625)
    }

    func testBF16DecodesKnownValues() throws {
        let bits: [UInt16] = [0x3F80, 0xC020, 0x4049, 0x7F7F, 0x0001, 0x7F80, 0xFF80, 0x7FC0, 0x8000]
        let url = try scratch.craft(header: #"{"b":\#(entry("BF16", [3, 3], 0, 18))}"#, data: littleEndianBytes(bits))
        let tensor = try SafeTensorsFile(url: url).tensor("b")
        XCTAssertEqual(tensor.shape, [3, 3])
        let values = tensor.scalars
        XCTAssertEqual(values[0], 1.0)
        XCTAssertEqual(values[1], -2.5)
        XCTAssertEqual(values[2], 3.140625)
        XCTAssertEqual(values[3], Float(bitPattern: 0x7F7F_0000))  // largest finite bf16
        XCTAssertEqual(values[4], 0x1p-133)  // smallest subnormal bf16
        XCTAssertEqual(values[5], .infinity)
        XCTAssertEqual(values[6], -.infinity)
        XCTAssertTrue(values[7].isNaN)
        XCTAssertEqual(values[8].sign, .minus)
    }

    // MARK: - Other dtypes

    func testIntegerBooleanAndF64TensorsConvertToFloat() throws {
        var data: [UInt8] = []
        var fields: [String] = []
        func add(_ name: String, _ dtype: String, _ bytes: [UInt8], count: Int) {
            fields.append(#""\#(name)":\#(entry(dtype, [count], data.count, data.count + bytes.count))"#)
            data += bytes
        }
        add("f64", "F64", [0.5, -1e300, 3].flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian) { Array($0) } }, count: 3)
        add("i64", "I64", littleEndianBytes([Int64(-5), 1 << 40, 999]), count: 3)
        add("u64", "U64", littleEndianBytes([UInt64.max]), count: 1)
        add("i32", "I32", littleEndianBytes([Int32.min, 7, 49406]), count: 3)
        add("u32", "U32", littleEndianBytes([UInt32(4_000_000_000)]), count: 1)
        add("i16", "I16", littleEndianBytes([Int16(-300), 300]), count: 2)
        add("u16", "U16", littleEndianBytes([UInt16(65535)]), count: 1)
        add("i8", "I8", [0x80, 0x7F, 0xFF], count: 3)
        add("u8", "U8", [0, 200, 255], count: 3)
        add("bool", "BOOL", [0, 1, 2, 0], count: 4)
        let url = try scratch.craft(header: "{" + fields.joined(separator: ",") + "}", data: data)
        let file = try SafeTensorsFile(url: url)

        XCTAssertEqual(try file.tensor("f64").scalars, [0.5, -.infinity, 3])
        XCTAssertEqual(try file.tensor("i64").scalars, [-5, 1_099_511_627_776, 999])
        XCTAssertEqual(try file.tensor("u64").scalars, [Float(UInt64.max)])
        XCTAssertEqual(try file.tensor("i32").scalars, [-2_147_483_648, 7, 49406])
        XCTAssertEqual(try file.tensor("u32").scalars, [4_000_000_000])
        XCTAssertEqual(try file.tensor("i16").scalars, [-300, 300])
        XCTAssertEqual(try file.tensor("u16").scalars, [65535])
        XCTAssertEqual(try file.tensor("i8").scalars, [-128, 127, -1])
        XCTAssertEqual(try file.tensor("u8").scalars, [0, 200, 255])
        XCTAssertEqual(try file.tensor("bool").scalars, [0, 1, 1, 0])
    }
}
