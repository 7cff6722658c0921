import AtelierKernels
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes fp32 tensors to a safetensors file, as F32 or (halving the size) F16.
///
/// Used by tests to build fixtures and by tools that export converted weights, so the output
/// follows the reference writer: the JSON header is padded with spaces to a multiple of 8
/// bytes so the data section starts 8-aligned, and tensors are laid out widest dtype first so
/// every tensor stays aligned to its element size (which is what lets `SafeTensorsFile` hand
/// F32 tensors out zero-copy). The file is written to a temporary sibling and renamed into
/// place, so an interrupted export never leaves a truncated file under the final name.
public struct SafeTensorsWriter {
    public struct Entry {
        public var name: String
        public var tensor: Tensor
        public var dtype: SafeTensorDType
    }

    /// Written as the header's `__metadata__` (omitted when empty).
    public var metadata: [String: String]
    /// Tensors in the order they were added.
    public private(set) var entries: [Entry] = []

    public init(metadata: [String: String] = [:]) {
        self.metadata = metadata
    }

    /// Queues `tensor` to be written as `dtype` (`.f32` or `.f16`; others fail in `write`).
    public mutating func add(_ name: String, _ tensor: Tensor, as dtype: SafeTensorDType = .f32) {
        entries.append(Entry(name: name, tensor: tensor, dtype: dtype))
    }

    /// Writes every queued tensor to `url`, replacing any existing file.
    public func write(to url: URL) throws {
        let path = url.path
        let (header, layout) = try makeHeader(path: path)

        let temporaryPath = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).partial").path
        let fd = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SafeTensorsError.writeFailed(path: path, reason: Self.systemError()) }
        var closed = false
        defer {
            if !closed { close(fd) }
            unlink(temporaryPath)  // no-op once renamed
        }

        var prefix = withUnsafeBytes(of: UInt64(header.count).littleEndian) { Array($0) }
        prefix.append(contentsOf: header)
        try prefix.withUnsafeBytes { try Self.writeAll(fd, $0, path: path) }
        for entry in layout {
            try Self.writeData(of: entry, to: fd, path: path)
        }
        guard fsync(fd) == 0 else { throw SafeTensorsError.writeFailed(path: path, reason: Self.systemError()) }
        closed = true
        guard close(fd) == 0 else { throw SafeTensorsError.writeFailed(path: path, reason: Self.systemError()) }
        guard rename(temporaryPath, path) == 0 else {
            throw SafeTensorsError.writeFailed(path: path, reason: Self.systemError())
        }
    }

    /// Convenience: writes `tensors` (all as `dtype`) with `metadata` to `url`.
    public static func write(_ tensors: [(name: String, tensor: Tensor)], to url: URL,
                             as dtype: SafeTensorDType = .f32, metadata: [String: String] = [:]) throws {
        var writer = SafeTensorsWriter(metadata: metadata)
        for (name, tensor) in tensors { writer.add(name, tensor, as: dtype) }
        try writer.write(to: url)
    }

    // MARK: - Header

    /// Validates names and dtypes, assigns data offsets (widest dtype first, then in order
    /// added), and returns the space-padded JSON header with the entries in layout order.
    private func makeHeader(path: String) throws -> (header: [UInt8], layout: [Entry]) {
        var seen = Set<String>()
        for entry in entries {
            if entry.name.isEmpty {
                throw SafeTensorsError.invalidTensorName(path: path, name: entry.name, reason: "names must not be empty")
            }
            if entry.name == SafeTensorsHeader.metadataKey {
                throw SafeTensorsError.invalidTensorName(path: path, name: entry.name, reason: "the name is reserved for the metadata map")
            }
            if !seen.insert(entry.name).inserted {
                throw SafeTensorsError.invalidTensorName(path: path, name: entry.name, reason: "added more than once")
            }
            if entry.dtype != .f32 && entry.dtype != .f16 {
                throw SafeTensorsError.unsupportedWriteDType(path: path, dtype: entry.dtype)
            }
        }
        let layout = entries.enumerated()
            .sorted { ($1.element.dtype.byteSize, $0.offset) < ($0.element.dtype.byteSize, $1.offset) }
            .map(\.element)

        var fields: [String] = []
        if !metadata.isEmpty {
            let pairs = metadata.keys.sorted().map { key in
                SafeTensorsJSONValue.quoted(key) + ":" + SafeTensorsJSONValue.quoted(metadata[key] ?? "")
            }
            fields.append(SafeTensorsJSONValue.quoted(SafeTensorsHeader.metadataKey) + ":{" + pairs.joined(separator: ",") + "}")
        }
        var offset = 0
        for entry in layout {
            let end = offset + entry.tensor.count * entry.dtype.byteSize
            let shape = entry.tensor.shape.map(String.init).joined(separator: ",")
            fields.append(SafeTensorsJSONValue.quoted(entry.name)
                + ":{\"dtype\":\"\(entry.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(end)]}")
            offset = end
        }
        var header = Array(("{" + fields.joined(separator: ",") + "}").utf8)
        header.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - header.count % 8) % 8))
        return (header, layout)
    }

    // MARK: - Data

    private static func writeData(of entry: Entry, to fd: Int32, path: String) throws {
        let tensor = entry.tensor
        #if _endian(little)
        if entry.dtype == .f32 {
            try writeAll(fd, UnsafeRawBufferPointer(start: tensor.pointer, count: tensor.count * 4), path: path)
            return
        }
        #endif
        // Convert in chunks so exporting a large model needs only a small extra buffer.
        let chunk = 1 << 16
        var buffer = [UInt8](repeating: 0, count: chunk * entry.dtype.byteSize)
        var start = 0
        while start < tensor.count {
            let n = min(chunk, tensor.count - start)
            buffer.withUnsafeMutableBytes { bytes in
                for i in 0..<n {
                    let value = tensor.pointer[start + i]
                    if entry.dtype == .f16 {
                        bytes.storeBytes(of: SafeTensorsFloatBits.halfBits(from: value).littleEndian,
                                         toByteOffset: 2 * i, as: UInt16.self)
                    } else {
                        bytes.storeBytes(of: value.bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self)
                    }
                }
            }
            try buffer.withUnsafeBytes {
                try writeAll(fd, UnsafeRawBufferPointer(rebasing: $0[0..<(n * entry.dtype.byteSize)]), path: path)
            }
            start += n
        }
    }

    /// `write(2)` until everything is written, retrying short writes and EINTR.
    private static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
        guard var pointer = bytes.baseAddress else { return }
        var remaining = bytes.count
        while remaining > 0 {
            let written = systemWrite(fd, pointer, remaining)
            if written < 0 {
                if errno == EINTR { continue }
                throw SafeTensorsError.writeFailed(path: path, reason: systemError())
            }
            pointer += written
            remaining -= written
        }
    }

    private static func systemError() -> String {
        String(cString: strerror(errno))
    }
}

/// `write(2)`, reachable from inside `SafeTensorsWriter` whose own `write` methods shadow it.
private func systemWrite(_ fd: Int32, _ pointer: UnsafeRawPointer, _ count: Int) -> Int {
    write(fd, pointer, count)
}
