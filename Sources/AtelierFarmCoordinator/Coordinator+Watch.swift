import AtelierFarmProtocol
import Foundation

/// watch_job: a long poll, so clients (`atelier wait`, `atelier status --watch`) follow a job
/// without asking in a loop. The reply comes as soon as the job's fingerprint (its state, its
/// done count, each task's state and step) differs from the one the client sent, or when the
/// timeout passes.
///
/// A watch holds one of the server's REP contexts (a fixed pool, `--contexts`) while it waits, so
/// at most `options.maxWatchers` wait at once; beyond that a watch is answered at once with the
/// current state, and the workers' heartbeats and completions always find a free context. The
/// timeout is clamped to `maxWatchTimeoutMs`, well below the 10 s after which a client's REQ
/// socket resends an unanswered request.
extension Coordinator {
    static let defaultWatchTimeoutMs: UInt32 = 5000
    static let maxWatchTimeoutMs: UInt32 = 8000
    /// Longest single sleep: a change made by another process on a shared store would not bump
    /// this coordinator's signal, so watchers look again at least this often.
    static let watchRecheckSeconds: TimeInterval = 1

    func watchJob(_ r: Atelier_V1_WatchJobRequest) throws -> Atelier_V1_Response {
        let timeoutMs = r.timeoutMs == 0 ? Coordinator.defaultWatchTimeoutMs : min(r.timeoutMs, Coordinator.maxWatchTimeoutMs)
        let deadline = Date().addingTimeInterval(Double(timeoutMs) / 1000)
        let holdsSlot = beginWatch()
        defer { if holdsSlot { endWatch() } }
        while true {
            let seen = changes.current  // before reading, so a change during the read is not missed
            let status = try store.jobStatus(jobID: r.jobID, includeTasks: true)
            let fingerprint = Coordinator.watchFingerprint(status)
            let finished = status.state == .succeeded || status.state == .failed || status.state == .cancelled
            if fingerprint != r.fingerprint || r.fingerprint.isEmpty || finished || !holdsSlot || Date() >= deadline {
                var body = Atelier_V1_WatchJobResponse()
                body.job = status
                if !r.includeTasks { body.job.tasks = [] }
                body.fingerprint = fingerprint
                body.changed = fingerprint != r.fingerprint
                return Coordinator.success(.watchJob(body))
            }
            changes.wait(after: seen, until: min(deadline, Date().addingTimeInterval(Coordinator.watchRecheckSeconds)))
        }
    }

    /// What a watcher compares: the job's state and done count and every task's state and step,
    /// as 16 hex digits (FNV-1a, stable across processes).
    static func watchFingerprint(_ status: Atelier_V1_JobStatus) -> String {
        var text = "\(status.state.rawValue)|\(status.doneTasks)|\(status.resultCount)|\(status.errors.count)"
        for task in status.tasks {
            text += "|\(task.index):\(task.state.rawValue):\(task.step)/\(task.totalSteps)"
        }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// Takes a waiting slot; false when `maxWatchers` already wait.
    func beginWatch() -> Bool {
        watchLock.lock()
        defer { watchLock.unlock() }
        guard activeWatchers < options.maxWatchers else { return false }
        activeWatchers += 1
        return true
    }

    func endWatch() {
        watchLock.lock()
        activeWatchers -= 1
        watchLock.unlock()
    }
}
