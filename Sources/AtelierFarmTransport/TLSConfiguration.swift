import CNNG
import Foundation

/// Mutual TLS for a farm socket (`tls+tcp://`): the farm CA, this side's certificate and its
/// key, PEM files (make them with `scripts/make-test-ca.sh`). Both sides present a certificate
/// and accept only peers whose certificate the farm CA signed; the coordinator refuses other
/// peers in the handshake, before any message is read (NNG-NOTES §5).
///
/// nng 1.5.2 + mbed TLS 2.28 speak TLS 1.2 only and cannot name the peer's certificate, so TLS
/// says "a member of the farm" and the role tokens (`Request.auth_token`) say who.
public struct TLSConfiguration: Sendable, Equatable {
    public var caFile: String
    public var certFile: String
    public var keyFile: String
    /// The name a client checks the coordinator's certificate against (a DNS name of its SAN;
    /// mbed TLS 2.28 matches names, so an IP needs a `DNS:` SAN of that text, which
    /// make-test-ca.sh adds). nil: the host of the address dialed. Ignored by servers.
    public var serverName: String?

    public static let caEnvironmentVariable = "ATELIER_TLS_CA"
    public static let certEnvironmentVariable = "ATELIER_TLS_CERT"
    public static let keyEnvironmentVariable = "ATELIER_TLS_KEY"
    public static let serverNameEnvironmentVariable = "ATELIER_TLS_SERVER_NAME"

    public init(caFile: String, certFile: String, keyFile: String, serverName: String? = nil) {
        self.caFile = caFile
        self.certFile = certFile
        self.keyFile = keyFile
        self.serverName = serverName
    }

    /// The configuration from the flags, each falling back to its environment variable; nil
    /// when none of the three files is given.
    /// - Throws: `TLSConfigurationError.incomplete` when only some are.
    public static func resolve(ca: String?, cert: String?, key: String?, serverName: String? = nil,
                               environment: [String: String] = ProcessInfo.processInfo.environment) throws -> TLSConfiguration? {
        func pick(_ flag: String?, _ variable: String) -> String? {
            for candidate in [flag, environment[variable]] {
                if let value = candidate?.trimmingCharacters(in: .whitespaces), !value.isEmpty { return value }
            }
            return nil
        }
        let files = (pick(ca, caEnvironmentVariable), pick(cert, certEnvironmentVariable), pick(key, keyEnvironmentVariable))
        switch files {
        case (nil, nil, nil):
            return nil
        case let (ca?, cert?, key?):
            return TLSConfiguration(caFile: ca, certFile: cert, keyFile: key,
                                    serverName: pick(serverName, serverNameEnvironmentVariable))
        default:
            var missing: [String] = []
            if files.0 == nil { missing.append("--tls-ca") }
            if files.1 == nil { missing.append("--tls-cert") }
            if files.2 == nil { missing.append("--tls-key") }
            throw TLSConfigurationError.incomplete(missing: missing)
        }
    }

    /// Whether `url` is a TLS transport (`tls+tcp://`, `tls+tcp4://`, `tls+tcp6://`).
    public static func isTLS(_ url: String) -> Bool {
        url.lowercased().hasPrefix("tls+")
    }

    /// Refuses a TLS address without files and files for a plain address (either is a mistake
    /// that would otherwise show up only as a peer that never answers).
    public static func check(address url: String, tls: TLSConfiguration?) throws {
        if isTLS(url), tls == nil { throw TLSConfigurationError.tlsAddressWithoutFiles(address: url) }
        if !isTLS(url), tls != nil { throw TLSConfigurationError.filesWithoutTLSAddress(address: url) }
    }

    /// Checks the three files the way the handshake will (they exist, are readable PEM, the key
    /// is the certificate's and the farm CA signed it) and returns their text.
    /// - Throws: `TLSConfigurationError` naming the file and the problem.
    public func load() throws -> (ca: String, cert: String, key: String) {
        let ca = try Self.read(caFile, option: "--tls-ca", what: "CA certificate")
        let cert = try Self.read(certFile, option: "--tls-cert", what: "certificate")
        let key = try Self.read(keyFile, option: "--tls-key", what: "private key")
        var mbedError: Int32 = 0
        var flags: UInt32 = 0
        let result = atelier_tls_check_files(caFile, certFile, keyFile, &mbedError, &flags)
        switch Int(result) {
        case ATELIER_TLS_OK: return (ca, cert, key)
        case ATELIER_TLS_BAD_CA:
            throw TLSConfigurationError.unparsable(path: caFile, option: "--tls-ca", what: "CA certificate", code: mbedError)
        case ATELIER_TLS_BAD_CERT:
            throw TLSConfigurationError.unparsable(path: certFile, option: "--tls-cert", what: "certificate", code: mbedError)
        case ATELIER_TLS_BAD_KEY:
            throw TLSConfigurationError.unparsable(path: keyFile, option: "--tls-key", what: "unencrypted private key", code: mbedError)
        case ATELIER_TLS_KEY_MISMATCH:
            throw TLSConfigurationError.keyMismatch(cert: certFile, key: keyFile)
        default:
            throw TLSConfigurationError.notSignedByCA(cert: certFile, ca: caFile, flags: flags)
        }
    }

    /// Largest PEM file read (a certificate chain is a few KiB).
    static let maxFileBytes = 1 << 20

    private static func read(_ path: String, option: String, what: String) throws -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw TLSConfigurationError.missing(path: path, option: option, what: what)
        }
        guard !isDirectory.boolValue, let handle = FileHandle(forReadingAtPath: path) else {
            throw TLSConfigurationError.unreadable(path: path, option: option, what: what)
        }
        defer { try? handle.close() }
        guard let data = try? handle.read(upToCount: maxFileBytes + 1), data.count <= maxFileBytes,
              let text = String(data: data, encoding: .utf8), text.contains("-----BEGIN ") else {
            throw TLSConfigurationError.unparsable(path: path, option: option, what: what, code: 0)
        }
        return text
    }

    /// The host part of a `tls+tcp://host:port` URL ("[::1]:7733" → "::1").
    static func host(of url: String) -> String {
        guard let schemeEnd = url.range(of: "://") else { return url }
        var rest = String(url[schemeEnd.upperBound...])
        if let slash = rest.firstIndex(of: "/") { rest = String(rest[..<slash]) }
        if rest.hasPrefix("["), let close = rest.firstIndex(of: "]") {
            return String(rest[rest.index(after: rest.startIndex)..<close])
        }
        if let colon = rest.lastIndex(of: ":") { rest = String(rest[..<colon]) }
        return rest
    }

    /// A fresh nng TLS configuration for one dialer (`.client`, checking the coordinator's name)
    /// or listener (`.server`, requiring a client certificate from the farm CA). The caller
    /// attaches it to its endpoint (which takes its own hold) and frees it. Never set on the
    /// socket (NNG-NOTES §5: that path holds no reference).
    func makeNNGConfig(server: Bool, dialing url: String) throws -> OpaquePointer {
        let pem = try load()
        var config: OpaquePointer?
        var rv = nng_tls_config_alloc(&config, server ? NNG_TLS_MODE_SERVER : NNG_TLS_MODE_CLIENT)
        guard rv == 0, let config else { throw TransportError.nng(operation: "allocating a TLS configuration", code: rv) }
        func fail(_ operation: String) -> Error {
            nng_tls_config_free(config)
            return TransportError.nng(operation: operation, code: rv)
        }
        rv = nng_tls_config_auth_mode(config, NNG_TLS_AUTH_MODE_REQUIRED)
        guard rv == 0 else { throw fail("requiring peer certificates") }
        rv = nng_tls_config_ca_chain(config, pem.ca, nil)
        guard rv == 0 else { throw fail("loading the CA \(caFile)") }
        rv = nng_tls_config_own_cert(config, pem.cert, pem.key, nil)
        guard rv == 0 else { throw fail("loading the certificate \(certFile) and key \(keyFile)") }
        if !server {
            // A configuration we supply has no server name, and without one mbed TLS checks
            // only the chain, not whose certificate it is (NNG-NOTES §5).
            let name = serverName ?? Self.host(of: url)
            rv = nng_tls_config_server_name(config, name)
            guard rv == 0 else { throw fail("setting the TLS server name \(name)") }
        }
        return config
    }
}

/// A TLS option or file the farm cannot use, with a one-line message that names the file.
public enum TLSConfigurationError: Error, CustomStringConvertible, Equatable, Sendable {
    case incomplete(missing: [String])
    case tlsAddressWithoutFiles(address: String)
    case filesWithoutTLSAddress(address: String)
    case missing(path: String, option: String, what: String)
    case unreadable(path: String, option: String, what: String)
    case unparsable(path: String, option: String, what: String, code: Int32)
    case keyMismatch(cert: String, key: String)
    case notSignedByCA(cert: String, ca: String, flags: UInt32)

    public var description: String {
        switch self {
        case let .incomplete(missing):
            return "TLS needs --tls-ca, --tls-cert and --tls-key together (or ATELIER_TLS_CA/_CERT/_KEY); missing \(missing.joined(separator: ", "))"
        case let .tlsAddressWithoutFiles(address):
            return "\(address) is a TLS address: give --tls-ca, --tls-cert and --tls-key (see scripts/make-test-ca.sh)"
        case let .filesWithoutTLSAddress(address):
            return "TLS files were given but \(address) is not a tls+tcp:// address; use tls+tcp://HOST:PORT or drop the --tls-* options"
        case let .missing(path, option, what):
            return "\(option) \(path): no such file (the \(what), PEM)"
        case let .unreadable(path, option, what):
            return "\(option) \(path): not a readable file (the \(what), PEM); check its permissions"
        case let .unparsable(path, option, what, code):
            return "\(option) \(path): not a PEM \(what)" + (code == 0 ? "" : String(format: " (mbed TLS error -0x%04X)", -code))
        case let .keyMismatch(cert, key):
            return "--tls-key \(key) is not the private key of --tls-cert \(cert)"
        case let .notSignedByCA(cert, ca, flags):
            var why = "not signed by it"
            if flags & UInt32(MBEDTLS_X509_BADCERT_EXPIRED) != 0 { why = "expired" }
            else if flags & UInt32(MBEDTLS_X509_BADCERT_FUTURE) != 0 { why = "not valid yet" }
            return "--tls-cert \(cert) does not verify against --tls-ca \(ca) (\(why)); every farm certificate must come from the farm CA"
        }
    }
}
