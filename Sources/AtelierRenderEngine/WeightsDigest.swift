import AtelierModels
import Foundation

/// `ModelInfo.weights_sha256`: SHA-256 over the whole files a model loads, so two workers that
/// serve one model NAME with different files are told apart (a job is pinned to one digest and
/// never mixes their images). A short sampled hash (A1111's) is not enough for that: it reads
/// 64 KiB of a multi-GB file.
///
/// - A single file: its SHA-256.
/// - A diffusers folder: SHA-256 of the sorted lines `relative/path<TAB>sha256<LF>` of every
///   weight, config and tokenizer file in it (`.safetensors .bin .ckpt .pt .pth .json .txt
///   .yaml .model`, hidden files and folders skipped).
///
/// Hashing a few GB takes a while, so digests are cached in a small tab-separated file keyed by
/// path, size and modification time (`Cache`): a restarted worker re-hashes only files that
/// changed.
public enum WeightsDigest {
    static let extensions: Set<String> = ["safetensors", "bin", "ckpt", "pt", "pth", "json", "txt", "yaml", "model"]

    public static func of(_ url: URL, cache: Cache? = .shared) throws -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: url.path])
        }
        if !isDirectory.boolValue { return try file(url, cache: cache) }
        let root = url.resolvingSymlinksInPath().standardizedFileURL
        let prefix = root.path.hasSuffix("/") ? root.path : root.path + "/"
        var lines = [String]()
        let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey],
                                                    options: [.skipsHiddenFiles])
        while let item = walker?.nextObject() as? URL {
            guard extensions.contains(item.pathExtension.lowercased()),
                  (try? item.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true else { continue }
            let path = item.resolvingSymlinksInPath().standardizedFileURL.path
            let relative = path.hasPrefix(prefix) ? String(path.dropFirst(prefix.count)) : item.lastPathComponent
            lines.append("\(relative)\t\(try file(item, cache: cache))\n")
        }
        var hasher = SHA256Hasher()
        hasher.update(Data(lines.sorted().joined().utf8))
        return hasher.finalizeHex()
    }

    /// SHA-256 of one whole file (streamed in 4 MiB reads), from the cache when path, size and
    /// mtime match.
    static func file(_ url: URL, cache: Cache?) throws -> String {
        let attributes = try FileManager.default.attributesOfItem(atPath: url.path)
        let size = (attributes[.size] as? NSNumber)?.int64Value ?? -1
        let mtime = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        let key = Cache.Key(path: url.standardizedFileURL.path, size: size, mtime: mtime)
        if let hit = cache?.lookup(key) { return hit }
        let handle = try FileHandle(forReadingFrom: url)
        defer { try? handle.close() }
        var hasher = SHA256Hasher()
        while let chunk = try handle.read(upToCount: 4 << 20), !chunk.isEmpty {
            hasher.update(chunk)
        }
        let digest = hasher.finalizeHex()
        cache?.store(key, digest)
        return digest
    }

    /// path + size + mtime → digest, kept in a tab-separated file (one line per file). Lines that
    /// do not parse are ignored; the file is rewritten atomically after each new digest.
    public final class Cache: @unchecked Sendable {
        struct Key: Hashable {
            var path: String
            var size: Int64
            var mtime: Double
        }

        /// `$ATELIER_CACHE_DIR`, else `$XDG_CACHE_HOME/atelier`, else `~/.cache/atelier`, file
        /// `weights-sha256.tsv`.
        public static let shared: Cache = {
            let env = ProcessInfo.processInfo.environment
            let folder: URL
            if let dir = env["ATELIER_CACHE_DIR"], !dir.isEmpty {
                folder = URL(fileURLWithPath: dir)
            } else if let xdg = env["XDG_CACHE_HOME"], !xdg.isEmpty {
                folder = URL(fileURLWithPath: xdg).appendingPathComponent("atelier")
            } else {
                folder = FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/atelier")
            }
            return Cache(file: folder.appendingPathComponent("weights-sha256.tsv"))
        }()

        public let file: URL
        private let lock = NSLock()
        private var entries: [Key: String]?

        public init(file: URL) {
            self.file = file
        }

        func lookup(_ key: Key) -> String? {
            lock.lock(); defer { lock.unlock() }
            return loaded()[key]
        }

        func store(_ key: Key, _ digest: String) {
            lock.lock(); defer { lock.unlock() }
            var all = loaded()
            all[key] = digest
            entries = all
            let text = all.map { "\($0.key.path)\t\($0.key.size)\t\($0.key.mtime)\t\($0.value)\n" }.sorted().joined()
            // A cache that cannot be written only costs time on the next start.
            try? FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
            try? Data(text.utf8).write(to: file, options: .atomic)
        }

        private func loaded() -> [Key: String] {
            if let entries { return entries }
            var parsed = [Key: String]()
            if let text = try? String(contentsOf: file, encoding: .utf8) {
                for line in text.split(separator: "\n") {
                    let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
                    guard fields.count == 4, let size = Int64(fields[1]), let mtime = Double(fields[2]),
                          fields[3].count == 64 else { continue }
                    parsed[Key(path: String(fields[0]), size: size, mtime: mtime)] = String(fields[3])
                }
            }
            entries = parsed
            return parsed
        }
    }
}
