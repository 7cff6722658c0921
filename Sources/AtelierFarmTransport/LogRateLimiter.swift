import Foundation
import Logging

/// At most one log line per kind per `interval`: what hostile or broken peers cause (malformed,
/// oversize or wrong-version requests, refused connections, lease expiries) must not let them
/// flood the log or the disk under it. The first event of a kind is logged at once; events
/// within the next `interval` are counted, and the next line that gets through says how many
/// similar ones were suppressed.
public final class LogRateLimiter: @unchecked Sendable {
    public let interval: TimeInterval
    private let now: @Sendable () -> Date
    private let lock = NSLock()
    private var entries: [String: (last: Date, suppressed: Int)] = [:]
    /// Kinds tracked at most: peers choose some of the text of a kind, so this bounds the table.
    static let maxKinds = 1024

    /// - Parameter now: the clock, injectable so tests can pass the interval without sleeping.
    public init(interval: TimeInterval = 10, now: @escaping @Sendable () -> Date = { Date() }) {
        self.interval = interval
        self.now = now
    }

    /// nil: suppress this event; else log it, mentioning the number of events of this kind
    /// suppressed since the last line.
    public func admit(_ kind: String) -> Int? {
        lock.lock()
        defer { lock.unlock() }
        let t = now()
        if let entry = entries[kind], t.timeIntervalSince(entry.last) < interval {
            entries[kind] = (entry.last, entry.suppressed + 1)
            return nil
        }
        let suppressed = entries[kind]?.suppressed ?? 0
        if entries.count >= Self.maxKinds && entries[kind] == nil {
            entries = entries.filter { t.timeIntervalSince($0.value.last) < interval }
        }
        entries[kind] = (t, 0)
        return suppressed
    }

    /// Logs `message` at `level` unless a line of `kind` went out less than `interval` ago; the
    /// line carries `kind`, and `suppressed` when similar events were dropped since the last one.
    public func log(_ logger: Logger, _ level: Logger.Level, kind: String, _ message: @autoclosure () -> String,
                    metadata: Logger.Metadata = [:]) {
        guard logger.logLevel <= level, let suppressed = admit(kind) else { return }
        var metadata = metadata
        metadata["event"] = .string(kind)
        var text = message()
        if suppressed > 0 {
            metadata["suppressed"] = .stringConvertible(suppressed)
            text += " (suppressed \(suppressed) similar in the last \(Int(interval)) s)"
        }
        logger.log(level: level, "\(text)", metadata: metadata)
    }
}
