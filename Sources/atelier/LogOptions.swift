import ArgumentParser
import AtelierFarm
import Foundation
import Logging

/// `--log-format` and `--log-level` of the long-running commands (coordinator, worker): text
/// lines for people, JSON lines (one object per line: timestamp, level, message, label, metadata
/// with job_id / task_id / worker_id / peer) for log shippers.
struct LogOptions: ParsableArguments {
    @Option(help: "Log lines as text or json (one JSON object per line).")
    var logFormat: FarmLogFormat = .text

    @Option(help: "Least severe level logged: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    /// Routes every `Logger` of the process (and `log(_:)`) through `FarmLogHandler`.
    func bootstrap() {
        FarmLogHandler.bootstrap(format: logFormat, level: logLevel)
    }
}

extension FarmLogFormat: ExpressibleByArgument {}
extension Logger.Level: @retroactive ExpressibleByArgument {}

/// The CLI's own log lines (startup, limits, shutdown), through the bootstrapped handler.
let cliLogger = LockedLogger()

final class LockedLogger: @unchecked Sendable {
    private let lock = NSLock()
    private var cached: Logger?

    var logger: Logger {
        lock.lock()
        defer { lock.unlock() }
        if let cached { return cached }
        let made = Logger(label: "atelier")
        cached = made
        return made
    }
}

func log(_ message: String, level: Logger.Level = .info, metadata: Logger.Metadata = [:]) {
    cliLogger.logger.log(level: level, "\(message)", metadata: metadata)
}
