import AtelierFarmProtocol
import AtelierFarmTransport
import AtelierRequests
import Foundation
import Logging
import SwiftProtobuf

/// The farm's coordinator, without sockets: the transport decodes a `Request`, calls `handle`,
/// and sends back the `Response`. Workers lease tasks with fencing tokens, heartbeat, and
/// complete or fail them; clients submit, watch, cancel and fetch jobs.
///
/// Thread safety: `handle` may be called concurrently from any number of transport threads.
/// Every state change is one atomic operation of its `CoordinatorStore`, which also re-checks the
/// fencing token, so concurrent or duplicated requests cannot both win; reads (status, listings,
/// results) run on snapshots in parallel.
///
/// Durability: all state is in the store (by default `DIR/atelier.sqlite`) and `DIR/results/`. Constructing a
/// coordinator on an existing directory resumes: queued tasks stay queued, leases in flight
/// either complete (if their worker is still alive and reports with its token) or expire and are
/// requeued, and upscales whose tiles were all in but not stitched are stitched from the stored
/// tile PNGs.
public final class Coordinator: @unchecked Sendable {
    public let options: CoordinatorOptions
    /// Where the queue, the leases, the workers and the request log live.
    public let store: any CoordinatorStore
    let results: ResultStore
    let now: @Sendable () -> Date

    /// Jobs being stitched right now, so two threads never stitch the same job at once.
    private var stitching = Set<String>()
    /// Where the last tile's completion hands its upscale to be stitched: decoding every tile,
    /// blending and encoding a 4096² PNG takes seconds, which the worker's complete_task must not
    /// wait for (nor hold a transport thread). One at a time: stitching is memory-bound.
    let stitchQueue = DispatchQueue(label: "atelier.coordinator.stitch", qos: .utility)
    /// Test seam: runs in complete_task between putting the result file in place and the
    /// transaction that records it (the window in which a lease can be lost).
    var completionWillCommit: (() -> Void)?
    private let lock = NSLock()
    /// Where the coordinator logs (see `Coordinator+Logging`); set it before serving.
    public var logger = Logger(label: "atelier.coordinator")
    /// One line per kind per 10 s for what peers can cause by the thousand (hostile requests,
    /// lease expiries).
    public let noisyLog = LogRateLimiter(interval: 10)
    /// Bumped on every state change; watch_job sleeps on it (`Coordinator+Watch`).
    let changes = ChangeSignal()
    let watchLock = NSLock()
    var activeWatchers = 0

    private var requestObserver: RequestObserver?

    /// Told of every answered request: its kind (`kindName`), how long `handle` took, and its
    /// error code when it failed. Runs on the transport's thread, so it must be quick (the
    /// metrics endpoint records a histogram sample).
    public typealias RequestObserver = @Sendable (_ kind: String, _ seconds: Double, _ error: Atelier_V1_ErrorCode?) -> Void

    /// Sets (or, with nil, removes) the `RequestObserver`.
    public func observeRequests(_ observer: RequestObserver?) {
        lock.lock()
        requestObserver = observer
        lock.unlock()
    }

    /// Opens (or creates) the coordinator state in `directory` and resumes unfinished work.
    /// - Parameter now: the clock, injectable so tests can expire leases without sleeping.
    public convenience init(directory: URL, options: CoordinatorOptions = CoordinatorOptions(),
                            now: @escaping @Sendable () -> Date = { Date() }) throws {
        let options = try options.validated()
        try self.init(store: SQLiteCoordinatorStore(directory: directory, options: options), directory: directory,
                      options: options, now: now)
    }

    /// A coordinator on `store`, keeping its result files under `directory`. The store must have
    /// been opened with the same options (they carry the leasing policy it applies).
    public init(store: any CoordinatorStore, directory: URL, options: CoordinatorOptions = CoordinatorOptions(),
                now: @escaping @Sendable () -> Date = { Date() }) throws {
        self.options = try options.validated()
        self.now = now
        self.store = store
        self.directory = directory
        self.results = ResultStore(directory: directory)
        try resume()
    }

    /// The coordinator directory (result files; with the default store also the database).
    public let directory: URL

    /// Closes the database, after the stitches already handed to the background have finished.
    /// Further requests answer INTERNAL.
    public func close() throws {
        waitForStitches()
        try store.close()
    }

    /// Stitches `jobID` on the stitching queue (see `finishUpscale`), off the request path.
    func stitchInBackground(_ jobID: String) {
        stitchQueue.async { [self] in
            finishUpscale(jobID)
            changes.signal()
        }
    }

    /// Blocks until every stitch handed to the background so far has finished (shutdown; tests
    /// that look at a job right after its last tile, as a client polling its status would).
    public func waitForStitches() {
        stitchQueue.sync {}
    }

    // MARK: Entry points

    /// Answers one request. Never throws and never traps on bad input: every failure is a
    /// `Response` with `error` set (INTERNAL for the coordinator's own failures, after which it
    /// keeps serving).
    ///
    /// - Parameter peer: who sent it (for diagnostics; idempotency is by request_id alone,
    ///   because a resend may arrive over a new connection).
    public func handle(_ request: Atelier_V1_Request, peer: String) -> Atelier_V1_Response {
        let started = ContinuousClock.now
        var response: Atelier_V1_Response
        do {
            response = try dispatch(request, peer: peer)
        } catch let error as CoordinatorError {
            response = Coordinator.failure(error)
        } catch let error as RequestValidationError {
            response = Coordinator.failure(CoordinatorError(error))
        } catch {
            response = Coordinator.failure(.internalError("\(error)"))
        }
        response.protocolVersion = 1
        response.requestID = request.requestID
        if !response.hasError && Coordinator.changesState(request.body) { changes.signal() }
        if !response.hasError, case .registerWorker? = request.body {
            // A job queued before any worker served its model may now be known to be unservable.
            do { try failUnservablePendingJobs() } catch { logger.error("checking queued jobs against new workers: \(error)") }
        }
        logOutcome(request, response, peer: peer)
        lock.lock()
        let observer = requestObserver
        lock.unlock()
        if let observer {
            let elapsed = ContinuousClock.now - started
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            observer(Coordinator.kindName(request.body), seconds, response.hasError ? response.error.code : nil)
        }
        return response
    }

    /// Whether a successful request of this kind may have changed a job (wakes watchers).
    static func changesState(_ body: Atelier_V1_Request.OneOf_Body?) -> Bool {
        switch body {
        case .leaseTask?, .heartbeat?, .completeTask?, .failTask?, .releaseTask?, .cancelJob?, .submitJob?: return true
        default: return false
        }
    }

    /// Answers serialized request bytes with serialized response bytes; MALFORMED when the bytes
    /// are not a `Request`. For transports that do not want to touch protobuf.
    public func handle(serializedRequest bytes: Data, peer: String) -> Data {
        let response: Atelier_V1_Response
        do {
            let request = try Atelier_V1_Request(serializedBytes: bytes)
            response = handle(request, peer: peer)
        } catch {
            logMalformed(bytes: bytes.count, peer: peer)
            var malformed = Coordinator.failure(CoordinatorError(
                .malformed, "the message is not a serialized atelier.v1.Request (\(bytes.count) bytes): \(error)"))
            malformed.protocolVersion = 1
            response = malformed
        }
        return (try? response.serializedBytes()) ?? Data()
    }

    /// Housekeeping a transport may run on a timer (say every few seconds): requeues expired
    /// leases (so status listings show them as queued again even while no worker asks for work),
    /// prunes the request log and dead workers, and retries stitches that failed. Leasing requeues expired leases by
    /// itself, so this is optional.
    public func performMaintenance() throws {
        let nowMs = unixMilliseconds(now())
        // Pruned before the requeue: a worker whose lease only now expires is kept this round (it
        // may be back any moment; it goes at the next maintenance if not).
        try store.pruneWorkers(now: nowMs)
        try failUnservablePendingJobs()
        let expired = try store.expireLeases(now: nowMs)
        if expired > 0 { changes.signal() }
        logExpiries(expired)
        try store.pruneRequestLog(now: nowMs)
        // Retries a stitch that failed for a passing reason (a full disk, say).
        for jobID in try store.upscalesAwaitingStitch() {
            finishUpscale(jobID)
            changes.signal()
        }
    }

    // MARK: Dispatch

    private func dispatch(_ request: Atelier_V1_Request, peer: String) throws -> Atelier_V1_Response {
        guard request.protocolVersion == 1 else {
            throw CoordinatorError(.unsupportedVersion,
                                   "protocol_version \(request.protocolVersion) is not supported; this coordinator speaks version 1")
        }
        guard !request.requestID.isEmpty else {
            throw CoordinatorError.invalid("request_id is empty: send a fresh UUID with every request (and the same one on resends)")
        }
        guard request.requestID.utf8.count <= 128 else {
            throw CoordinatorError.invalid("request_id is longer than 128 bytes; use a UUID")
        }
        guard let body = request.body else {
            throw CoordinatorError.invalid("the request has no body: set one of its request fields (submit_job, lease_task, …)")
        }

        // Access control first, before the request log: a replay goes only to a caller that may
        // send the request at all (Coordinator+Access.swift).
        _ = try authorize(request, body)

        switch body {
        // Read-only requests: naturally idempotent, answered from a snapshot, not logged
        // (watch_job too: it only waits before reading).
        case .jobStatus(let r): return try jobStatus(r)
        case .listJobs(let r): return try listJobs(r)
        case .listWorkers(let r): return try listWorkers(r)
        case .fetchResult(let r): return try fetchResult(r)
        case .watchJob(let r): return try watchJob(r)
        default: break
        }

        // Mutating requests: a resend gets the stored first response.
        if let stored = try store.loggedResponse(requestID: request.requestID) {
            return try RequestLog.replay(stored, requestID: request.requestID, fingerprint: RequestLog.fingerprint(request))
        }
        switch body {
        case .registerWorker(let r): return try registerWorker(r, request: request, peer: peer)
        case .leaseTask(let r): return try leaseTask(r, request: request, peer: peer)
        case .heartbeat(let r): return try heartbeat(r, request: request, peer: peer)
        case .completeTask(let r): return try completeTask(r, request: request, peer: peer)
        case .failTask(let r): return try failTask(r, request: request, peer: peer)
        case .releaseTask(let r): return try releaseTask(r, request: request, peer: peer)
        case .submitJob(let r): return try submitJob(r, request: request, peer: peer)
        case .cancelJob(let r): return try cancelJob(r, request: request, peer: peer)
        case .drainWorker(let r): return try drainWorker(r)
        case .jobStatus, .listJobs, .listWorkers, .fetchResult, .watchJob:
            throw CoordinatorError.internalError("read-only request reached the mutating path")
        }
    }

    /// What a store needs to keep `request`'s response for resends (see `CoordinatorStore`).
    func logged(_ request: Atelier_V1_Request, peer: String) -> LoggedRequest {
        LoggedRequest(requestID: request.requestID, kind: Coordinator.kindName(request.body), peer: peer,
                      fingerprint: RequestLog.fingerprint(request))
    }

    // MARK: Helpers

    static func failure(_ error: CoordinatorError) -> Atelier_V1_Response {
        var response = Atelier_V1_Response()
        response.error = error.proto
        return response
    }

    static func success(_ body: Atelier_V1_Response.OneOf_Body) -> Atelier_V1_Response {
        var response = Atelier_V1_Response()
        response.body = body
        return response
    }

    public static func kindName(_ body: Atelier_V1_Request.OneOf_Body?) -> String {
        switch body {
        case .registerWorker?: return "register_worker"
        case .leaseTask?: return "lease_task"
        case .heartbeat?: return "heartbeat"
        case .completeTask?: return "complete_task"
        case .failTask?: return "fail_task"
        case .releaseTask?: return "release_task"
        case .submitJob?: return "submit_job"
        case .jobStatus?: return "job_status"
        case .cancelJob?: return "cancel_job"
        case .fetchResult?: return "fetch_result"
        case .listWorkers?: return "list_workers"
        case .listJobs?: return "list_jobs"
        case .watchJob?: return "watch_job"
        case .drainWorker?: return "drain_worker"
        case nil: return "empty"
        }
    }

    /// Marks `jobID` as being stitched; false if another thread already is.
    func beginStitching(_ jobID: String) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        return stitching.insert(jobID).inserted
    }

    func endStitching(_ jobID: String) {
        lock.lock()
        defer { lock.unlock() }
        stitching.remove(jobID)
    }

    // MARK: Resume

    /// Picks up where a previous coordinator on this directory stopped: removes half-written
    /// temporary files, stitches upscales whose tiles were all in, and prunes the request log.
    /// Leases in flight are left alone: they finish or expire like any other.
    private func resume() throws {
        results.removeAbandonedTemporaries()
        try store.pruneRequestLog(now: unixMilliseconds(now()))
        for jobID in try store.upscalesAwaitingStitch() {
            finishUpscale(jobID)
        }
    }
}
