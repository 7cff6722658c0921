import Foundation

/// Where the coordinator is: `--coordinator` flag > `$ATELIER_COORDINATOR` > `tcp://127.0.0.1:7733`.
/// The same rule gives the coordinator its listen address.
public enum FarmAddress {
    /// Loopback, IPv4 literal. nng's resolver uses only the first `getaddrinfo` result and
    /// `tcp://:port` is IPv4-only (NNG-NOTES §4), so literal addresses are the predictable choice.
    public static let defaultCoordinator = "tcp://127.0.0.1:7733"
    public static let environmentVariable = "ATELIER_COORDINATOR"

    /// The address to use, from the flag (if given and not empty), else the environment
    /// variable (if set and not empty), else the default; normalised with `normalize`.
    public static func resolve(flag: String?,
                               environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        for candidate in [flag, environment[environmentVariable]] {
            if let value = candidate?.trimmingCharacters(in: .whitespaces), !value.isEmpty {
                return normalize(value)
            }
        }
        return defaultCoordinator
    }

    /// Accepts any nng URL unchanged (tcp://, tcp4://, tcp6://, ipc://, tls+tcp://, …) and reads
    /// a bare `host:port` as `tcp://host:port`; a comma-separated list (active/standby
    /// coordinators: clients dial them all and follow whichever serves) element by element.
    public static func normalize(_ address: String) -> String {
        address.split(separator: ",").map { part -> String in
            let trimmed = part.trimmingCharacters(in: .whitespaces)
            return trimmed.contains("://") ? trimmed : "tcp://" + trimmed
        }.joined(separator: ",")
    }
}

extension FarmAddress {
    /// Whether a listen address reaches only this machine (loopback IPs, `localhost`, ipc://,
    /// inproc://): the coordinator warns when it serves beyond that without TLS.
    public static func isLoopback(_ url: String) -> Bool {
        let lower = url.lowercased()
        if lower.hasPrefix("ipc://") || lower.hasPrefix("inproc://") || lower.hasPrefix("abstract://") { return true }
        let host = TLSConfiguration.host(of: lower)
        return host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}
