import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The coordinator's data folder on a small tmpfs of its own, so the chaos run can fill the disk
/// under a live coordinator (`ENOSPC` on the database and on result files) and free it again.
/// Mounting needs root (CAP_SYS_ADMIN); without it the folder is a plain one and the disk-full
/// fault is skipped with the reason printed.
final class TmpfsDataDirectory {
    let url: URL
    let sizeMiB: Int
    private(set) var mounted = false
    /// Why disk-full cannot be injected (nil when it can).
    private(set) var unavailableReason: String?
    private var fillerURL: URL { url.appendingPathComponent("chaos-disk-filler") }

    init(url: URL, sizeMiB: Int) {
        self.url = url
        self.sizeMiB = sizeMiB
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        guard getuid() == 0 else {
            unavailableReason = "not root (uid \(getuid())): cannot mount a tmpfs"
            return
        }
        let mount = Process()
        mount.executableURL = URL(fileURLWithPath: "/bin/mount")
        mount.arguments = ["-t", "tmpfs", "-o", "size=\(sizeMiB)m,mode=0700", "tmpfs", url.path]
        let err = Pipe()
        mount.standardError = err
        mount.standardOutput = FileHandle.nullDevice
        do {
            try mount.run()
            mount.waitUntilExit()
        } catch {
            unavailableReason = "cannot run /bin/mount: \(error)"
            return
        }
        if mount.terminationStatus == 0 {
            mounted = true
        } else {
            let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            unavailableReason = "mount -t tmpfs refused (\(message.trimmingCharacters(in: .whitespacesAndNewlines))); no CAP_SYS_ADMIN in this container?"
        }
    }

    /// Fills the file system until a write fails with ENOSPC; returns the bytes written.
    func fill() -> Int {
        let fd = open(fillerURL.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        var written = 0
        for blockSize in [1 << 20, 4096, 512] {
            let block = [UInt8](repeating: 0xA5, count: blockSize)
            while true {
                let n = block.withUnsafeBytes { write(fd, $0.baseAddress, blockSize) }
                if n <= 0 { break }
                written += n
            }
        }
        return written
    }

    /// Frees the space `fill()` took.
    func free() { try? FileManager.default.removeItem(at: fillerURL) }

    func unmount() {
        guard mounted else { return }
        let umount = Process()
        umount.executableURL = URL(fileURLWithPath: "/bin/umount")
        umount.arguments = [url.path]
        try? umount.run()
        umount.waitUntilExit()
        mounted = umount.terminationStatus != 0
    }
}
