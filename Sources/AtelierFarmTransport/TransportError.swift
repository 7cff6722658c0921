import CNNG
import Foundation

/// Everything the nng transport can report to its callers, with messages meant for a person at a
/// terminal (the CLI prints `description` as is).
public enum TransportError: Error, CustomStringConvertible, Equatable, Sendable {
    /// No reply arrived in time. `droppedConnections` counts connections to the peer that closed
    /// while the request was waiting: a message over the receiver's `NNG_OPT_RECVMAXSZ` does not
    /// produce an error in nng 1.5.2, it closes the connection (NNG-NOTES §3), and REQ then
    /// resends on the next connection until the deadline. So a timeout with drops is the only
    /// sign of an oversize message, and the description says so.
    case timeout(address: String, after: Duration, droppedConnections: Int)
    /// The socket was closed (by `close()` on this side) while the call was in progress or before it.
    case closed
    /// The URL is not one nng can dial or listen on (`NNG_EADDRINVAL`, `NNG_EINVAL`, unknown scheme).
    case invalidAddress(address: String, reason: String)
    /// `NNG_EADDRINUSE` from `nng_listener_start`.
    case addressInUse(address: String)
    /// Refused locally before sending: the message is over the configured size limit, which is
    /// also the limit the peer is assumed to use (sending it would only close the connection).
    case messageTooLarge(size: Int, limit: Int)
    /// The peer answered with something that is not the reply to this request (farm layer).
    case unexpectedReply(String)
    /// Any other nng error: `code` is the nng errno, described with `nng_strerror`.
    case nng(operation: String, code: Int32)

    public var description: String {
        switch self {
        case let .timeout(address, after, drops):
            var text = "no answer from \(address) within \(formatDuration(after)) — is `atelier coordinator` running there?"
            if drops > 0 {
                text += " (the connection dropped \(drops) time\(drops == 1 ? "" : "s") while waiting; "
                    + "nng closes a connection that carries a message over the receiver's size limit)"
            }
            return text
        case .closed:
            return "the nng socket was closed"
        case let .invalidAddress(address, reason):
            return "invalid address '\(address)': \(reason) "
                + "(expected e.g. tcp://127.0.0.1:7733, tcp://[::1]:7733 or ipc:///path/to/socket)"
        case let .addressInUse(address):
            return "another coordinator is already listening on \(address)"
        case let .messageTooLarge(size, limit):
            return "message of \(size) bytes is over the size limit of \(limit) bytes"
        case let .unexpectedReply(why):
            return "unexpected reply: \(why)"
        case let .nng(operation, code):
            return "\(operation) failed: \(nngErrorString(code)) (nng error \(code))"
        }
    }

    /// Maps an nng error code from an operation on an established socket.
    static func from(_ rv: Int32, operation: String) -> TransportError {
        switch rv {
        case NNGErr.closed: return .closed
        default: return .nng(operation: operation, code: rv)
        }
    }
}

/// `nng_strerror`, as a Swift string.
func nngErrorString(_ rv: Int32) -> String {
    String(cString: nng_strerror(rv))
}

/// nng's errno values as `Int32`, the type every nng function returns.
enum NNGErr {
    static let timedOut = Int32(NNG_ETIMEDOUT.rawValue)
    static let closed = Int32(NNG_ECLOSED.rawValue)
    static let canceled = Int32(NNG_ECANCELED.rawValue)
    static let addressInUse = Int32(NNG_EADDRINUSE.rawValue)
    static let addressInvalid = Int32(NNG_EADDRINVAL.rawValue)
    static let invalid = Int32(NNG_EINVAL.rawValue)
    static let notSupported = Int32(NNG_ENOTSUP.rawValue)
    static let messageSize = Int32(NNG_EMSGSIZE.rawValue)
    static let noMemory = Int32(NNG_ENOMEM.rawValue)
}

/// "5 s", "300 ms", "1.5 s".
func formatDuration(_ duration: Duration) -> String {
    let ms = Int64(duration.milliseconds)
    if ms < 1000 { return "\(ms) ms" }
    if ms % 1000 == 0 { return "\(ms / 1000) s" }
    return String(format: "%.1f s", Double(ms) / 1000)
}

extension Duration {
    /// Whole milliseconds, rounded down, clamped at 0.
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        if seconds < 0 { return 0 }
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1000)
        if overflow { return Int64.max }
        return product + attoseconds / 1_000_000_000_000_000
    }

    /// As an `nng_duration` (int32 ms) for a timeout that must actually wait: at least 1 ms
    /// (0 would make the operation non-blocking), at most `Int32.max`.
    var nngTimeout: nng_duration {
        nng_duration(Swift.max(1, Swift.min(milliseconds, Int64(Int32.max))))
    }
}
