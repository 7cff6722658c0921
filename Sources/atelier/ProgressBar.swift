import Foundation

/// A one-line progress bar on stderr (step, it/s, ETA) when stderr is a terminal; silent when
/// piped or with --quiet, so scripts get clean output.
final class ProgressBar {
    let label: String
    let enabled: Bool
    let start = Date()
    private var lastDraw = Date.distantPast

    init(label: String, quiet: Bool = false) {
        self.label = label
        enabled = !quiet && isatty(STDERR_FILENO) == 1
    }

    /// Draws `done` of `total`. Any pair is safe: a heartbeat may report step > total_steps (the
    /// coordinator stores what workers send), a job may report 0 tasks; the bar clamps instead of
    /// trusting them.
    /// `detail` follows the bar (the farm's "image 3/8: step 12/30"); the line is cleared to its
    /// end, so a shorter detail leaves nothing behind.
    func update(_ done: Int, _ total: Int, detail: String = "") {
        guard enabled else { return }
        let now = Date()
        let (done, total) = Self.clamped(done, total)
        if done < total && now.timeIntervalSince(lastDraw) < 0.1 { return }
        lastDraw = now
        let suffix = detail.isEmpty ? "" : "  " + detail + "\u{1B}[K"
        FileHandle.standardError.write(Data((Self.line(label: label, done: done, total: total,
                                                        elapsed: now.timeIntervalSince(start)) + suffix).utf8))
        if done >= total { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    /// `total` at least 1 and `done` within 0…total.
    static func clamped(_ done: Int, _ total: Int) -> (done: Int, total: Int) {
        let total = max(total, 1)
        return (min(max(done, 0), total), total)
    }

    static let width = 28

    /// The bar's text for any inputs (clamped first): never a negative repeat count, never a
    /// division by zero, never a non-finite rate or ETA.
    static func line(label: String, done: Int, total: Int, elapsed: Double) -> String {
        let (done, total) = clamped(done, total)
        let elapsed = elapsed.isFinite ? max(elapsed, 0) : 0
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let eta = rate > 0 ? Double(total - done) / rate : 0
        // done ≤ total, so filled ≤ width; computed in Double so huge totals cannot overflow.
        let filled = min(max(Int(Double(width) * Double(done) / Double(total)), 0), width)
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        return String(format: "\r%@ %@ %d/%d  %.2f it/s  ETA %@", label, bar, done, total, rate, clock(eta))
    }

    func finish() {
        guard enabled else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }

    static func clock(_ seconds: Double) -> String {
        // Clamped to 99:59:59 so an absurd estimate cannot trap converting to Int.
        let s = seconds.isFinite ? Int(min(max(seconds, 0), 359_999).rounded()) : 0
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}
