import Foundation

/// What a token may do (`AccessPolicy` has the table):
/// - `submit`: clients: submit jobs, read any job, worker list and result, cancel their own jobs;
/// - `work`: workers: register, lease, heartbeat, complete, fail, release;
/// - `admin`: everything, including cancelling any job and draining workers.
public enum AccessRole: String, CaseIterable, Sendable {
    case submit, work, admin
}

/// A caller the coordinator has authenticated: the name and role of the token it presented.
public struct AccessCaller: Sendable, Equatable {
    public var name: String
    public var role: AccessRole

    public init(name: String, role: AccessRole) {
        self.name = name
        self.role = role
    }
}

/// A refused tokens file or token option, with a one-line message naming the file and line.
public struct AccessTokensError: Error, CustomStringConvertible, Equatable, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The coordinator's tokens (`--tokens FILE`): one `NAME ROLE SHA256HEX` line per token, `#`
/// comments and blank lines allowed. Only hashes are stored, so the file (or a backup of it) does
/// not give anyone a token; `atelier token new` makes a token and prints its line.
///
/// Why plain SHA-256 and no salt or slow hash: the secrets are 256 random bits, not passwords,
/// so there is nothing to guess that a slow hash would protect.
public struct AccessTokens: Sendable {
    public struct Entry: Sendable, Equatable {
        public var name: String
        public var role: AccessRole
        /// SHA-256 of the secret token's UTF-8 bytes.
        public var hash: [UInt8]
    }

    public let entries: [Entry]

    /// Largest tokens file read (a file of 1 MiB holds over 10,000 tokens).
    public static let maxFileBytes = 1 << 20
    /// Names: letters, digits, `.`, `_`, `-`; 1…64 characters (they end up in logs and listings).
    public static let maxNameLength = 64
    /// Longest token accepted on the wire (the ones `newSecret` makes have 64 characters).
    public static let maxTokenLength = 256
    public static let environmentVariable = "ATELIER_TOKENS_FILE"

    public init(entries: [Entry]) {
        self.entries = entries
    }

    /// Reads and parses `path`.
    /// - Throws: `AccessTokensError` naming the file (and line) and what is wrong.
    public static func load(path: String) throws -> AccessTokens {
        let url = URL(fileURLWithPath: (path as NSString).expandingTildeInPath)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw AccessTokensError("tokens file \(path) does not exist (make tokens with `atelier token new --name NAME --role ROLE`)")
        }
        guard !isDirectory.boolValue else { throw AccessTokensError("tokens file \(path) is a directory, not a file") }
        guard let handle = FileHandle(forReadingAtPath: url.path) else {
            throw AccessTokensError("tokens file \(path) is not readable by this user")
        }
        defer { try? handle.close() }
        let data = (try? handle.read(upToCount: maxFileBytes + 1)) ?? Data()
        guard data.count <= maxFileBytes else {
            throw AccessTokensError("tokens file \(path) is over \(maxFileBytes) bytes")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw AccessTokensError("tokens file \(path) is not UTF-8 text")
        }
        return try parse(text, source: path)
    }

    /// Parses the text of a tokens file; `source` names it in errors.
    public static func parse(_ text: String, source: String) throws -> AccessTokens {
        var entries: [Entry] = []
        var names = Set<String>()
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let at = "tokens file \(source) line \(number + 1)"
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard fields.count == 3 else {
                throw AccessTokensError("\(at): expected `NAME ROLE SHA256HEX` (3 fields), found \(fields.count)")
            }
            let (name, roleText, hex) = (fields[0], fields[1], fields[2].lowercased())
            guard isValidName(name) else {
                throw AccessTokensError("\(at): the name must be 1…\(maxNameLength) letters, digits, '.', '_' or '-'")
            }
            guard let role = AccessRole(rawValue: roleText) else {
                throw AccessTokensError("\(at): unknown role \"\(roleText.prefix(32))\"; expected submit, work or admin")
            }
            guard hex.utf8.count == 64, let hash = decodeHex(hex) else {
                throw AccessTokensError("\(at): the hash must be 64 hex digits (the SHA-256 of the token), not the token itself")
            }
            guard names.insert(name).inserted else {
                throw AccessTokensError("\(at): the name \"\(name)\" is used twice; names must be unique")
            }
            entries.append(Entry(name: name, role: role, hash: hash))
        }
        guard !entries.isEmpty else {
            throw AccessTokensError("tokens file \(source) holds no tokens; add lines from `atelier token new`")
        }
        return AccessTokens(entries: entries)
    }

    /// The caller `token` belongs to, or nil. Compares the token's hash with every entry, each in
    /// constant time and without stopping at a match, so the time taken says nothing about
    /// which entry (or how much of a hash) matched.
    public func authenticate(_ token: String) -> AccessCaller? {
        guard !token.isEmpty, token.utf8.count <= Self.maxTokenLength else { return nil }
        let hash = SHA256.digest(Array(token.utf8))
        var found: Entry?
        for entry in entries {
            var difference: UInt8 = 0
            for i in 0..<32 { difference |= entry.hash[i] ^ hash[i] }
            if difference == 0 { found = entry }
        }
        return found.map { AccessCaller(name: $0.name, role: $0.role) }
    }

    /// A fresh secret token: 32 random bytes as 64 hex digits.
    public static func newSecret() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }

    /// The tokens-file line for `secret`.
    public static func line(name: String, role: AccessRole, secret: String) -> String {
        "\(name) \(role.rawValue) \(SHA256.hex(secret))"
    }

    public static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= maxNameLength
            && name.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "._-".unicodeScalars.contains($0)) }
    }

    private static func decodeHex(_ hex: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        var iterator = hex.utf8.makeIterator()
        while let high = iterator.next() {
            guard let low = iterator.next(), let h = nibble(high), let l = nibble(low) else { return nil }
            bytes.append(h << 4 | l)
        }
        return bytes
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        default: return nil
        }
    }
}
