/// The `--http HOST:PORT` of `atelier coordinator`: where the metrics endpoint and the status page
/// listen. A separate address from the nng one, because Prometheus and browsers speak HTTP.
public struct HTTPBindAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT` (`127.0.0.1:9733`, `0.0.0.0:9733`, `[::1]:9733`, `localhost:0` for any
    /// free port).
    public init(parsing text: String) throws {
        guard let colon = text.lastIndex(of: ":"), colon != text.startIndex else {
            throw ObservabilityError("--http takes HOST:PORT (for example 127.0.0.1:9733), not \"\(text)\"")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, host.allSatisfy({ $0.isLetter || $0.isNumber || ".-:_".contains($0) }) else {
            throw ObservabilityError("--http: \"\(host)\" is not a host name or IP address")
        }
        guard let port = Int(text[text.index(after: colon)...]), (0...65_535).contains(port) else {
            throw ObservabilityError("--http: the port of \"\(text)\" must be a number in 0...65535")
        }
        self.init(host: host, port: port)
    }

    /// Whether only this machine can reach it.
    public var isLoopback: Bool { host == "127.0.0.1" || host == "::1" || host == "localhost" }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// A one-line, actionable failure of the HTTP side.
public struct ObservabilityError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
