import Foundation

/// AUTOMATIC1111's short "Model hash": SHA-256 of the 64 KiB at offset 1 MiB of the weights file,
/// first 8 hex digits. It is what A1111 writes into PNG parameters, cheap to compute on
/// multi-GB files, and good enough to tell models apart.
public enum ModelHash {
    public static func short(of url: URL) -> String {
        guard let handle = try? FileHandle(forReadingFrom: url) else { return "" }
        defer { try? handle.close() }
        let size = (try? handle.seekToEnd()) ?? 0
        let offset: UInt64 = size > 0x100000 ? 0x100000 : 0
        try? handle.seek(toOffset: offset)
        let data = (try? handle.read(upToCount: 0x10000)) ?? Data()
        return String(SHA256.hex(Array(data)).prefix(8))
    }
}

/// One-shot SHA-256 of a message in memory; the rounds live in `SHA256Hasher`, which also
/// streams whole multi-GB model files.
public enum SHA256 {
    public static func digest(_ message: [UInt8]) -> [UInt8] {
        var hasher = SHA256Hasher()
        message.withUnsafeBytes { hasher.update($0) }
        return hasher.finalize()
    }

    public static func hex(_ message: [UInt8]) -> String {
        digest(message).map { String(format: "%02x", $0) }.joined()
    }
}
