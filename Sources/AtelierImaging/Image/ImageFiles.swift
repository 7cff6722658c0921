import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Whole-file reads and atomic writes with errors that name the file and the reason.
///
/// Writes go to a temporary file in the destination's directory, are flushed to disk, and are then
/// renamed over the destination. rename(2) within one filesystem is atomic, so a reader (or a crash)
/// sees either the old file or the complete new one, never a partial PNG.
enum ImageFiles {
    /// Refuse to slurp files larger than this; no sane PNG input comes close.
    static let maxReadBytes = 1 << 31

    static func read(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT || code == ENOTDIR {
                throw ImageError.fileNotFound(path: path)
            }
            throw ImageError.unreadable(path: path, reason: errnoText(code))
        }
        defer { close(fd) }

        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw ImageError.unreadable(path: path, reason: errnoText(errno))
        }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            throw ImageError.unreadable(path: path, reason: "it is a directory")
        }
        if Int(info.st_size) > maxReadBytes {
            throw ImageError.unreadable(path: path, reason: "the file is larger than \(maxReadBytes >> 20) MiB")
        }

        var bytes = [UInt8]()
        bytes.reserveCapacity(max(Int(info.st_size), 0))
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { posixRead(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ImageError.unreadable(path: path, reason: errnoText(errno))
            }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
            if bytes.count > maxReadBytes {
                throw ImageError.unreadable(path: path, reason: "the file is larger than \(maxReadBytes >> 20) MiB")
            }
        }
        return bytes
    }

    /// Writes `bytes` to `path` atomically (temp file in the same directory, fsync, rename).
    /// On failure the destination is untouched and the temp file removed.
    static func writeAtomically(_ bytes: [UInt8], to path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        let name = (path as NSString).lastPathComponent
        guard !name.isEmpty, name != ".", name != ".." else {
            throw ImageError.writeFailed(path: path, reason: "the path does not name a file")
        }
        let tempName = ".\(name).\(getpid())-\(UInt32.random(in: 0...UInt32.max)).tmp"
        let tempPath = directory.isEmpty ? tempName : (directory as NSString).appendingPathComponent(tempName)

        let fd = open(tempPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            let code = errno
            let reason = code == ENOENT ? "the directory \(directory.isEmpty ? "." : directory) does not exist"
                                        : errnoText(code)
            throw ImageError.writeFailed(path: path, reason: reason)
        }
        var committed = false
        var descriptorOpen = true
        defer {
            if descriptorOpen { close(fd) }
            if !committed { unlink(tempPath) }
        }

        try bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = posixWrite(fd, raw.baseAddress.map { $0 + offset }, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw ImageError.writeFailed(path: path, reason: errnoText(errno))
                }
                offset += n
            }
        }
        guard fsync(fd) == 0 else {
            throw ImageError.writeFailed(path: path, reason: errnoText(errno))
        }
        descriptorOpen = false
        guard close(fd) == 0 else {
            throw ImageError.writeFailed(path: path, reason: errnoText(errno))
        }
        guard rename(tempPath, path) == 0 else {
            throw ImageError.writeFailed(path: path, reason: errnoText(errno))
        }
        committed = true
        syncDirectory(directory.isEmpty ? "." : directory)
    }

    /// Makes the rename itself durable. Best effort: some filesystems refuse fsync on directories.
    private static func syncDirectory(_ directory: String) {
        let fd = open(directory, O_RDONLY | O_CLOEXEC)
        if fd >= 0 {
            _ = fsync(fd)
            close(fd)
        }
    }

    static func errnoText(_ code: Int32) -> String {
        String(cString: strerror(code))
    }
}

// Foundation also exports `read`/`write` names on some platforms; these aliases keep the calls
// unambiguous.
@inline(__always)
private func posixRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
    read(fd, buffer, count)
}

@inline(__always)
private func posixWrite(_ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int) -> Int {
    write(fd, buffer, count)
}
