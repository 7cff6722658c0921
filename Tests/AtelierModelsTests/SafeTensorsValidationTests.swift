import AtelierKernels
@testable import AtelierModels
import Foundation
import XCTest

/// A per-test scratch folder for hand-crafted safetensors files (removed by `tearDown`).
final class SafeTensorsScratch {
    let directory: URL

    init() throws {
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("atelier-safetensors-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    func remove() {
        try? FileManager.default.removeItem(at: directory)
    }

    func url(_ name: String) -> URL { directory.appendingPathComponent(name) }

    /// Writes raw bytes to `name`.
    @discardableResult
    func write(_ bytes: [UInt8], to name: String) throws -> URL {
        let url = url(name)
        try Data(bytes).write(to: url)
        return url
    }

    /// Writes a safetensors file by hand: u64 length (the JSON's, unless `declaredLength` lies),
    /// the header bytes, then `data`.
    @discardableResult
    func craft(header: String, data: [UInt8] = [], declaredLength: UInt64? = nil,
               name: String = "crafted.safetensors") throws -> URL {
        try craft(headerBytes: Array(header.utf8), data: data, declaredLength: declaredLength, name: name)
    }

    @discardableResult
    func craft(headerBytes: [UInt8], data: [UInt8] = [], declaredLength: UInt64? = nil,
               name: String = "crafted.safetensors") throws -> URL {
        let length = declaredLength ?? UInt64(headerBytes.count)
        var bytes = withUnsafeBytes(of: length.littleEndian) { Array($0) }
        bytes += headerBytes
        bytes += data
        return try write(bytes, to: name)
    }
}

/// Little-endian bytes of fp32 values, for crafting data sections.
func safeTensorsBytes(_ values: [Float]) -> [UInt8] {
    values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian) { Array($0) } }
}

/// Every malformed-file case must fail with its own typed error, never crash or read past the
/// mapping. Each test crafts the smallest file showing one defect.
final class SafeTensorsValidationTests: XCTestCase {
    private var scratch: SafeTensorsScratch!

    override func setUpWithError() throws { scratch = try SafeTensorsScratch() }
    override func tearDown() { scratch.remove() }

    private func assertOpenFails(_ url: URL, with expected: SafeTensorsError,
                                 file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try SafeTensorsFile(url: url), file: file, line: line) { error in
            XCTAssertEqual(error as? SafeTensorsError, expected, file: file, line: line)
            XCTAssertTrue("\(error)".hasPrefix(url.path + ":"), "message must start with the path: \(error)",
                          file: file, line: line)
        }
    }

    private let validEntry = #"{"dtype":"F32","shape":[2],"data_offsets":[0,8]}"#

    // MARK: - Framing

    func testFileShorterThanEightBytesIsRejectedAsTooShort() throws {
        let empty = try scratch.write([], to: "empty.safetensors")
        assertOpenFails(empty, with: .fileTooShort(path: empty.path, size: 0))
        let seven = try scratch.write([1, 0, 0, 0, 0, 0, 0], to: "seven.safetensors")
        assertOpenFails(seven, with: .fileTooShort(path: seven.path, size: 7))
    }

    func testHeaderLengthPastEndOfFileIsRejected() throws {
        let huge = try scratch.craft(header: "{}", declaredLength: UInt64(Int64.max), name: "huge.safetensors")
        assertOpenFails(huge, with: .headerPastEnd(path: huge.path, headerLength: UInt64(Int64.max), fileSize: 10))
        let error = SafeTensorsError.headerPastEnd(path: "model.safetensors", headerLength: 9_223_372_036_854_775_807, fileSize: 1024)
        XCTAssertEqual(error.description,
                       "model.safetensors: header length 9223372036854775807 points past the end of the 1024-byte file (truncated or not a safetensors file?)")

        let maxUInt = try scratch.craft(header: "{}", declaredLength: .max, name: "max.safetensors")
        assertOpenFails(maxUInt, with: .headerPastEnd(path: maxUInt.path, headerLength: .max, fileSize: 10))

        // One byte too many: the JSON is complete but the file is one byte short of the claim.
        let offByOne = try scratch.craft(header: "{}", declaredLength: 3, name: "short.safetensors")
        assertOpenFails(offByOne, with: .headerPastEnd(path: offByOne.path, headerLength: 3, fileSize: 10))
    }

    func testHeaderLengthAboveOneHundredMegabytesIsRejectedEvenIfTheFileIsThatLarge() throws {
        let length = UInt64(SafeTensorsHeader.maxLength + 1)
        let url = try scratch.craft(header: "{}", declaredLength: length, name: "absurd.safetensors")
        // Sparse-extend the file so the header length is within it (no disk space used).
        let handle = try FileHandle(forWritingTo: url)
        try handle.truncate(atOffset: 8 + length)
        try handle.close()
        assertOpenFails(url, with: .headerTooLarge(path: url.path, headerLength: length, limit: 100_000_000))
    }

    // MARK: - JSON

    func testHeaderThatIsNotJSONIsRejected() throws {
        for (index, text) in ["not json at all", #"{"a": {"dtype": "F32""#, "{} trailing", "{'single': 1}",
                              #"{"a": NaN}"#, "{\"a\":[1,]}", "", "   "].enumerated() {
            let url = try scratch.craft(header: text, name: "bad\(index).safetensors")
            XCTAssertThrowsError(try SafeTensorsFile(url: url), "header: \(text)") { error in
                guard case .headerNotJSON(let path, let reason)? = error as? SafeTensorsError else {
                    return XCTFail("expected headerNotJSON for \(text), got \(error)")
                }
                XCTAssertEqual(path, url.path)
                XCTAssertTrue(reason.contains("at byte"), reason)
            }
        }
    }

    func testHeaderWithInvalidUTF8IsRejectedAsNotJSON() throws {
        let url = try scratch.craft(headerBytes: Array(#"{"a"#.utf8) + [0xFF, 0xFE] + Array(#"":1}"#.utf8))
        XCTAssertThrowsError(try SafeTensorsFile(url: url)) { error in
            guard case .headerNotJSON? = error as? SafeTensorsError else { return XCTFail("got \(error)") }
        }
    }

    func testDeeplyNestedHeaderIsRejectedWithoutExhaustingTheStack() throws {
        let url = try scratch.craft(header: String(repeating: "[", count: 100_000))
        XCTAssertThrowsError(try SafeTensorsFile(url: url)) { error in
            guard case .headerNotJSON(_, let reason)? = error as? SafeTensorsError else { return XCTFail("got \(error)") }
            XCTAssertTrue(reason.contains("nesting"), reason)
        }
    }

    func testJSONArrayHeaderIsRejectedAsNotAnObject() throws {
        let url = try scratch.craft(header: "[1, 2, 3]")
        assertOpenFails(url, with: .headerNotObject(path: url.path, found: "an array"))
    }

    func testDuplicateTensorNamesAreRejected() throws {
        let url = try scratch.craft(header: #"{"w":\#(validEntry),"w":\#(validEntry)}"#, data: safeTensorsBytes([1, 2]))
        XCTAssertThrowsError(try SafeTensorsFile(url: url)) { error in
            guard case .headerNotJSON(_, let reason)? = error as? SafeTensorsError else { return XCTFail("got \(error)") }
            XCTAssertTrue(reason.contains("duplicate key \"w\""), reason)
        }
    }

    // MARK: - Entries

    func testMetadataWithNonStringValueIsRejected() throws {
        let url = try scratch.craft(header: #"{"__metadata__":{"format":"pt","step":5}}"#)
        assertOpenFails(url, with: .invalidMetadata(path: url.path, reason: "key \"step\" holds an integer"))
        let notObject = try scratch.craft(header: #"{"__metadata__":"pt"}"#, name: "m2.safetensors")
        assertOpenFails(notObject, with: .invalidMetadata(path: notObject.path, reason: "it is a string"))
    }

    func testEntryThatIsNotAnObjectIsRejected() throws {
        let url = try scratch.craft(header: #"{"w":[0,8]}"#)
        assertOpenFails(url, with: .entryNotObject(path: url.path, tensor: "w", found: "an array"))
    }

    func testEntriesMissingARequiredFieldAreRejected() throws {
        let cases: [(String, String)] = [
            (#"{"w":{"shape":[2],"data_offsets":[0,8]}}"#, "dtype"),
            (#"{"w":{"dtype":"F32","data_offsets":[0,8]}}"#, "shape"),
            (#"{"w":{"dtype":"F32","shape":[2]}}"#, "data_offsets"),
        ]
        for (header, field) in cases {
            let url = try scratch.craft(header: header, data: safeTensorsBytes([1, 2]), name: "missing-\(field).safetensors")
            assertOpenFails(url, with: .missingField(path: url.path, tensor: "w", field: field))
        }
    }

    func testFieldsOfTheWrongTypeAreRejected() throws {
        let dtype = try scratch.craft(header: #"{"w":{"dtype":4,"shape":[2],"data_offsets":[0,8]}}"#, name: "d.safetensors")
        assertOpenFails(dtype, with: .wrongFieldType(path: dtype.path, tensor: "w", field: "dtype",
                                                      expected: "a string such as \"F32\"", found: "an integer"))
        let shape = try scratch.craft(header: #"{"w":{"dtype":"F32","shape":"2","data_offsets":[0,8]}}"#, name: "s.safetensors")
        assertOpenFails(shape, with: .wrongFieldType(path: shape.path, tensor: "w", field: "shape",
                                                      expected: "an array of non-negative integers", found: "a string"))
        for (index, offsets) in ["[0]", "[0,8,16]", "\"0-8\"", "[0,8.0]", "[-8,0]"].enumerated() {
            let url = try scratch.craft(header: #"{"w":{"dtype":"F32","shape":[2],"data_offsets":\#(offsets)}}"#,
                                        data: safeTensorsBytes([1, 2]), name: "o\(index).safetensors")
            XCTAssertThrowsError(try SafeTensorsFile(url: url), offsets) { error in
                guard case .wrongFieldType(_, "w", "data_offsets", _, _)? = error as? SafeTensorsError else {
                    return XCTFail("expected wrongFieldType for data_offsets \(offsets), got \(error)")
                }
            }
        }
    }

    func testUnknownDTypeIsRejectedNamingIt() throws {
        let url = try scratch.craft(header: #"{"w":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}}"#, data: safeTensorsBytes([1, 2]))
        assertOpenFails(url, with: .unknownDType(path: url.path, tensor: "w", dtype: "F33"))
        let lowercase = try scratch.craft(header: #"{"w":{"dtype":"f32","shape":[2],"data_offsets":[0,8]}}"#,
                                          data: safeTensorsBytes([1, 2]), name: "lower.safetensors")
        assertOpenFails(lowercase, with: .unknownDType(path: lowercase.path, tensor: "w", dtype: "f32"))
    }

    func testNegativeOrNonIntegerShapeEntriesAreRejected() throws {
        for (index, shape) in ["[-2]", "[2.5]", "[\"2\"]", "[null]", "[1e1]", "[99999999999999999999]"].enumerated() {
            let url = try scratch.craft(header: #"{"w":{"dtype":"F32","shape":\#(shape),"data_offsets":[0,8]}}"#,
                                        data: safeTensorsBytes([1, 2]), name: "shape\(index).safetensors")
            XCTAssertThrowsError(try SafeTensorsFile(url: url), shape) { error in
                guard case .invalidShape(url.path, "w", _)? = error as? SafeTensorsError else {
                    return XCTFail("expected invalidShape for \(shape), got \(error)")
                }
            }
        }
    }

    func testShapeWhoseSizeOverflowsIsRejected() throws {
        let big = Int.max / 2 + 1
        let url = try scratch.craft(header: #"{"w":{"dtype":"F32","shape":[\#(big),4],"data_offsets":[0,8]}}"#,
                                    data: safeTensorsBytes([1, 2]))
        assertOpenFails(url, with: .shapeOverflow(path: url.path, tensor: "w", shape: [big, 4]))
        // Element count fits, byte count (× 4) does not.
        let bytes = try scratch.craft(header: #"{"w":{"dtype":"F32","shape":[\#(Int.max / 2)],"data_offsets":[0,8]}}"#,
                                      data: safeTensorsBytes([1, 2]), name: "bytes.safetensors")
        assertOpenFails(bytes, with: .shapeOverflow(path: bytes.path, tensor: "w", shape: [Int.max / 2]))
    }

    // MARK: - Offsets

    func testOffsetsWithBeginAfterEndAreRejected() throws {
        let url = try scratch.craft(header: #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#,
                                    data: safeTensorsBytes([1, 2, 3, 4]))
        assertOpenFails(url, with: .invalidOffsets(path: url.path, tensor: "w", begin: 8, end: 0))
    }

    func testOffsetsPastTheDataSectionAreRejected() throws {
        // Data section is 8 bytes; the tensor claims [4, 12).
        let url = try scratch.craft(header: #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
                                    data: safeTensorsBytes([1, 2]))
        assertOpenFails(url, with: .offsetsOutOfBounds(path: url.path, tensor: "w", begin: 4, end: 12, dataSize: 8))
        let far = try scratch.craft(header: #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[\#(Int.max - 8),\#(Int.max)]}}"#,
                                    data: safeTensorsBytes([1, 2]), name: "far.safetensors")
        assertOpenFails(far, with: .offsetsOutOfBounds(path: far.path, tensor: "w", begin: Int.max - 8, end: Int.max, dataSize: 8))
    }

    func testByteSizeThatIsNotDTypeTimesShapeIsRejected() throws {
        // F16 × [2] needs 4 bytes, the range spans 8.
        let url = try scratch.craft(header: #"{"w":{"dtype":"F16","shape":[2],"data_offsets":[0,8]}}"#,
                                    data: safeTensorsBytes([1, 2]))
        assertOpenFails(url, with: .byteSizeMismatch(path: url.path, tensor: "w", dtype: .f16, shape: [2], expected: 4, actual: 8))
    }

    func testOverlappingTensorsAreRejected() throws {
        let header = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#
        let url = try scratch.craft(header: header, data: safeTensorsBytes([1, 2, 3]))
        assertOpenFails(url, with: .overlappingTensors(path: url.path, first: "a", second: "b"))

        // Containment, listed in the other order, is an overlap too.
        let inner = #"{"outer":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"inner":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#
        let nested = try scratch.craft(header: inner, data: safeTensorsBytes([1, 2, 3, 4]), name: "nested.safetensors")
        assertOpenFails(nested, with: .overlappingTensors(path: nested.path, first: "outer", second: "inner"))
    }

    func testGapsAndEmptyTensorsInTheDataSectionAreAllowed() throws {
        let header = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"#
            + #""empty":{"dtype":"F32","shape":[0,3],"data_offsets":[4,4]},"#
            + #""b":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}}"#
        let url = try scratch.craft(header: header, data: safeTensorsBytes([1, 99, 99, 2, 77]))
        let file = try SafeTensorsFile(url: url)
        XCTAssertEqual(file.names, ["a", "b", "empty"])
        XCTAssertEqual(try file.tensor("a").scalars, [1])
        XCTAssertEqual(try file.tensor("b").scalars, [2])
        XCTAssertEqual(try file.tensor("empty").shape, [0, 3])
        XCTAssertEqual(try file.tensor("empty").count, 0)
    }

    // MARK: - Filesystem

    func testMissingFileIsReportedAsCannotOpen() throws {
        let url = scratch.url("nope.safetensors")
        XCTAssertThrowsError(try SafeTensorsFile(url: url)) { error in
            guard case .cannotOpen(url.path, let reason)? = error as? SafeTensorsError else { return XCTFail("got \(error)") }
            XCTAssertTrue(reason.lowercased().contains("no such file"), reason)
        }
    }

    func testDirectoryIsReportedAsCannotOpen() throws {
        XCTAssertThrowsError(try SafeTensorsFile(url: scratch.directory)) { error in
            guard case .cannotOpen(_, let reason)? = error as? SafeTensorsError else { return XCTFail("got \(error)") }
            XCTAssertTrue(reason.contains("not a regular file"), reason)
        }
    }

    func testEveryErrorDescriptionStartsWithThePath() {
        let path = "/models/sd2.safetensors"
        let errors: [SafeTensorsError] = [
            .cannotOpen(path: path, reason: "x"), .fileTooShort(path: path, size: 3),
            .headerTooLarge(path: path, headerLength: 1, limit: 1), .headerPastEnd(path: path, headerLength: 1, fileSize: 1),
            .headerNotJSON(path: path, reason: "x"), .headerNotObject(path: path, found: "x"),
            .invalidMetadata(path: path, reason: "x"), .entryNotObject(path: path, tensor: "t", found: "x"),
            .missingField(path: path, tensor: "t", field: "shape"),
            .wrongFieldType(path: path, tensor: "t", field: "f", expected: "e", found: "x"),
            .unknownDType(path: path, tensor: "t", dtype: "Q"), .invalidShape(path: path, tensor: "t", shape: "[-1]"),
            .shapeOverflow(path: path, tensor: "t", shape: [1]), .invalidOffsets(path: path, tensor: "t", begin: 2, end: 1),
            .offsetsOutOfBounds(path: path, tensor: "t", begin: 0, end: 9, dataSize: 8),
            .byteSizeMismatch(path: path, tensor: "t", dtype: .f32, shape: [1], expected: 4, actual: 8),
            .overlappingTensors(path: path, first: "a", second: "b"), .tensorNotFound(path: path, name: "t"),
            .unsupportedDType(path: path, tensor: "t", dtype: .f8E4M3),
            .invalidTensorName(path: path, name: "", reason: "x"), .unsupportedWriteDType(path: path, dtype: .i8),
            .writeFailed(path: path, reason: "x"),
        ]
        for error in errors {
            XCTAssertTrue(error.description.hasPrefix(path + ": "), error.description)
            XCTAssertEqual(error.path, path)
        }
    }
}
