import AtelierFarmProtocol
import AtelierFarmTransport
import Foundation
import Logging

/// A worker daemon: registers with the coordinator, then pulls tasks (lease), renders them with
/// its `RenderEngine` while heartbeating progress, and reports the result — for as long as it
/// runs, across coordinator restarts (nng redials by itself; the worker re-registers when the
/// coordinator no longer knows it).
///
/// Every logical request carries its own request id and is retried with that same id until the
/// coordinator answers, so a completion sent twice (a resend, a retry after a lost reply) is
/// applied once.
public final class FarmWorker: @unchecked Sendable {
    public struct Options: Sendable {
        public var name: String
        public var threads: Int
        public var memoryBytes: UInt64
        public var version: String
        /// The numerics it renders with (`WorkerCapabilities.numerics`, e.g. "fp32/atelier-gemm4"):
        /// jobs are pinned to one, so every image of a job rounds the same way.
        public var numerics: String
        /// Timeout of one request; requests are retried after it.
        public var requestTimeout: Duration
        public init(name: String = ProcessInfo.processInfo.hostName, threads: Int = ProcessInfo.processInfo.activeProcessorCount,
                    memoryBytes: UInt64 = ProcessInfo.processInfo.physicalMemory, version: String = "dev",
                    numerics: String = "", requestTimeout: Duration = .seconds(20)) {
            self.name = name; self.threads = threads; self.memoryBytes = memoryBytes
            self.version = version; self.numerics = numerics; self.requestTimeout = requestTimeout
        }
    }

    public let client: FarmClient
    public let engine: RenderEngine
    public let options: Options
    /// Every line carries worker_id (once registered), and task_id/job_id when about a lease.
    private let logger: Logger
    private let stopLock = NSLock()
    private var stopped = false
    /// The registration, read by the heartbeat thread while the main loop may re-register:
    /// behind a lock.
    private let sessionLock = NSLock()
    private var sessionWorkerID = ""
    private var sessionHeartbeatInterval: TimeInterval = 10
    var workerID: String {
        get { sessionLock.lock(); defer { sessionLock.unlock() }; return sessionWorkerID }
        set { sessionLock.lock(); sessionWorkerID = newValue; sessionLock.unlock() }
    }
    var heartbeatInterval: TimeInterval {
        get { sessionLock.lock(); defer { sessionLock.unlock() }; return sessionHeartbeatInterval }
        set { sessionLock.lock(); sessionHeartbeatInterval = newValue; sessionLock.unlock() }
    }

    /// A worker logging through `logger` (the CLI's: text or JSON lines with ids as metadata).
    public init(client: FarmClient, engine: RenderEngine, options: Options = .init(), logger: Logger) {
        self.client = client; self.engine = engine; self.options = options; self.logger = logger
    }

    /// A worker handing each log message, without metadata, to `log` (embedders, tests).
    public convenience init(client: FarmClient, engine: RenderEngine, options: Options = .init(),
                            log: @escaping (String) -> Void = { _ in }) {
        self.init(client: client, engine: engine, options: options,
                  logger: Logger(label: "atelier.worker") { _ in MessageClosureLogHandler(log) })
    }

    /// Logs `message` with this worker's id and, when given, the lease's task and job ids.
    func log(_ message: String, _ lease: Atelier_V1_Lease? = nil, level: Logger.Level = .info) {
        var metadata: Logger.Metadata = ["worker_name": .string(options.name)]
        let id = workerID
        if !id.isEmpty { metadata["worker_id"] = .string(id) }
        if let lease {
            metadata["task_id"] = .string(lease.taskID)
            metadata["job_id"] = .string(lease.jobID)
        }
        logger.log(level: level, "\(message)", metadata: metadata)
    }

    public var isStopped: Bool { stopLock.lock(); defer { stopLock.unlock() }; return stopped }

    /// Why `run` returned on its own (nil after `stop()`).
    public enum ExitReason: Sendable, Equatable {
        /// An admin drained this worker (drain_worker): its last task is done; exit 0.
        case drained
        /// The coordinator refuses this worker's token (UNAUTHENTICATED / PERMISSION_DENIED):
        /// retrying cannot help, so the worker ends with the message (exit non-zero).
        case refused(String)
    }

    private var reason: ExitReason?
    public var exitReason: ExitReason? { stopLock.lock(); defer { stopLock.unlock() }; return reason }
    /// Set by a heartbeat answering `drain`: finish the current task, then exit.
    private var drainRequested = false
    var isDraining: Bool { stopLock.lock(); defer { stopLock.unlock() }; return drainRequested }
    func requestDrain() { stopLock.lock(); drainRequested = true; stopLock.unlock() }

    /// Ends the loop for `reason` (see `ExitReason`).
    func finish(_ why: ExitReason) {
        stopLock.lock(); reason = why; stopped = true; stopLock.unlock()
    }

    /// Errors after which this worker stops: its token is not accepted for what it does.
    static func isAccessRefusal(_ code: Atelier_V1_ErrorCode) -> Bool {
        code == .unauthenticated || code == .permissionDenied
    }

    /// Asks the loop to end after the current request. A render in progress stops at its next
    /// step and its lease is handed back with release_task, so the task is queued again at once
    /// and no attempt is charged (SIGTERM/SIGINT call this).
    public func stop() { stopLock.lock(); stopped = true; stopLock.unlock() }

    /// Runs until `stop()`.
    public func run() {
        while !isStopped {
            if workerID.isEmpty { register(); continue }
            if isDraining {
                log("drained: the last task is done; exiting")
                finish(.drained)
                break
            }
            guard let response = callUntilAnswered(.leaseTask(.with { $0.workerID = workerID })) else { continue }
            if response.hasError {
                if response.error.code == .permissionDenied && response.error.message.hasPrefix("draining") {
                    log("drained by an admin: exiting")
                    finish(.drained)
                } else if response.error.code == .permissionDenied {
                    // The worker id is bound to another token (registered before tokens were
                    // turned on, say): register again, which binds a row to this token; a token
                    // that may not register at all ends the worker there.
                    log("lease refused: \(response.error.message); registering again")
                    workerID = ""
                    sleep(seconds: 1)
                } else if FarmWorker.isAccessRefusal(response.error.code) {
                    log("lease refused: \(response.error.message)")
                    finish(.refused(response.error.message))
                } else if response.error.code == .unknownWorker { workerID = "" } else {
                    log("lease refused: \(response.error.message)")
                    sleep(seconds: 1)
                }
                continue
            }
            let lease = response.leaseTask
            guard lease.hasLease else {
                sleep(seconds: Double(max(lease.retryAfterMs, 100)) / 1000)
                continue
            }
            work(on: lease.lease)
        }
    }

    func register() {
        var req = Atelier_V1_RegisterWorkerRequest()
        req.workerName = options.name
        req.capabilities.models = engine.models
        req.capabilities.threads = UInt32(options.threads)
        req.capabilities.memoryBytes = options.memoryBytes
        req.capabilities.version = options.version
        req.capabilities.hostname = ProcessInfo.processInfo.hostName
        req.capabilities.numerics = options.numerics
        req.capabilities.slots = 1  // one render at a time: the coordinator never grants it more
        guard let response = callUntilAnswered(.registerWorker(req)) else { return }
        if response.hasError {
            log("registration refused: \(response.error.message)")
            if FarmWorker.isAccessRefusal(response.error.code) {
                finish(.refused(response.error.message))
            } else {
                sleep(seconds: 2)
            }
            return
        }
        workerID = response.registerWorker.workerID
        heartbeatInterval = max(0.2, Double(response.registerWorker.heartbeatIntervalMs) / 1000)
        log("registered as \(workerID) with \(engine.models.map(\.name).joined(separator: ", "))")
    }

    /// Renders one leased task with a heartbeat thread beside it.
    func work(on lease: Atelier_V1_Lease) {
        log("task \(lease.taskID) (attempt \(lease.attempt))", lease)
        // The same rules as every other door, before the engine sees the task: one that slipped
        // past an older coordinator fails with the rule's message (the same on every worker, so
        // the coordinator fails the job as deterministic) instead of reaching the engine.
        do { try FarmRequestValidation.validate(lease.task) } catch {
            reportFailure(lease, error)
            return
        }
        let state = LeaseState()
        let heartbeat = Thread { [self] in
            // The first heartbeat goes out at once: it tells the coordinator this lease is being
            // worked on (leases never heartbeated count towards a worker's quarantine).
            var first = true
            while !state.finished {
                if !first { Thread.sleep(forTimeInterval: heartbeatInterval) }
                first = false
                if state.finished { break }
                let (step, total) = state.progress
                var hb = Atelier_V1_HeartbeatRequest()
                hb.workerID = workerID
                hb.taskID = lease.taskID
                hb.fencingToken = lease.fencingToken
                hb.step = UInt32(step)
                hb.totalSteps = UInt32(total)
                hb.stepsPerSecond = state.stepsPerSecond
                guard let r = try? call(.heartbeat(hb)) else { continue }  // unreachable: try again next time
                if r.heartbeat.drain && !isDraining {
                    log("drain requested: finishing \(lease.taskID), then exiting")
                    requestDrain()
                }
                if r.heartbeat.cancel || (r.hasError && FarmWorker.leaseIsGone(r.error.code)) {
                    log("task \(lease.taskID): \(r.hasError ? r.error.message : "cancelled") — dropping it", lease, level: .warning)
                    state.cancel()
                } else if r.hasError {
                    // INTERNAL (a full disk on the coordinator, say) and the like pass: the render
                    // goes on, and the next heartbeat or the completion will tell.
                    log("heartbeat for \(lease.taskID) refused (\(r.error.code): \(r.error.message)); carrying on", lease, level: .warning)
                }
            }
        }
        heartbeat.start()
        let started = Date()
        let outcome: Result<Data, Error> = Result {
            try engine.render(lease.task) { done, total in
                state.setProgress(done, total)
                return !state.cancelled && !self.isStopped
            }
        }
        // The heartbeat thread keeps the lease alive until the result is delivered.
        defer { state.finish() }
        if state.cancelled { return }
        if isStopped, case .failure = outcome {
            // Stopping mid-render: hand the lease back rather than letting it expire.
            release(lease, reason: "worker \(options.name) is stopping")
            return
        }
        switch outcome {
        case .success(let png):
            var done = Atelier_V1_CompleteTaskRequest()
            done.workerID = workerID
            done.taskID = lease.taskID
            done.fencingToken = lease.fencingToken
            done.resultPng = png
            done.renderSeconds = Date().timeIntervalSince(started)
            deliver(done, lease: lease, state: state)
        case .failure(let error):
            if error is RenderCancelled { return }
            reportFailure(lease, error)
        }
    }

    /// fail_task: the attempt is charged (the coordinator labels the message with this worker).
    func reportFailure(_ lease: Atelier_V1_Lease, _ error: Error) {
        var fail = Atelier_V1_FailTaskRequest()
        fail.workerID = workerID
        fail.taskID = lease.taskID
        fail.fencingToken = lease.fencingToken
        fail.message = "\(error)"
        log("task \(lease.taskID) failed: \(error)", lease, level: .error)
        _ = callUntilAnswered(.failTask(fail))
    }

    /// Heartbeat errors that mean the lease is gone: drop the work. Anything else (INTERNAL,
    /// UNKNOWN_WORKER after a coordinator reset…) does not cancel a render.
    static func leaseIsGone(_ code: Atelier_V1_ErrorCode) -> Bool {
        code == .staleLease || code == .notFound
    }

    /// Sends complete_task with ONE request id until the coordinator accepts it, refuses it for
    /// good, or the lease is lost (Protocols/README.md §8: INTERNAL means retry later with the
    /// same request id). A finished render is never thrown away for a passing failure such as a
    /// full disk on the coordinator: a few quick retries with back-off, then one every 30 s for
    /// as long as the heartbeats keep the lease.
    func deliver(_ done: Atelier_V1_CompleteTaskRequest, lease: Atelier_V1_Lease, state: LeaseState) {
        let id = UUID().uuidString
        var delay = 0.5
        var failures = 0
        var warnedUnreachable = false
        while !state.cancelled {
            let response: Atelier_V1_Response
            do {
                response = try call(.completeTask(done), requestID: id)
            } catch {
                if isStopped { release(lease, reason: "worker \(options.name) is stopping"); return }
                if !warnedUnreachable { log("coordinator unreachable (\(error)); retrying", lease, level: .warning); warnedUnreachable = true }
                sleep(seconds: delay)
                delay = min(delay * 2, 5)
                continue
            }
            guard response.hasError else { return }
            switch response.error.code {
            case .internal, .unspecified:
                failures += 1
                if isStopped && failures > 3 {
                    release(lease, reason: "worker \(options.name) is stopping")
                    return
                }
                let wait = failures <= 5 ? delay : 30
                log(String(format: "complete_task for %@ got %@ (%@); retrying with the same request id in %.1f s",
                           lease.taskID, "\(response.error.code)", response.error.message, wait), lease, level: .warning)
                sleep(seconds: wait)
                delay = min(delay * 2, 8)
            default:
                // STALE_LEASE / NOT_FOUND: the task is someone else's or gone; INVALID_ARGUMENT /
                // TOO_LARGE: the coordinator rejected the result (a failed attempt it records).
                log("result for \(lease.taskID) refused: \(response.error.message)", lease, level: .error)
                return
            }
        }
    }

    /// release_task for a lease this worker will not finish: a few quick tries (the worker is
    /// on its way out), then the lease is left to expire as before.
    func release(_ lease: Atelier_V1_Lease, reason: String) {
        var r = Atelier_V1_ReleaseTaskRequest()
        r.workerID = workerID
        r.taskID = lease.taskID
        r.fencingToken = lease.fencingToken
        r.reason = reason
        let id = UUID().uuidString
        for attempt in 0..<3 {
            do {
                let response = try client.call(Self.request(.releaseTask(r), id: id), timeout: .seconds(2))
                if response.hasError {
                    log("release of \(lease.taskID) refused: \(response.error.message)", lease, level: .warning)
                } else {
                    log("released \(lease.taskID) (\(reason))", lease)
                }
                return
            } catch {
                if attempt == 2 { log("could not release \(lease.taskID) (\(error)); its lease will expire", lease, level: .warning) }
            }
        }
    }

    static func request(_ body: Atelier_V1_Request.OneOf_Body, id: String) -> Atelier_V1_Request {
        var req = Atelier_V1_Request()
        req.protocolVersion = FarmClient.protocolVersion
        req.requestID = id
        req.body = body
        return req
    }

    func call(_ body: Atelier_V1_Request.OneOf_Body, requestID: String = UUID().uuidString) throws -> Atelier_V1_Response {
        var req = Atelier_V1_Request()
        req.protocolVersion = FarmClient.protocolVersion
        req.requestID = requestID
        req.body = body
        return try client.call(req, timeout: options.requestTimeout)
    }

    /// Sends one logical request, retrying with the same request id while the coordinator is
    /// unreachable; nil only when the worker is stopping.
    func callUntilAnswered(_ body: Atelier_V1_Request.OneOf_Body) -> Atelier_V1_Response? {
        let id = UUID().uuidString
        var delay = 0.2
        var warned = false
        while !isStopped {
            do { return try call(body, requestID: id) } catch {
                if !warned { log("coordinator unreachable (\(error)); retrying", level: .warning); warned = true }
                sleep(seconds: delay)
                delay = min(delay * 2, 5)
            }
        }
        return nil
    }

    func sleep(seconds: Double) {
        let end = Date().addingTimeInterval(seconds)
        while !isStopped && Date() < end { Thread.sleep(forTimeInterval: min(0.1, end.timeIntervalSinceNow)) }
    }
}

/// Progress and cancellation shared between the render and its heartbeat thread.
final class LeaseState: @unchecked Sendable {
    private let lock = NSLock()
    private var step = 0, total = 0
    private var isCancelled = false, isFinished = false
    private var rate = StepRateMeter()

    var progress: (Int, Int) { lock.lock(); defer { lock.unlock() }; return (step, total) }
    var cancelled: Bool { lock.lock(); defer { lock.unlock() }; return isCancelled }
    var finished: Bool { lock.lock(); defer { lock.unlock() }; return isFinished }
    /// The render's denoising rate so far (see `StepRateMeter`).
    var stepsPerSecond: Double { lock.lock(); defer { lock.unlock() }; return rate.stepsPerSecond }
    func setProgress(_ s: Int, _ t: Int) {
        let now = ProcessInfo.processInfo.systemUptime
        lock.lock(); step = s; total = t; rate.record(step: s, at: now); lock.unlock()
    }
    func cancel() { lock.lock(); isCancelled = true; lock.unlock() }
    func finish() { lock.lock(); isFinished = true; lock.unlock() }
}
