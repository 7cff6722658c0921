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
        leasesHeld = registry.makeGauge(name: "atelier_leases_held", help: "Leases workers hold now (tasks being rendered).")
        stepsPerSecond = registry.makeGauge(
            name: "atelier_steps_per_second",
            help: "Denoising steps per second of the whole farm: the sum of the rates rendering workers report with their heartbeats.")
        workersTotal = registry.makeGauge(name: "atelier_workers_known", help: "Workers the coordinator knows (any state).")
        retries = registry.makeCounter(name: "atelier_task_retries_total",
                                       help: "Attempts beyond a task's first: requeued tasks leased again.")
        expiries = registry.makeCounter(name: "atelier_lease_expiries_total",
                                        help: "Leases that expired (the worker went quiet or was killed); the task was requeued.")
        images = registry.makeCounter(name: "atelier_images_completed_total",
                                      help: "Images finished: batch images and stitched upscales (rate() of it is images/s).")
        scrapeErrors = registry.makeCounter(name: "atelier_metrics_refresh_errors_total",
                                            help: "Scrapes whose read of the coordinator's store failed (the other values are then stale).")
    }

    // MARK: Request path

    /// Records one answered request (the coordinator's `RequestObserver`).
    public func observeRequest(kind: String, seconds: Double) {
        let histogram: DurationHistogram
        lock.lock()
        if let known = requestSeries[kind] {
            histogram = known
        } else {
            histogram = registry.makeDurationHistogram(
                name: "atelier_request_duration_seconds", labels: [("kind", kind)], buckets: Self.requestBuckets,
                help: "Time the coordinator took to answer a request, by request kind.")
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
        for state in ["queued", "leased"] {
            for q in counts.queue where q.state == state { depth["\(state)\u{0}\(q.model)"] = (state, q.model, q.count) }
        }
        // A model seen in one state is shown in both, so queries need no `or on() vector(0)`.
        for (_, entry) in depth {
            for state in ["queued", "leased"] where depth["\(state)\u{0}\(entry.model)"] == nil {
                depth["\(state)\u{0}\(entry.model)"] = (state, entry.model, 0)
            }
        }
        for (key, entry) in depth {
            let gauge = queueSeries[key] ?? registry.makeGauge(
                name: Self.queueDepthName, labels: [("model", entry.model), ("state", entry.state)],
                help: "Unfinished tasks by state (queued, leased) and model: the autoscaling signal.")
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
            let numerics = worker.capabilities.numerics
            byState["\(state.rawValue)\u{0}\(numerics)", default: (state.rawValue, numerics, 0)].count += 1
            if state.isRendering { rate += StepRateBounds.sanitized(worker.stepsPerSecond) }
        }
        for (key, entry) in byState {
            let gauge = workerSeries[key] ?? registry.makeGauge(
                name: "atelier_workers", labels: [("numerics", entry.numerics), ("state", entry.state)],
                help: "Workers by state (idle, busy, draining, quarantined, lost) and numerics.")
            workerSeries[key] = gauge
            gauge.set(Double(entry.count))
        }
        workersTotal.set(Double(workers.count))
        stepsPerSecond.set(rate)

        // Jobs by state.
        for state in Set(jobSeries.keys).union(counts.jobsByState.keys) {
            let gauge = jobSeries[state] ?? registry.makeGauge(
                name: "atelier_jobs", labels: [("state", state)], help: "Jobs in the store by state.")
            jobSeries[state] = gauge
            gauge.set(Double(counts.jobsByState[state] ?? 0))
        }

        // Counters derived from durable rows: raised by what they grew since the last scrape.
        raise(retries, "retries", to: counts.retries)
        raise(expiries, "expiries", to: counts.attemptOutcomes["expired"] ?? 0)
        raise(images, "images", to: counts.imagesCompleted)
        for failure in ["failed", "rejected", "expired"] {
            let counter = failureSeries[failure] ?? registry.makeCounter(
                name: "atelier_task_failures_total", labels: [("class", failure)],
                help: "Failed attempts by class: failed (the worker reported an error), rejected (the coordinator refused the result), expired (the lease ran out).")
            failureSeries[failure] = counter
            raise(counter, "failures/\(failure)", to: counts.attemptOutcomes[failure] ?? 0)
        }

        // Jobs finished since the last scrape, into the latency histogram.
        for job in counts.finished {
            let histogram = latencySeries[job.state] ?? registry.makeValueHistogram(
                name: "atelier_job_latency_seconds", labels: [("state", job.state)], buckets: Self.jobLatencyBuckets,
                help: "Seconds from a job's submission to its end, by how it ended (succeeded, failed, cancelled).")
            latencySeries[job.state] = histogram
            histogram.record(Double(max(0, job.finishedUnixMs - job.createdUnixMs)) / 1000)
            finishedCursor = FinishedJobCursor(after: job)
        }
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
