import AtelierFarmProtocol
import Foundation

/// The coordinator's durable state, as domain operations. `Coordinator` speaks only to this
/// protocol: it decodes and validates requests, plans jobs, checks and files result PNGs and
/// stitches upscales; everything that reads or changes the queue, the leases, the workers and the
/// request log is one call here. Each store (`SQLiteCoordinatorStore`, the embedded default) owns
/// its SQL and the transactions that make each operation atomic, so the correctness of leasing
/// never rests on one database's quirks (SQLite's single writer, say): a store that runs several
/// operations at once (several writers, several coordinator processes) must still give every
/// guarantee written on the operation. `StoreConformanceTests` checks the same behaviour on every
/// store, including concurrent lease races.
///
/// Conventions, for every operation:
/// - **Atomic**: an operation either happens entirely or not at all; a thrown error changes nothing.
/// - **Time** is passed in (`now`, Unix ms) so tests can move a clock; a store never reads one.
/// - **Fencing**: operations on a lease take a `LeaseClaim` and refuse it with STALE_LEASE unless
///   its token is the task's current lease held by that worker (checked inside the operation's
///   transaction, never before it).
/// - **Idempotency**: mutating operations a client may resend take a `LoggedRequest`. The first
///   run stores `respond(outcome)` under the request id in the same transaction as the change; a
///   later call with the same id (a resend, even concurrent with the first) does not run the
///   change and gets `.replayed` with the stored response (or INVALID if the id was used for a
///   different request). Operations without one are idempotent by themselves (heartbeats by their
///   token, reads).
public protocol CoordinatorStore: AnyObject, Sendable {
    // MARK: Request log

    /// The stored response of a logged request, if any (a snapshot read; the authoritative check
    /// is repeated inside each logged operation).
    func loggedResponse(requestID: String) throws -> LoggedResponse?

    // MARK: Workers

    /// Registers a worker (or takes back the row of the same id, or of a quiet worker with the same
    /// name on the same host that holds no lease), replaces its models, and requeues (uncharged)
    /// its leases on jobs pinned to weights or numerics it no longer has. Prunes long-dead
    /// workers first. Logged. Returns the worker id.
    func registerWorker(_ registration: WorkerRegistration, now: Int64, log: LoggedRequest,
                        respond: (String) throws -> Atelier_V1_Response) throws -> Logged<String>

    /// One page of workers in id order after `afterWorkerID` (keyset pagination), at most `limit`,
    /// and whether more follow. Read-only (a snapshot).
    func listWorkers(afterWorkerID: String, limit: Int, now: Int64) throws -> (workers: [Atelier_V1_WorkerStatus], more: Bool)

    // MARK: Leasing

    /// Answers an idle lease poll from a snapshot, changing nothing: the retry-after when the
    /// worker was seen within `refreshMs`, no lease has expired and there is nothing it may take;
    /// nil when the poll must take `leaseNext` (which decides again, atomically). Not logged: a
    /// resend is decided afresh.
    func idleLeaseWait(worker: String, now: Int64, refreshMs: Int64) throws -> UInt32?

    /// Requeues expired leases, then leases the next task `worker` may take (highest priority,
    /// oldest job, lowest index; its models and pin; the soft blocklist; the expiry back-off; its
    /// slots and quarantine) with a fresh fencing token greater than every token handed out
    /// before; or says how long to wait. **Exclusive**: however many `leaseNext` calls run at once
    /// (threads or processes), a task is leased to at most one worker at a time. Logged (a resent
    /// poll gets the same lease, never a second one). UNKNOWN_WORKER for an unregistered worker.
    func leaseNext(worker: String, now: Int64, log: LoggedRequest,
                   respond: (LeaseOutcome) throws -> Atelier_V1_Response) throws -> Logged<LeaseOutcome>

    /// Extends the claimed lease to `now + leaseTTL` and records progress, the worker's step rate
    /// (`stepsPerSecond`, already checked finite and ≥ 0; shown by list_workers and summed by the
    /// metrics) and liveness; on a cancelled task answers `cancel` instead. Idempotent by its
    /// token (not logged).
    func heartbeat(_ claim: LeaseClaim, step: UInt32, totalSteps: UInt32, stepsPerSecond: Double,
                   now: Int64) throws -> HeartbeatOutcome

    /// Requeues every lease whose deadline is before `now` (uncharged; a back-off; fails the task
    /// and its job once its expiry budget is spent). Atomic per call; idempotent (a second call
    /// finds nothing expired). Returns how many leases expired.
    @discardableResult
    func expireLeases(now: Int64) throws -> Int

    /// The last fencing token handed out (0 before the first lease).
    func lastFencingToken() throws -> UInt64

    // MARK: Completion and failure

    /// A snapshot check of a completion before its PNG is decoded or written: what the claimed
    /// lease is for, or STALE_LEASE. Read-only; `complete` checks again atomically.
    func completionTarget(_ claim: LeaseClaim) throws -> CompletionTarget

    /// Marks the claimed task done with its result file (`result`, already written and placed or
    /// staged by the caller), succeeds a batch job whose last task this was, and reports whether an
    /// upscale now has every tile. `file.accepted` runs inside the transaction once the claim is
    /// checked (to put a staged file in place before the commit); `file.refused` runs when the
    /// claim is refused there. **Exactly once**: only the current token of a leased task wins;
    /// a second completion (another token, or after success) is STALE_LEASE. Logged.
    func complete(_ claim: LeaseClaim, result: StoredResult, file: ResultFileHooks, now: Int64, log: LoggedRequest,
                  respond: (CompletionOutcome) throws -> Atelier_V1_Response) throws -> Logged<CompletionOutcome>

    /// A failed attempt of the claimed task (`class`: the worker's failure, or a result the
    /// coordinator rejected): charged against the job's attempts; the task is requeued, or fails
    /// (with its job) when its attempts are spent or another worker failed it with the same
    /// error. Logged.
    func fail(_ claim: LeaseClaim, class: FailureClass, message: String, now: Int64, log: LoggedRequest,
              respond: () throws -> Atelier_V1_Response) throws -> Logged<Void>

    /// The worker hands its lease back: requeued at once, the attempt not charged. Logged.
    func release(_ claim: LeaseClaim, reason: String, now: Int64, log: LoggedRequest,
                 respond: () throws -> Atelier_V1_Response) throws -> Logged<Void>

    // MARK: Jobs

    /// Checks that a registered worker serves the job's model, pins it to the (weights, numerics)
    /// group with most live workers, checks the queue cap, and inserts the job and its tasks, all
    /// atomically (the cap holds under concurrent submissions). Logged (a resend never creates a
    /// second job). Returns the new job id.
    func submit(_ job: NewJob, now: Int64, log: LoggedRequest,
                respond: (SubmitOutcome) throws -> Atelier_V1_Response) throws -> Logged<SubmitOutcome>

    /// Cancels the job's queued and leased tasks (their workers learn it from their next
    /// heartbeat) unless it has finished; returns its status. Logged; cancelling a finished job
    /// changes nothing.
    func cancel(jobID: String, now: Int64, log: LoggedRequest,
                respond: (Atelier_V1_JobStatus) throws -> Atelier_V1_Response) throws -> Logged<Atelier_V1_JobStatus>

    /// A job's status (with its tasks if asked). Read-only.
    func jobStatus(jobID: String, includeTasks: Bool) throws -> Atelier_V1_JobStatus

    /// The newest `limit` jobs first. Read-only.
    func listJobs(limit: Int) throws -> [Atelier_V1_JobStatus]

    /// The stored path (relative to the coordinator directory) of batch image `index`, or of an
    /// upscale's stitched image (index 0); NOT_FOUND with the reason while it is not there.
    func resultPath(jobID: String, index: Int) throws -> String

    // MARK: Upscales

    /// Running upscales with every tile done (a crash between the last tile and the stitch leaves
    /// them so), in submission order.
    func upscalesAwaitingStitch() throws -> [String]

    /// What stitching `jobID` needs, or nil unless it is a running upscale with every tile done.
    func stitchInputs(jobID: String) throws -> StitchInputs?

    /// Records the stitched image and succeeds the job, unless it is no longer running (cancelled
    /// meanwhile: then nothing changes). Idempotent.
    func recordStitched(jobID: String, path: String, bytes: Int, seamRatio: Double?, now: Int64) throws

    /// Queues the done tiles whose stored results are unusable again, forgetting their results.
    func requeueLostTiles(jobID: String, lost: [(index: Int, reason: String)]) throws

    /// Appends `message` to the job's errors unless it is already the last one (a retried failure
    /// is noted once).
    func noteJobError(jobID: String, message: String) throws

    /// Fails the job (unless finished) with `reason`, cancelling its unfinished tasks.
    func failJob(jobID: String, reason: String, now: Int64) throws

    /// Unfinished jobs accepted while no worker served their model and not leased yet (so not
    /// pinned), with the UNet input channels their model's registered workers have now.
    func pendingPinJobs() throws -> [PendingPinJob]

    // MARK: Housekeeping

    /// Removes workers not heard from for `workerRetention` that hold no lease.
    func pruneWorkers(now: Int64) throws

    /// Drops request-log entries beyond the configured age and count.
    func pruneRequestLog(now: Int64) throws

    // MARK: Access control (`AccessPolicy`)

    /// The token a worker registered with and whether it is draining; nil for an unknown worker.
    /// Read-only (a snapshot).
    func workerAccess(workerID: String) throws -> WorkerAccess?

    /// Marks the worker draining (no new leases; its heartbeats answer `drain`), until it
    /// registers again. Idempotent. Returns its status, or nil for an unknown worker.
    func drainWorker(workerID: String, now: Int64) throws -> Atelier_V1_WorkerStatus?

    // MARK: Observability (read-only snapshots for the metrics endpoint and the status page)

    /// Counts for the metrics endpoint: unfinished tasks by state and model, attempts by outcome,
    /// retries, images completed, jobs by state, and up to `limit` jobs finished after `cursor`
    /// (oldest first, for the job-latency histogram). Read-only (a snapshot).
    func metricsSnapshot(finishedAfter cursor: FinishedJobCursor, limit: Int) throws -> StoreMetrics

    /// The submitted request of each of `jobIDs` that exists (the status page shows its prompts).
    /// Read-only.
    func jobRequests(jobIDs: [String]) throws -> [String: Atelier_V1_SubmitJobRequest]

    /// Write transactions run since the store was opened (`CoordinatorWriteLoadTests`).
    var writeTransactionCount: Int { get }

    /// Closes the store; later operations fail.
    func close() throws
}

/// What access control needs to know about a registered worker.
public struct WorkerAccess: Sendable, Equatable {
    /// The name of the token it registered with ('' when access was open).
    public var tokenName: String
    /// An admin drained it: it gets no new leases.
    public var draining: Bool

    public init(tokenName: String, draining: Bool) {
        self.tokenName = tokenName
        self.draining = draining
    }
}

extension CoordinatorStore {
    /// A heartbeat without a step rate (0: not known yet).
    public func heartbeat(_ claim: LeaseClaim, step: UInt32, totalSteps: UInt32, now: Int64) throws -> HeartbeatOutcome {
        try heartbeat(claim, step: step, totalSteps: totalSteps, stepsPerSecond: 0, now: now)
    }
}

/// A request whose response is kept for resends (see `CoordinatorStore`).
public struct LoggedRequest: Sendable {
    public var requestID: String
    public var kind: String
    public var peer: String
    /// FNV-1a of the serialized request (`RequestLog.fingerprint`).
    public var fingerprint: Int64

    public init(requestID: String, kind: String, peer: String, fingerprint: Int64) {
        self.requestID = requestID
        self.kind = kind
        self.peer = peer
        self.fingerprint = fingerprint
    }
}

/// A stored response of a logged request.
public struct LoggedResponse: Sendable {
    public var response: Atelier_V1_Response
    public var fingerprint: Int64
    public var kind: String
}

/// The result of a logged operation: it ran now (with its outcome and the response stored for
/// it), or an earlier request with the same id had run it (the stored response).
public enum Logged<Value> {
    case ran(Value, Atelier_V1_Response)
    case replayed(Atelier_V1_Response)

    public var response: Atelier_V1_Response {
        switch self {
        case .ran(_, let response), .replayed(let response): return response
        }
    }

    /// The outcome when the operation ran now.
    public var outcome: Value? {
        if case .ran(let value, _) = self { return value }
        return nil
    }
}

/// A worker's claim on a lease: the task, the worker, and the fencing token it was granted.
public struct LeaseClaim: Sendable, Hashable {
    public var taskID: String
    public var workerID: String
    public var token: UInt64

    public init(taskID: String, workerID: String, token: UInt64) {
        self.taskID = taskID
        self.workerID = workerID
        self.token = token
    }
}

/// A validated registration.
public struct WorkerRegistration: Sendable {
    /// The id the worker asks for (empty: a new one, or its old row by name and host).
    public var workerID: String
    /// The name to show (empty: the host name, or one made from the id).
    public var name: String
    public var capabilities: Atelier_V1_WorkerCapabilities
    /// Leases it may hold at once (at least 1).
    public var slots: Int
    /// The name of the token it registered with ('' when access is open): its lease requests
    /// must come from the same token (`WorkerAccess`). Registering also ends a drain.
    public var tokenName: String

    public init(workerID: String, name: String, capabilities: Atelier_V1_WorkerCapabilities, slots: Int,
                tokenName: String = "") {
        self.workerID = workerID
        self.name = name
        self.capabilities = capabilities
        self.slots = slots
        self.tokenName = tokenName
    }
}

/// What a lease poll gets.
public enum LeaseOutcome: Sendable {
    case lease(Atelier_V1_Lease)
    case wait(retryAfterMs: UInt32)

    public var lease: Atelier_V1_Lease? {
        if case .lease(let lease) = self { return lease }
        return nil
    }
}

public struct HeartbeatOutcome: Sendable, Equatable {
    /// The task was cancelled: the worker should stop.
    public var cancel: Bool
    public var deadlineUnixMs: Int64
}

/// What a completion is for, read before its PNG is checked.
public struct CompletionTarget: Sendable {
    public var taskIndex: Int
    public var jobID: String
    public var isUpscale: Bool
    public var spec: Atelier_V1_TaskSpec
    /// Batch jobs: the size each image must have (`exact`) or at most (width 0: unknown).
    public var expectedWidth: Int
    public var expectedHeight: Int
    public var expectedExact: Bool
}

/// A result file as recorded: its path relative to the coordinator directory and its size.
public struct StoredResult: Sendable {
    public var path: String
    public var bytes: Int

    public init(path: String, bytes: Int) {
        self.path = path
        self.bytes = bytes
    }
}

/// What `complete` runs around its check of the claim, for the result file.
public struct ResultFileHooks {
    /// Inside the transaction, after the claim was found current, before the commit.
    public var accepted: () throws -> Void
    /// When the claim was refused inside the transaction.
    public var refused: () -> Void

    public init(accepted: @escaping () throws -> Void = {}, refused: @escaping () -> Void = {}) {
        self.accepted = accepted
        self.refused = refused
    }
}

public struct CompletionOutcome: Sendable {
    public var jobID: String
    /// An upscale whose tiles are now all done: it is ready to stitch.
    public var allTilesIn: Bool
}

/// Why an attempt failed.
public enum FailureClass: String, Sendable {
    /// The worker reported a failure (fail_task).
    case failed
    /// The coordinator rejected the worker's result.
    case rejected
}

/// A planned job, ready to store.
public struct NewJob: Sendable {
    public var request: Atelier_V1_SubmitJobRequest
    public var plan: JobPlan
    public var peer: String
    /// The name of the token that submitted it ('' when access is open): `JobStatus.owner`, and
    /// who may cancel it besides an admin.
    public var owner: String

    public init(request: Atelier_V1_SubmitJobRequest, plan: JobPlan, peer: String, owner: String = "") {
        self.request = request
        self.plan = plan
        self.peer = peer
        self.owner = owner
    }
}

/// A job waiting for its first lease to pin it (scale from zero), as `pendingPinJobs` lists it.
public struct PendingPinJob: Sendable, Equatable {
    public var jobID: String
    public var model: String
    /// `ChannelRequirement` mask of its tasks.
    public var acceptedChannels: Int64
    /// Distinct `unet_in_channels` of the model's registered workers (empty: none yet).
    public var registeredChannels: [Int64]
}

public struct SubmitOutcome: Sendable {
    public var jobID: String
    public var taskCount: Int
    /// One-line notes for the submitter (SubmitJobResponse.warnings), e.g. that no worker serves
    /// the model yet and the job waits for one.
    public var warnings: [String] = []
}

/// What stitching an upscale needs: its grid's inputs and its tiles' stored paths.
public struct StitchInputs: Sendable {
    public var imageWidth: Int
    public var imageHeight: Int
    public var tile: Int
    public var overlap: Int
    /// Tile index → path relative to the coordinator directory.
    public var tilePaths: [Int: String]
}
