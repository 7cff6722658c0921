import AtelierFarmCoordinator
import AtelierFarmProtocol
import Foundation

/// The coordinator's status page: server-rendered HTML with no script, reloaded by the browser
/// every few seconds (`<meta http-equiv="refresh">`). It shows the queue by model, the workers
/// (models, numerics, step rate, current task), and the newest jobs with every image's progress
/// (task state, step / total steps) and thumbnails of the finished ones.
///
/// Every value that came from a user or a worker is escaped (`HTMLText`). Rows carry `data-`
/// attributes with the raw numbers, so a test reading the DOM checks exactly what is shown.
struct StatusPage {
    /// Newest jobs shown.
    static let jobLimit = 20
    /// Images listed per job (an upscale may have hundreds of tiles).
    static let taskLimit = 200
    /// Seconds between the browser's reloads.
    static let refreshSeconds = 2

    var generated: Date
    var queue: [StoreMetrics.QueueDepth]
    var workers: [Atelier_V1_WorkerStatus]
    var jobs: [Atelier_V1_JobStatus]
    var requests: [String: Atelier_V1_SubmitJobRequest]

    /// Reads everything the page shows from `store` (read-only snapshots).
    static func read(from store: any CoordinatorStore, now: Date = Date()) throws -> StatusPage {
        let counts = try store.metricsSnapshot(finishedAfter: FinishedJobCursor(finishedUnixMs: .max), limit: 0)
        let workers = try FarmReadings.workers(of: store, now: now)
        var jobs = [Atelier_V1_JobStatus]()
        for listed in try store.listJobs(limit: jobLimit) {
            // A job may vanish between the listing and its status (it cannot today; tolerate it).
            if let full = try? store.jobStatus(jobID: listed.jobID, includeTasks: true) { jobs.append(full) }
        }
        let requests = try store.jobRequests(jobIDs: jobs.map(\.jobID))
        return StatusPage(generated: now, queue: counts.queue, workers: workers, jobs: jobs, requests: requests)
    }

    /// The thumbnail URL of image `index` of `jobID`.
    static func thumbnailPath(jobID: String, index: Int) -> String {
        "/jobs/\(percentEncoded(jobID))/thumb/\(index).png"
    }

    static func percentEncoded(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? ""
    }

    func html() -> String {
        let e = HTMLText.escape
        var h = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <meta http-equiv="refresh" content="\(Self.refreshSeconds)">
            <title>Atelier farm</title>
            <style>
            body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
            h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.5em; }
            table { border-collapse: collapse; margin: .5em 0; } td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }
            th { background: #f3f3f3; } .num { text-align: right; font-variant-numeric: tabular-nums; }
            .bar { display: inline-block; width: 120px; height: 10px; background: #eee; border: 1px solid #bbb; vertical-align: middle; }
            .bar span { display: block; height: 100%; background: #3a7; }
            .state-done { color: #1a6; } .state-leased { color: #06c; } .state-failed, .state-cancelled { color: #b22; }
            .thumbs img { margin: 2px; border: 1px solid #999; vertical-align: top; } .prompt { font-style: italic; }
            .muted { color: #777; }
            </style></head><body>
            <h1>Atelier farm</h1>
            <p class="muted">Generated \(e(ISO8601DateFormatter().string(from: generated))); this page reloads every \(Self.refreshSeconds) s.</p>

            """
        // Queue.
        h += "<h2>Queue</h2>\n"
        if queue.isEmpty {
            h += "<p id=\"queue-empty\">No unfinished tasks.</p>\n"
        } else {
            h += "<table id=\"queue\"><tr><th>Model</th><th>State</th><th>Tasks</th></tr>\n"
            for q in queue {
                h += "<tr class=\"queue\" data-model=\"\(e(q.model))\" data-state=\"\(e(q.state))\" data-count=\"\(q.count)\">"
                    + "<td>\(e(q.model))</td><td>\(e(q.state))</td><td class=\"num\">\(q.count)</td></tr>\n"
            }
            h += "</table>\n"
        }
        // Workers.
        let rendering = workers.filter { FarmWorkerState($0).isRendering }
        let farmRate = rendering.reduce(0.0) { $0 + StepRateBounds.sanitized($1.stepsPerSecond) }
        h += "<h2>Workers</h2>\n<p>\(workers.count) known, \(rendering.count) rendering, "
            + "<span id=\"farm-rate\">\(String(format: "%.2f", farmRate))</span> steps/s in all.</p>\n"
        if !workers.isEmpty {
            h += "<table id=\"workers\"><tr><th>Name</th><th>State</th><th>Models</th><th>Numerics</th>"
                + "<th>Steps/s</th><th>Current task</th><th>Done</th><th>Failed</th><th>Expiries</th></tr>\n"
            for w in workers {
                let state = FarmWorkerState(w)
                let models = w.capabilities.models.map(\.name).joined(separator: ", ")
                h += "<tr class=\"worker\" data-worker-id=\"\(e(w.workerID))\" data-name=\"\(e(w.name))\" data-state=\"\(state.rawValue)\" "
                    + "data-steps-per-second=\"\(String(format: "%.3f", w.stepsPerSecond))\">"
                    + "<td>\(e(w.name))<br><span class=\"muted\">\(e(w.workerID))</span></td><td>\(state.rawValue)</td>"
                    + "<td>\(e(models))</td><td>\(e(w.capabilities.numerics))</td>"
                    + "<td class=\"num\">\(String(format: "%.2f", w.stepsPerSecond))</td><td>\(e(w.currentTaskID))</td>"
                    + "<td class=\"num\">\(w.completed)</td><td class=\"num\">\(w.failed)</td><td class=\"num\">\(w.leaseExpiries)</td></tr>\n"
            }
            h += "</table>\n"
        }
        // Jobs.
        h += "<h2>Jobs</h2>\n"
        if jobs.isEmpty { h += "<p id=\"jobs-empty\">No jobs yet.</p>\n" }
        for job in jobs {
            h += jobSection(job)
        }
        h += "</body></html>\n"
        return h
    }

    private func jobSection(_ job: Atelier_V1_JobStatus) -> String {
        let e = HTMLText.escape
        let names = Dictionary(workers.map { ($0.workerID, $0.name) }, uniquingKeysWith: { first, _ in first })
        let state = StatusPage.stateName(job.state)
        var h = "<section class=\"job\" data-job-id=\"\(e(job.jobID))\" data-state=\"\(state)\" data-done=\"\(job.doneTasks)\" "
            + "data-total=\"\(job.totalTasks)\" data-results=\"\(job.resultCount)\">\n"
        h += "<h3>Job <code>\(e(job.jobID))</code> — <span class=\"state-\(state)\">\(state)</span>, \(e(job.kind)) on "
            + "<code>\(e(job.model))</code>, \(job.doneTasks)/\(job.totalTasks) \(job.kind == "upscale" ? "tiles" : "images") done</h3>\n"
        if let request = requests[job.jobID] {
            let prompts: [String]
            switch request.job {
            case .batch(let b)?: prompts = b.prompts
            case .upscale(let u)?: prompts = [u.params.prompt]
            case nil: prompts = []
            }
            for prompt in prompts.prefix(8) where !prompt.isEmpty {
                h += "<p class=\"prompt\">“\(e(prompt))”</p>\n"
            }
        }
        for error in job.errors.suffix(3) { h += "<p class=\"state-failed\">\(e(error))</p>\n" }
        if job.kind == "upscale", job.state == .succeeded {
            let src = StatusPage.thumbnailPath(jobID: job.jobID, index: 0)
            h += "<p class=\"thumbs\"><a href=\"\(src)\"><img class=\"thumb\" data-index=\"0\" src=\"\(src)\" alt=\"upscaled image\"></a></p>\n"
        }
        h += "<table class=\"tasks\"><tr><th>\(job.kind == "upscale" ? "Tile" : "Image")</th><th>State</th><th>Progress</th>"
            + "<th>Worker</th><th>Attempts</th><th>Thumbnail</th></tr>\n"
        for task in job.tasks.prefix(StatusPage.taskLimit) {
            let taskState = StatusPage.stateName(task.state)
            let fraction = task.state == .done ? 1.0 : (task.totalSteps > 0 ? Double(task.step) / Double(task.totalSteps) : 0)
            var thumb = ""
            if job.kind != "upscale", task.state == .done {
                let src = StatusPage.thumbnailPath(jobID: job.jobID, index: Int(task.index))
                thumb = "<a href=\"\(src)\"><img class=\"thumb\" data-index=\"\(task.index)\" src=\"\(src)\" alt=\"image \(task.index)\"></a>"
            }
            h += "<tr class=\"task\" data-task-id=\"\(e(task.taskID))\" data-index=\"\(task.index)\" data-state=\"\(taskState)\" "
                + "data-step=\"\(task.step)\" data-total-steps=\"\(task.totalSteps)\">"
                + "<td class=\"num\">\(task.index)</td><td class=\"state-\(taskState)\">\(taskState)</td>"
                + "<td><span class=\"bar\"><span style=\"width: \(Int((fraction * 100).rounded()))%\"></span></span> "
                + "step \(task.step)/\(task.totalSteps)</td><td title=\"\(e(task.workerID))\">\(e(names[task.workerID] ?? task.workerID))</td><td class=\"num\">\(task.attempts)</td>"
                + "<td class=\"thumbs\">\(thumb)</td></tr>\n"
        }
        if job.tasks.count > StatusPage.taskLimit {
            h += "<tr><td colspan=\"6\" class=\"muted\">… \(job.tasks.count - StatusPage.taskLimit) more</td></tr>\n"
        }
        h += "</table>\n</section>\n"
        return h
    }

    static func stateName(_ state: Atelier_V1_TaskState) -> String {
        switch state {
        case .queued: return "queued"
        case .leased: return "leased"
        case .done: return "done"
        case .failed: return "failed"
        case .cancelled: return "cancelled"
        default: return "unknown"
        }
    }

    static func stateName(_ state: Atelier_V1_JobState) -> String {
        switch state {
        case .queued: return "queued"
        case .running: return "running"
        case .succeeded: return "succeeded"
        case .failed: return "failed"
        case .cancelled: return "cancelled"
        default: return "unknown"
        }
    }
}
