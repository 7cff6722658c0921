import Foundation

/// A generation counter that long-polling requests (watch_job) sleep on: every state change
/// (heartbeat, lease, completion, failure, cancel, expiry, stitch) bumps it and wakes them, so a
/// watcher answers as soon as something happened instead of re-reading the store on a timer.
/// Watchers still re-check their job themselves: a bump only says "something changed".
final class ChangeSignal: @unchecked Sendable {
    private let condition = NSCondition()
    private var generation: UInt64 = 0

    var current: UInt64 {
        condition.lock()
        defer { condition.unlock() }
        return generation
    }

    func signal() {
        condition.lock()
        generation &+= 1
        condition.broadcast()
        condition.unlock()
    }

    /// Waits until the generation differs from `seen` or `deadline` passes; returns the
    /// generation then.
    @discardableResult
    func wait(after seen: UInt64, until deadline: Date) -> UInt64 {
        condition.lock()
        defer { condition.unlock() }
        while generation == seen {
            if !condition.wait(until: deadline) { break }
        }
        return generation
    }
}
