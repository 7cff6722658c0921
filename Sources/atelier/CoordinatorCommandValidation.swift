import AtelierFarm
import Foundation

/// Range checks of `atelier coordinator`'s options, run by ArgumentParser right after parsing
/// (before anything is opened), each a one-line error naming the option and its range. Kept out
/// of CoordinatorCommand.swift so the command's body stays about serving.
extension CoordinatorCommand {
    /// Concurrent request contexts: 0 served nothing; each holds a thread's worth of state.
    static let contextsRange = 1...256

    func validate() throws {
        _ = try OptionRange.check(contexts, in: Self.contextsRange, "--contexts", "concurrent requests served")
        guard leaseSeconds.isFinite, (1...86_400).contains(leaseSeconds) else {
            throw CLIError("--lease-seconds must be in 1…86400 (a day), got \(leaseSeconds)")
        }
        _ = try OptionRange.check(maxAttempts, in: CoordinatorOptions.maxAttemptsRange, "--max-attempts")
        _ = try OptionRange.check(maxQueue, in: CoordinatorOptions.maxUnfinishedTasksRange, "--max-queue", "unfinished tasks")
        guard workerRetentionSeconds.isFinite, (1...30 * 86_400).contains(workerRetentionSeconds) else {
            throw CLIError("--worker-retention-seconds must be in 1…2592000 (30 days), got \(workerRetentionSeconds)")
        }
        if let maxConnections { _ = try OptionRange.check(maxConnections, in: 1...1_000_000, "--max-connections") }
        guard idleConnectionSeconds.isFinite, (1...86_400).contains(idleConnectionSeconds) else {
            throw CLIError("--idle-connection-seconds must be in 1…86400 (a day), got \(idleConnectionSeconds)")
        }
        try DataFolder.check(data, option: "--data")
    }
}

/// The coordinator's `--data` folder: it may not exist yet (it is created), but it must not be
/// a file.
enum DataFolder {
    static func check(_ path: String, option: String) throws {
        let expanded = (path as NSString).expandingTildeInPath
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: expanded, isDirectory: &isDir), !isDir.boolValue {
            throw CLIError("\(option) \(CLIError.echo(path)) is a file, not a directory; pass a folder for the database and results (it is created if missing)")
        }
    }
}
