import AtelierFarm
import Foundation

/// Follows one job with watch_job (a long poll): each `next()` returns once the job changed (a
/// task's state or step, the job's state) or after about five seconds, so clients show step
/// progress as it happens without asking in a loop. Against a coordinator that does not serve
/// watch_job it falls back to job_status every 0.3 s.
struct JobWatch {
    let client: FarmClient
    let jobID: String
    private(set) var fingerprint = ""
    private(set) var polling = false
    /// What the coordinator is asked to wait at most; it clamps this well below the client's
    /// 10 s REQ resend time.
    static let timeoutMs: UInt32 = 5000

    init(client: FarmClient, jobID: String) {
        self.client = client
        self.jobID = jobID
    }

    mutating func next() throws -> Atelier_V1_JobStatus {
        if polling {
            if !fingerprint.isEmpty { Thread.sleep(forTimeInterval: 0.3) }
            fingerprint = "polled"
            return try farmCall(client, .jobStatus(.with { $0.jobID = jobID; $0.includeTasks = true })).jobStatus.job
        }
        let started = Date()
        let response: Atelier_V1_WatchJobResponse
        do {
            response = try farmCall(client, .watchJob(.with {
                $0.jobID = jobID
                $0.fingerprint = fingerprint
                $0.timeoutMs = Self.timeoutMs
                $0.includeTasks = true
            }), timeout: .milliseconds(Int64(Self.timeoutMs) + 3000)).watchJob
        } catch let e as FarmCLIError where e.description.contains("watch_job is not served") {
            polling = true
            return try next()
        }
        // Answered at once without a change: the coordinator's watch slots were all taken.
        if !response.changed && Date().timeIntervalSince(started) < 1 { Thread.sleep(forTimeInterval: 0.5) }
        fingerprint = response.fingerprint
        return response.job
    }
}

/// How progress reads, the same in `wait` and `status`: "image 3/8: step 12/30" for each
/// image being rendered (tiles for an upscale), numbered from 1.
enum JobProgressText {
    static func unit(_ status: Atelier_V1_JobStatus) -> String { status.kind == "upscale" ? "tile" : "image" }

    /// One entry per running task that has reported steps, in index order.
    static func running(_ status: Atelier_V1_JobStatus) -> [(index: UInt32, text: String)] {
        status.tasks.filter { $0.state == .leased }.sorted { $0.index < $1.index }.map { t in
            let steps = t.totalSteps > 0 ? ": step \(min(t.step, t.totalSteps))/\(t.totalSteps)" : ": starting"
            return (t.index, "\(unit(status)) \(t.index + 1)/\(status.totalTasks)\(steps)")
        }
    }

    /// "3/8 images done; image 4/8: step 12/30, image 5/8: step 2/30".
    static func summary(_ status: Atelier_V1_JobStatus) -> String {
        var text = "\(status.doneTasks)/\(status.totalTasks) \(unit(status))s done"
        let active = running(status).map(\.text)
        if !active.isEmpty { text += "; " + active.joined(separator: ", ") }
        return text
    }

    /// Done-fraction in hundredths of a task: done tasks count 100, running ones their step share.
    static func hundredths(_ status: Atelier_V1_JobStatus) -> (done: Int, total: Int) {
        let done = status.tasks.reduce(0) { sum, t in
            sum + (t.state == .done ? 100 : 0)
                + (t.state == .leased && t.totalSteps > 0 ? Int(min(t.step, t.totalSteps)) * 100 / Int(t.totalSteps) : 0)
        }
        return (done, max(Int(status.totalTasks) * 100, 1))
    }
}
