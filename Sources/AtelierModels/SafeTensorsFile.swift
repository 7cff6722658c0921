import AtelierKernels
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A safetensors file, memory-mapped read-only and validated on open.
///
/// The file is mapped rather than read because Stable Diffusion weights are gigabytes: fp32
/// tensors are handed out as zero-copy views of the mapping, so the page cache is the only copy
/// and nothing is loaded until a kernel touches it. Other dtypes (fp16, bf16, integers) are
/// widened into owned fp32 tensors, since every kernel in Atelier computes in fp32.
///
/// The header is fully validated in `init` (see `SafeTensorsHeader`), so `tensor(_:)` never
/// reads outside the mapping. The mapping lives as long as this object *or any tensor borrowed
/// from it* (borrowed storage retains the file), so tensors may outlive the `SafeTensorsFile`.
///
/// Borrowed tensors are read-only: the pages are mapped `PROT_READ`, so an in-place write to a
/// weight (always a bug: it would corrupt the model for every later use) faults immediately
/// instead of silently diverging. Call `Tensor.copy()` first to get a writable tensor.
/// If another process truncates the file while it is mapped, touching the lost pages raises
/// SIGBUS; that cannot be prevented from user space, so do not rewrite weights in place.
public final class SafeTensorsFile: @unchecked Sendable {
    /// Where the file was opened from.
    public let url: URL
    /// All tensor names, sorted.
    public let names: [String]
    /// The header's `__metadata__` map (empty if there is none).
    public let metadata: [String: String]
    /// Size of the file in bytes.
    public let fileSize: Int
    /// Offset of the data section in the file (8 + header length).
    public let dataStart: Int

    private let tensors: [String: SafeTensorInfo]
    /// Start of the read-only mapping of the whole file; immutable after `init`, which is what
    /// makes sharing this object across threads safe.
    private let base: UnsafeRawPointer
    /// True for `init(data:name:)`: `base` is a heap copy to deallocate, not a mapping to unmap.
    private let ownsCopy: Bool

    /// Opens, maps and validates `url`. Throws `SafeTensorsError` describing the first problem.
    public init(url: URL) throws {
        let path = url.path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SafeTensorsError.cannotOpen(path: path, reason: Self.systemError()) }
        defer { close(fd) }

        var status = stat()
        guard fstat(fd, &status) == 0 else {
            throw SafeTensorsError.cannotOpen(path: path, reason: Self.systemError())
        }
        guard status.st_mode & S_IFMT == S_IFREG else {
            throw SafeTensorsError.cannotOpen(path: path, reason: "not a regular file (a directory? pass the .safetensors file itself)")
        }
        guard let size = Int(exactly: status.st_size), size >= 8 else {
            throw SafeTensorsError.fileTooShort(path: path, size: Int(status.st_size))
        }

        // MAP_PRIVATE: the mapping never writes back, even if something tried.
        guard let mapping = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), mapping != MAP_FAILED else {
            throw SafeTensorsError.cannotOpen(path: path, reason: "mmap failed: \(Self.systemError())")
        }
        let header: SafeTensorsHeader
        do {
            header = try SafeTensorsHeader(path: path, file: UnsafeRawBufferPointer(start: mapping, count: size))
        } catch {
            munmap(mapping, size)
            throw error
        }

        self.url = url
        self.base = UnsafeRawPointer(mapping)
        self.ownsCopy = false
        self.fileSize = size
        self.dataStart = header.dataStart
        self.tensors = header.tensors
        self.metadata = header.metadata
        self.names = header.tensors.keys.sorted()
    }

    /// Validates the bytes of a whole safetensors file held in memory (a copy is kept), with the
    /// same checks and errors as `init(url:)`; `name` stands in for the path in messages.
    /// For callers that already hold the bytes — a fuzzer, a network upload — and for tests.
    public init(data: Data, name: String = "<memory>.safetensors") throws {
        let size = data.count
        guard size >= 8 else { throw SafeTensorsError.fileTooShort(path: name, size: size) }
        let copy = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
        data.withUnsafeBytes { bytes in
            if let source = bytes.baseAddress { copy.copyMemory(from: source, byteCount: size) }
        }
        let header: SafeTensorsHeader
        do {
            header = try SafeTensorsHeader(path: name, file: UnsafeRawBufferPointer(start: copy, count: size))
        } catch {
            copy.deallocate()
            throw error
        }
        self.url = URL(fileURLWithPath: name)
        self.base = UnsafeRawPointer(copy)
        self.ownsCopy = true
        self.fileSize = size
        self.dataStart = header.dataStart
        self.tensors = header.tensors
        self.metadata = header.metadata
        self.names = header.tensors.keys.sorted()
    }

    deinit {
        if ownsCopy {
            UnsafeMutableRawPointer(mutating: base).deallocate()
        } else {
            munmap(UnsafeMutableRawPointer(mutating: base), fileSize)
        }
    }

    /// Number of tensors in the file.
    public var count: Int { tensors.count }

    /// Whether the file holds a tensor called `name`.
    public func contains(_ name: String) -> Bool { tensors[name] != nil }

    /// Dtype, shape and byte range of `name`, without touching its data.
    public func info(_ name: String) -> SafeTensorInfo? { tensors[name] }

    /// The tensor called `name` as fp32.
    ///
    /// F32 data aligned to 4 bytes (always, for files from `SafeTensorsWriter` or the reference
    /// writer) is returned without copying: the tensor borrows the mapping, and `isMapped(_:)`
    /// is true for it. Misaligned F32 and every other convertible dtype are decoded into a new
    /// owned tensor. Throws `tensorNotFound` or `unsupportedDType` (e.g. for F8_E4M3).
    public func tensor(_ name: String) throws -> Tensor {
        guard let info = tensors[name] else {
            throw SafeTensorsError.tensorNotFound(path: url.path, name: name)
        }
        guard info.dtype.isConvertibleToFloat32 else {
            throw SafeTensorsError.unsupportedDType(path: url.path, tensor: name, dtype: info.dtype)
        }
        let source = base + info.fileRange.lowerBound
        let count = info.elementCount
        #if _endian(little)
        if info.dtype == .f32, Int(bitPattern: source) % MemoryLayout<Float>.alignment == 0 {
            let floats = UnsafeMutableRawPointer(mutating: source).bindMemory(to: Float.self, capacity: count)
            return Tensor(shape: info.shape, storage: TensorStorage(borrowing: floats, count: count, owner: self))
        }
        #endif
        let tensor = Tensor(uninitialized: info.shape)
        SafeTensorsFloatBits.decode(info.dtype, from: source, count: count, into: tensor.pointer)
        return tensor
    }

    /// True when `tensor`'s elements live inside this file's mapping, i.e. it was returned
    /// zero-copy by `tensor(_:)` (or is a view of such a tensor). Lets callers and tests check
    /// that loading a model did not duplicate its weights.
    public func isMapped(_ tensor: Tensor) -> Bool {
        let start = UnsafeRawPointer(tensor.pointer)
        return start >= base && start + tensor.count * MemoryLayout<Float>.stride <= base + fileSize
    }

    /// Drops this file's pages from the process's resident set (`madvise(MADV_DONTNEED)`); the
    /// mapping stays valid and the next read faults the same bytes back in from the page cache.
    ///
    /// Why: a mapped weight file counts in RSS for as long as its pages were ever touched. A
    /// network used once per job (the text encoder: 1.4 GB for SD2) would otherwise sit in the
    /// resident set through the whole denoising loop, on top of the UNet. Safe at any time: the
    /// mapping is read-only and private, so no page holds data the file does not. A no-op for
    /// files held as an in-memory copy.
    public func releaseResidentPages() {
        guard !ownsCopy else { return }
        _ = madvise(UnsafeMutableRawPointer(mutating: base), fileSize, MADV_DONTNEED)
    }

    /// The same for the pages under one tensor read in place (rounded out to whole pages: a
    /// neighbour sharing an edge page faults it back in when read). A no-op for other memory.
    public func releaseResidentPages(of tensor: Tensor) {
        guard !ownsCopy, isMapped(tensor), tensor.count > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = UnsafeRawPointer(tensor.pointer) - base
        let lower = start / page * page
        let upper = min(fileSize, (start + tensor.count * MemoryLayout<Float>.stride + page - 1) / page * page)
        guard upper > lower else { return }
        _ = madvise(UnsafeMutableRawPointer(mutating: base + lower), upper - lower, MADV_DONTNEED)
    }

    private static func systemError() -> String {
        String(cString: strerror(errno))
    }
}

extension SafeTensorsFile: CustomStringConvertible {
    public var description: String {
        "SafeTensorsFile(\(url.lastPathComponent), \(tensors.count) tensors, \(fileSize) bytes)"
    }
}
