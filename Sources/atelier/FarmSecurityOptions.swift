import ArgumentParser
import Foundation
import AtelierFarm

/// `--tls-ca/--tls-cert/--tls-key` (mutual TLS on `tls+tcp://` addresses), shared by the
/// coordinator, the worker and every client command. Each falls back to its environment variable
/// (ATELIER_TLS_CA, ATELIER_TLS_CERT, ATELIER_TLS_KEY), so a shell or a systemd unit sets them once.
struct TLSOptions: ParsableArguments {
    @Option(name: .customLong("tls-ca"), help: "Farm CA certificate (PEM) for tls+tcp:// (default: $ATELIER_TLS_CA).")
    var ca: String?
    @Option(name: .customLong("tls-cert"), help: "This side's certificate (PEM), signed by the farm CA (default: $ATELIER_TLS_CERT).")
    var cert: String?
    @Option(name: .customLong("tls-key"), help: "This side's private key (PEM, unencrypted) (default: $ATELIER_TLS_KEY).")
    var key: String?
    @Option(name: .customLong("tls-server-name"), help: "Clients: the name the coordinator's certificate must carry (default: $ATELIER_TLS_SERVER_NAME, else the host dialed).")
    var serverName: String?

    /// nil when no TLS file is given (plain tcp://); throws a one-line error when only some are.
    func configuration() throws -> TLSConfiguration? {
        try TLSConfiguration.resolve(ca: ca, cert: cert, key: key, serverName: serverName)
    }
}

/// `--token` / `--token-file` (default: $ATELIER_TOKEN, then $ATELIER_TOKEN_FILE): the role token
/// sent as `auth_token` with every request, for a coordinator started with `--tokens`.
struct TokenOptions: ParsableArguments {
    @Option(help: "Access token from `atelier token new` (default: $ATELIER_TOKEN). Prefer --token-file: arguments show in `ps`.")
    var token: String?
    @Option(help: "File whose first line is the access token (default: $ATELIER_TOKEN_FILE).")
    var tokenFile: String?

    /// The token to send ('' when none is given: fine while the coordinator's access is open).
    func resolve(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        if let token, !token.isEmpty { return try Self.checked(token, from: "--token") }
        if let tokenFile, !tokenFile.isEmpty { return try Self.read(tokenFile, option: "--token-file") }
        if let token = environment["ATELIER_TOKEN"], !token.isEmpty { return try Self.checked(token, from: "$ATELIER_TOKEN") }
        if let file = environment["ATELIER_TOKEN_FILE"], !file.isEmpty { return try Self.read(file, option: "$ATELIER_TOKEN_FILE") }
        return ""
    }

    private static func checked(_ token: String, from source: String) throws -> String {
        let trimmed = token.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty, trimmed.utf8.count <= AccessTokens.maxTokenLength,
              trimmed.unicodeScalars.allSatisfy({ $0.isASCII && $0.value > 0x20 && $0.value < 0x7f }) else {
            throw CLIError("\(source): a token is 1…\(AccessTokens.maxTokenLength) printable ASCII characters (as `atelier token new` prints)")
        }
        return trimmed
    }

    private static func read(_ path: String, option: String) throws -> String {
        let text = try BoundedFile.text((path as NSString).expandingTildeInPath, maxBytes: 4096, option: option)
        let first = text.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        return try checked(first, from: "\(option) \(path)")
    }
}
