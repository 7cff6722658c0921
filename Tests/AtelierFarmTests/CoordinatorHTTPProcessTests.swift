import AtelierFarm
import AtelierImaging
import Foundation
import XCTest

/// The coordinator's HTTP side end to end: a real `atelier coordinator --http` and a real no-op
/// worker slowed per step, read by the consumers it is for: `promtool check metrics` (Debian's
/// `prometheus`) for /metrics, headless Chromium (Debian's `chromium`) for the status page. Each
/// checks what it read against the coordinator's state fetched over nng in the same test.
final class CoordinatorHTTPProcessTests: XCTestCase {
    private var cluster: FarmCluster?

    override func tearDown() {
        shutDown(&cluster)
        super.tearDown()
    }

    /// Starts a coordinator with --http and one no-op worker taking `stepDelayMs` per step.
    private func startFarm(stepDelayMs: Int) throws -> (farm: FarmCluster, http: String, client: FarmClient) {
        let farm = try FarmCluster(testName: name)
        cluster = farm
        let port = try FarmProcessSupport.freePort()
        // Lease 1.5 s: heartbeats every 0.5 s, so progress and step rates reach the coordinator often.
        try farm.startCoordinator(leaseSeconds: 1.5, extra: ["--http", "127.0.0.1:\(port)"])
        _ = try farm.spawn("worker", ["worker", "--coordinator", farm.address, "--name", "obs-worker", "--engine", "noop",
                                  "--straggler-step-delay-ms", String(stepDelayMs)])
        try farm.waitForWorkers(["obs-worker"])
        return (farm, "http://127.0.0.1:\(port)", try farm.client())
    }

    private func submit(_ farm: FarmCluster, _ client: FarmClient, prompt: String, count: UInt32, steps: UInt32) throws -> String {
        var submit = Atelier_V1_SubmitJobRequest()
        submit.batch.prompts = [prompt]
        submit.batch.count = count
        submit.batch.params.model = "default"
        submit.batch.params.seed = 1234
        submit.batch.params.steps = steps
        submit.batch.params.width = 256
        submit.batch.params.height = 192
        let response = try farm.call(client, .submitJob(submit))
        if response.hasError { throw FarmTestError("submit_job: \(response.error.message)") }
        return response.submitJob.jobID
    }

    func testMetricsEndpointShowsTheQueueDrainingAndPassesPromtool() throws {
        let promtool = try ExternalTool.require(["promtool"], install: "apt-get install prometheus",
                                                skipVariable: "ATELIER_SKIP_PROMTOOL")
        let (farm, http, client) = try startFarm(stepDelayMs: 60)
        let before = PrometheusSamples(try HTTPFetch.get("\(http)/metrics").text)
        let imagesBefore = before.value("atelier_images_completed_total") ?? 0
        let jobID = try submit(farm, client, prompt: "a lighthouse at dusk", count: 6, steps: 10)

        // Right after the submission most of the job is queued (one worker takes one image at a time).
        let during = try HTTPFetch.get("\(http)/metrics")
        XCTAssertEqual(during.status, 200)
        XCTAssertTrue(during.headers["content-type"]?.hasPrefix("text/plain; version=0.0.4") == true, "\(during.headers)")
        let first = PrometheusSamples(during.text)
        let queuedAtFirst = first.value("atelier_queue_depth", ["model": "default", "state": "queued"]) ?? 0
        let leasedAtFirst = first.value("atelier_queue_depth", ["model": "default", "state": "leased"]) ?? 0
        XCTAssertGreaterThan(queuedAtFirst + leasedAtFirst, 0, "the job's images are in the queue\n\(during.text)")
        XCTAssertNotNil(first.value("atelier_request_duration_seconds_count", ["kind": "submit_job"]),
                        "request latency by kind")

        // Scrape until the model's queue is empty and every image is counted.
        var last = first, lastText = during.text
        _ = try FarmProcessSupport.poll("the queue of model default to drain in /metrics", timeout: 60, interval: 0.25) { () -> Bool? in
            let text = try HTTPFetch.get("\(http)/metrics").text
            let samples = PrometheusSamples(text)
            last = samples
            lastText = text
            let queued = samples.value("atelier_queue_depth", ["model": "default", "state": "queued"])
            let leased = samples.value("atelier_queue_depth", ["model": "default", "state": "leased"])
            let images = samples.value("atelier_images_completed_total") ?? 0
            return queued == 0 && leased == 0 && images >= imagesBefore + 6 ? true : nil
        }
        XCTAssertEqual(try farm.jobStatus(client, jobID).state, .succeeded, "the coordinator agrees the job is done")
        XCTAssertEqual(last.value("atelier_jobs", ["state": "succeeded"]), 1)
        XCTAssertEqual(last.value("atelier_workers", ["state": "idle", "numerics": "noop"]), 1, lastText)
        XCTAssertEqual(last.value("atelier_job_latency_seconds_count", ["state": "succeeded"]), 1, "the job's latency was recorded")
        XCTAssertEqual(last.value("atelier_lease_expiries_total"), 0)

        // The worker sent its step rate with its heartbeats; list_workers shows it.
        let workers = try farm.call(client, .listWorkers(.init())).listWorkers.workers
        let rate = try XCTUnwrap(workers.first { $0.name == "obs-worker" }?.stepsPerSecond)
        XCTAssertTrue(rate > 0 && rate.isFinite, "steps/s from the heartbeats: \(rate)")
        let listing = try farm.run("workers", ["workers", "--coordinator", farm.address], timeout: 30)
        XCTAssertTrue(listing.stdout.contains("steps/s"), listing.stdout)

        // The format, checked by Prometheus's own linter, on the scrape taken mid-job and the last one.
        for (label, text) in [("mid-job", during.text), ("drained", lastText)] {
            let check = try promtool.run(["check", "metrics"], input: Data(text.utf8))
            XCTAssertEqual(check.status, 0, "promtool check metrics (\(label)):\n\(check.stderr)\n\(String(decoding: check.stdout, as: UTF8.self))\n\(text)")
        }
    }

    func testStatusPageInHeadlessChromiumShowsTheRunningJobAsTheCoordinatorSeesIt() throws {
        let chromium = try ExternalTool.require(["chromium", "chromium-browser", "google-chrome"], install: "apt-get install chromium",
                                                skipVariable: "ATELIER_SKIP_CHROMIUM")
        let (farm, http, client) = try startFarm(stepDelayMs: 120)
        let hostile = #"<b id="injected">bold</b> & "quoted" <script>document.title='pwned'</script>"#
        let count: UInt32 = 8
        let jobID = try submit(farm, client, prompt: hostile, count: count, steps: 10)
        let shots = FileManager.default.temporaryDirectory.appendingPathComponent("atelier-status-page-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: shots, withIntermediateDirectories: true)
        let screenshot = shots.appendingPathComponent("status-page-running.png")

        // Once one image is finished and the job still runs: the state before, the page (screenshot
        // and DOM of one load), the state after.
        _ = try FarmProcessSupport.poll("the first image to finish", timeout: 60, interval: 0.1) { () -> Bool? in
            try farm.jobStatus(client, jobID).resultCount >= 1 ? true : nil
        }
        let before = try farm.jobStatus(client, jobID)
        let page = try chromium.run(chromiumArguments + ["--window-size=1280,1500", "--screenshot=\(screenshot.path)",
                                                          "--dump-dom", "\(http)/"], timeout: 90)
        let after = try farm.jobStatus(client, jobID)
        XCTAssertEqual(page.status, 0, page.stderr)
        print("status page screenshot (taken while job \(jobID) ran): \(screenshot.path)")
        let shot = try PNGCodec.read(contentsOf: screenshot)
        XCTAssertEqual(shot.width, 1280, "a real screenshot was written")

        let dom = StatusPageDOM(String(decoding: page.stdout, as: UTF8.self))
        let job = try XCTUnwrap(dom.job(jobID), "the page lists the job\n\(dom.html.prefix(3000))")
        XCTAssertEqual(job.attributes["data-total"], "\(count)")
        XCTAssertEqual(job.attributes["data-state"], "running", "taken during the run (the job finished too fast?)")
        let tasks = dom.tasks(of: jobID)
        XCTAssertEqual(tasks.count, Int(count), "one row per image")
        var thumbnails = [Int]()
        for row in tasks {
            let index = try XCTUnwrap(Int(row.attributes["data-index"] ?? ""))
            let a = try XCTUnwrap(before.tasks.first { $0.index == index }), b = try XCTUnwrap(after.tasks.first { $0.index == index })
            let shown = (StatusPageDOM.rank(row.attributes["data-state"] ?? ""), Int(row.attributes["data-step"] ?? "") ?? -1)
            // What the page shows lies between the coordinator's state just before and just after.
            XCTAssertTrue(Self.progress(a) <= shown && shown <= Self.progress(b),
                          "image \(index): page \(shown), coordinator \(Self.progress(a)) → \(Self.progress(b))")
            if row.attributes["data-state"] == "done" {
                XCTAssertTrue(row.html.contains("src=\"/jobs/\(jobID)/thumb/\(index).png\""), "a finished image has its thumbnail")
                thumbnails.append(index)
            } else {
                XCTAssertFalse(row.html.contains("<img"), "no thumbnail before the image is done")
            }
        }
        XCTAssertFalse(thumbnails.isEmpty, "the page shows at least one finished thumbnail")
        XCTAssertTrue(tasks.contains { $0.attributes["data-state"] != "done" }, "and images still in progress")

        // The worker, as list_workers has it.
        let workers = try farm.call(client, .listWorkers(.init())).listWorkers.workers
        let worker = try XCTUnwrap(workers.first { $0.name == "obs-worker" })
        XCTAssertEqual(dom.workers().map { $0.attributes["data-name"] }, ["obs-worker"])
        XCTAssertEqual(dom.workers().first?.attributes["data-worker-id"], worker.workerID)

        // The prompt is shown as text: no element or script of it reached the page.
        XCTAssertTrue(dom.html.contains("&lt;b id=\"injected\"&gt;bold&lt;/b&gt; &amp; \"quoted\""), "the prompt is shown, escaped")
        XCTAssertFalse(dom.html.contains("<b id=\"injected\">"), "the prompt's markup is not markup")
        XCTAssertTrue(dom.html.contains("<title>Atelier farm</title>"), "the prompt's script did not run")

        // A thumbnail is a real PNG of the finished image, downscaled.
        let index = try XCTUnwrap(thumbnails.first)
        let thumb = try HTTPFetch.get("\(http)/jobs/\(jobID)/thumb/\(index).png")
        XCTAssertEqual(thumb.status, 200)
        XCTAssertEqual(thumb.headers["content-type"], "image/png")
        let small = try PNGCodec.decode([UInt8](thumb.body)).rgb()
        XCTAssertEqual([small.width, small.height], [128, 96], "256×192 scaled to fit 128")
        let full = try farm.call(client, .fetchResult(.with { $0.jobID = jobID; $0.index = UInt32(index) }))
        let original = try PNGCodec.decode([UInt8](full.fetchResult.png)).rgb()
        for channel in 0..<3 {  // the no-op image is one colour; so is its thumbnail
            XCTAssertLessThanOrEqual(abs(Int(small.pixels[channel]) - Int(original.pixels[channel])), 1)
        }
        XCTAssertEqual(try HTTPFetch.get("\(http)/jobs/\(jobID)/thumb/\(count - 1 + 100).png").status, 404, "no such image")

        // Once the job is done, the page and the coordinator agree exactly.
        _ = try FarmProcessSupport.poll("the job to finish", timeout: 90, interval: 0.2) { () -> Bool? in
            try farm.jobStatus(client, jobID).state == .succeeded ? true : nil
        }
        let final = try farm.jobStatus(client, jobID)
        let finalPage = try chromium.run(chromiumArguments + ["--dump-dom", "\(http)/"], timeout: 90)
        let finalDOM = StatusPageDOM(String(decoding: finalPage.stdout, as: UTF8.self))
        XCTAssertEqual(finalDOM.job(jobID)?.attributes["data-state"], "succeeded")
        XCTAssertEqual(finalDOM.job(jobID)?.attributes["data-done"], "\(final.doneTasks)")
        for task in final.tasks {
            let row = try XCTUnwrap(finalDOM.tasks(of: jobID).first { $0.attributes["data-index"] == "\(task.index)" })
            XCTAssertEqual(row.attributes["data-state"], "done")
            XCTAssertEqual(row.attributes["data-step"], "\(task.step)")
            XCTAssertEqual(row.attributes["data-total-steps"], "\(task.totalSteps)")
            XCTAssertTrue(row.html.contains("/jobs/\(jobID)/thumb/\(task.index).png"))
        }
    }

    /// Headless Chromium as root in a container: no sandbox, no GPU.
    private var chromiumArguments: [String] {
        ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars"]
    }

    /// A task's progress as an ordered pair: (state rank, step).
    private static func progress(_ task: Atelier_V1_TaskStatus) -> (Int, Int) {
        let state: String
        switch task.state {
        case .queued: state = "queued"
        case .leased: state = "leased"
        case .done: state = "done"
        default: state = "other"
        }
        return (StatusPageDOM.rank(state), task.state == .queued ? 0 : Int(task.step))
    }
}

/// The parts of the status page's DOM (as Chromium serialized it) a test checks: elements with
/// their `data-` attributes.
struct StatusPageDOM {
    struct Element {
        var attributes: [String: String]
        var html: String
    }

    let html: String

    init(_ html: String) { self.html = html }

    static func rank(_ state: String) -> Int {
        ["queued": 0, "leased": 1, "done": 2][state] ?? -1
    }

    func job(_ id: String) -> Element? {
        elements(tag: "section", class: "job").first { $0.attributes["data-job-id"] == id }
    }

    func tasks(of jobID: String) -> [Element] {
        guard let start = html.range(of: "data-job-id=\"\(jobID)\"") else { return [] }
        let section = html[start.upperBound...]
        let end = section.range(of: "</section>")?.lowerBound ?? section.endIndex
        return StatusPageDOM(String(section[..<end])).elements(tag: "tr", class: "task")
    }

    func workers() -> [Element] { elements(tag: "tr", class: "worker") }

    /// Every `<TAG class="CLASS" …>…</TAG>` (not nested in itself), with its attributes.
    func elements(tag: String, class name: String) -> [Element] {
        var found = [Element]()
        var rest = html[...]
        while let open = rest.range(of: "<\(tag) class=\"\(name)\"") {
            guard let tagEnd = rest[open.upperBound...].firstIndex(of: ">") else { break }
            let head = String(rest[open.upperBound..<tagEnd])
            let close = rest[tagEnd...].range(of: "</\(tag)>")?.upperBound ?? rest.endIndex
            found.append(Element(attributes: Self.attributes(head), html: String(rest[open.lowerBound..<close])))
            rest = rest[close...]
        }
        return found
    }

    static func attributes(_ head: String) -> [String: String] {
        var result = [String: String]()
        guard let pattern = try? NSRegularExpression(pattern: #"([a-z-]+)="([^"]*)""#) else { return result }
        for match in pattern.matches(in: head, range: NSRange(head.startIndex..., in: head)) {
            if let key = Range(match.range(at: 1), in: head), let value = Range(match.range(at: 2), in: head) {
                result[String(head[key])] = String(head[value])
            }
        }
        return result
    }
}
