import AtelierFarmCoordinator
import AtelierFarmProtocol
import Foundation
import Prometheus

/// The coordinator's Prometheus metrics (swift-prometheus's registry, emitted in the text
/// exposition format on `/metrics`). Three sources:
///
/// - **The store, on every scrape** (`refresh`): queue depth by state and model, workers by state
///   and numerics, leases held, the farm's steps/s (the sum of the rates rendering workers sent
///   with their heartbeats), jobs by state; and counters derived from durable rows (attempts that
///   expired, failed or were rejected; retries; images completed), so they are right after a
///   restart and the same on an active and a standby coordinator. Jobs finished since the last
///   scrape are added to the job-latency histogram (submit → finish).
/// - **The coordinator's request path** (`observeRequest`, set as its `RequestObserver`): request
///   latency by request kind.
///
/// Every family is created with its help text (promtool lints a family without one), and a
/// labelled series once seen is kept and set to 0 when it empties, so a drained queue reads 0
/// rather than vanishing (autoscalers scale to zero on `atelier_queue_depth == 0`).
public final class FarmMetrics: @unchecked Sendable {
    public let registry: PrometheusCollectorRegistry
    private let lock = NSLock()
    /// One refresh at a time: two scrapes at once would both add the same finished jobs.
    private let scrapeLock = NSLock()

    /// Label values (models, numerics) come from workers: each is cut to `maxLabelLength` and a
    /// family holds at most `maxLabelValues` of them (later ones are counted under `_other`), so
    /// a confused or hostile worker cannot blow up Prometheus's series count.
    static let maxLabelLength = 64
    static let maxLabelValues = 256
    private var knownModels = Set<String>()
    private var knownNumerics = Set<String>()

    /// The queue's state by model: what autoscaling keys on (keep this name and its labels).
    public static let queueDepthName = "atelier_queue_depth"

    private var queueSeries = [String: Gauge]()        // "state\u{0}model"
    private var workerSeries = [String: Gauge]()       // "state\u{0}numerics"
    private var jobSeries = [String: Gauge]()
    private var failureSeries = [String: Counter]()
    private var requestSeries = [String: DurationHistogram]()
    private var latencySeries = [String: ValueHistogram]()
    private var counted = [String: Int]()              // what each derived counter has been raised to
    private var finishedCursor: FinishedJobCursor
    private let leasesHeld: Gauge
    private let stepsPerSecond: Gauge
    private let workersTotal: Gauge
    private let retries: Counter
    private let expiries: Counter
    private let images: Counter
    private let scrapeErrors: Counter

    static let requestBuckets: [Duration] = [.microseconds(250), .milliseconds(1), .milliseconds(2), .milliseconds(5),
                                             .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
                                             .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5)]
    static let jobLatencyBuckets: [Double] = [0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21_600]

    /// - Parameter since: jobs finished before it are not put in the latency histogram (they
    ///   finished under an earlier process; the histogram is this process's view).
    public init(since: Date = Date()) {
        finishedCursor = FinishedJobCursor(finishedUnixMs: Int64((since.timeIntervalSince1970 * 1000).rounded()))
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        leasesHeld = registry.makeGauge(descriptor: Self.named("atelier_leases_held", "Leases workers hold now (tasks being rendered)."))
        stepsPerSecond = registry.makeGauge(descriptor: Self.named("atelier_steps_per_second", "Denoising steps per second of the whole farm: the sum of the rates rendering workers report with their heartbeats."))
        workersTotal = registry.makeGauge(descriptor: Self.named("atelier_workers_known", "Workers the coordinator knows (any state)."))
        retries = registry.makeCounter(descriptor: Self.named("atelier_task_retries_total", "Attempts beyond a task's first: requeued tasks leased again."))
        expiries = registry.makeCounter(descriptor: Self.named("atelier_lease_expiries_total", "Leases that expired (the worker went quiet or was killed); the task was requeued."))
        images = registry.makeCounter(descriptor: Self.named("atelier_images_completed_total", "Images finished: batch images and stitched upscales (rate() of it is images/s)."))
        scrapeErrors = registry.makeCounter(descriptor: Self.named("atelier_metrics_refresh_errors_total", "Scrapes whose read of the coordinator's store failed (the other values are then stale)."))
    }

    // MARK: Request path

    /// Records one answered request (the coordinator's `RequestObserver`).
    public func observeRequest(kind: String, seconds: Double) {
        let histogram: DurationHistogram
        lock.lock()
        if let known = requestSeries[kind] {
            histogram = known
        } else {
            histogram = registry.makeDurationHistogram(descriptor: Self.named("atelier_request_duration_seconds", "Time the coordinator took to answer a request, by request kind."), labels: [("kind", kind)], buckets: Self.requestBuckets)
            requestSeries[kind] = histogram
        }
        lock.unlock()
        let nanos = seconds.isFinite ? max(0, min(seconds, 86_400)) * 1e9 : 0
        histogram.record(Duration.nanoseconds(Int64(nanos)))
    }

    // MARK: Scrape

    /// Reads the store and sets every store-derived metric; then the text to serve. A failed read
    /// counts in `atelier_metrics_refresh_errors_total` and the previous values are served.
    public func scrape(store: any CoordinatorStore, now: Date = Date()) -> [UInt8] {
        scrapeLock.lock()
        defer { scrapeLock.unlock() }
        do {
            try refresh(store: store, now: now)
        } catch {
            scrapeErrors.increment()
        }
        var buffer = [UInt8]()
        registry.emit(into: &buffer)
        return buffer
    }

    func refresh(store: any CoordinatorStore, now: Date) throws {
        lock.lock()
        let cursor = finishedCursor
        lock.unlock()
        let counts = try store.metricsSnapshot(finishedAfter: cursor, limit: 10_000)
        let workers = try FarmReadings.workers(of: store, now: now)

        lock.lock()
        defer { lock.unlock() }
        // Queue depth: every (state, model) seen so far, 0 when it has emptied.
        var depth = [String: (state: String, model: String, count: Int)]()
        for key in queueSeries.keys {
            let parts = key.split(separator: "\u{0}", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            depth[key] = (parts[0], parts.count > 1 ? parts[1] : "", 0)
        }
        for q in counts.queue where q.state == "queued" || q.state == "leased" {
            let model = Self.bounded(q.model, known: &knownModels)
            depth["\(q.state)\u{0}\(model)", default: (q.state, model, 0)].count += q.count
        }
        // A model seen in one state is shown in both, so queries need no `or on() vector(0)`.
        for (_, entry) in depth {
            for state in ["queued", "leased"] where depth["\(state)\u{0}\(entry.model)"] == nil {
                depth["\(state)\u{0}\(entry.model)"] = (state, entry.model, 0)
            }
        }
        for (key, entry) in depth {
            let gauge = queueSeries[key] ?? registry.makeGauge(
                descriptor: Self.named(Self.queueDepthName, "Unfinished tasks by state (queued, leased) and model: the autoscaling signal."),
                labels: [("model", entry.model), ("state", entry.state)])
            queueSeries[key] = gauge
            gauge.set(Double(entry.count))
        }
        leasesHeld.set(Double(counts.queue.filter { $0.state == "leased" }.reduce(0) { $0 + $1.count }))

        // Workers by state and numerics; the farm's step rate.
        var byState = [String: (state: String, numerics: String, count: Int)]()
        for key in workerSeries.keys {
            let parts = key.split(separator: "\u{0}", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            byState[key] = (parts[0], parts.count > 1 ? parts[1] : "", 0)
        }
        var rate = 0.0
        for worker in workers {
            let state = FarmWorkerState(worker)
            let numerics = Self.bounded(worker.capabilities.numerics, known: &knownNumerics)
            byState["\(state.rawValue)\u{0}\(numerics)", default: (state.rawValue, numerics, 0)].count += 1
            if state.isRendering { rate += StepRateBounds.sanitized(worker.stepsPerSecond) }
        }
        for (key, entry) in byState {
            let gauge = workerSeries[key] ?? registry.makeGauge(descriptor: Self.named("atelier_workers", "Workers by state (idle, busy, draining, quarantined, lost) and numerics."), labels: [("numerics", entry.numerics), ("state", entry.state)])
            workerSeries[key] = gauge
            gauge.set(Double(entry.count))
        }
        workersTotal.set(Double(workers.count))
        stepsPerSecond.set(rate)

        // Jobs by state.
        for state in Set(jobSeries.keys).union(counts.jobsByState.keys) {
            let gauge = jobSeries[state] ?? registry.makeGauge(descriptor: Self.named("atelier_jobs", "Jobs in the store by state."), labels: [("state", state)])
            jobSeries[state] = gauge
            gauge.set(Double(counts.jobsByState[state] ?? 0))
        }

        // Counters derived from durable rows: raised by what they grew since the last scrape.
        raise(retries, "retries", to: counts.retries)
        raise(expiries, "expiries", to: counts.attemptOutcomes["expired"] ?? 0)
        raise(images, "images", to: counts.imagesCompleted)
        for failure in ["failed", "rejected", "expired"] {
            let counter = failureSeries[failure] ?? registry.makeCounter(descriptor: Self.named("atelier_task_failures_total", "Failed attempts by class: failed (the worker reported an error), rejected (the coordinator refused the result), expired (the lease ran out)."), labels: [("class", failure)])
            failureSeries[failure] = counter
            raise(counter, "failures/\(failure)", to: counts.attemptOutcomes[failure] ?? 0)
        }

        // Jobs finished since the last scrape, into the latency histogram.
        for job in counts.finished {
            let histogram = latencySeries[job.state] ?? registry.makeValueHistogram(
                descriptor: Self.named("atelier_job_latency_seconds",
                                       "Seconds from a job's submission to its end, by how it ended (succeeded, failed, cancelled)."),
                labels: [("state", job.state)], buckets: Self.jobLatencyBuckets)
            latencySeries[job.state] = histogram
            histogram.record(Double(max(0, job.finishedUnixMs - job.createdUnixMs)) / 1000)
            finishedCursor = FinishedJobCursor(after: job)
        }
    }

    /// A family's name and help text (promtool lints a family without help).
    static func named(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    /// `value` as a label value: cut to `maxLabelLength`, or `_other` once `maxLabelValues` others are known.
    static func bounded(_ value: String, known: inout Set<String>) -> String {
        let cut = String(value.prefix(maxLabelLength))
        if known.contains(cut) { return cut }
        guard known.count < maxLabelValues else { return "_other" }
        known.insert(cut)
        return cut
    }

    /// Raises `counter` to `value` (a count read from the store), never lowering it.
    private func raise(_ counter: Counter, _ key: String, to value: Int) {
        let before = counted[key] ?? 0
        if value > before {
            counter.increment(by: Int64(value - before))
            counted[key] = value
        }
    }
}
