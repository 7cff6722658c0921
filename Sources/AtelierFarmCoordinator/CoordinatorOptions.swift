import Foundation

/// Tunables of a `Coordinator`. The defaults suit a LAN farm of CPU workers; tests shrink them.
public struct CoordinatorOptions: Sendable {
    /// How long a lease lives without a heartbeat. Each heartbeat extends the deadline to at least
    /// now + `leaseTTL`.
    public var leaseTTL: TimeInterval = 30
    /// The tokens callers must present (`--tokens FILE`); nil: access is open, as on a trusted
    /// network. See `AccessPolicy` and Coordinator+Access.swift.
    public var accessTokens: AccessTokens? = nil
    /// Added to a fresh lease's deadline per denoising step per output megapixel, so a lease
    /// covers the time until the worker's first heartbeat even for large renders (loading a model
    /// and encoding a prompt can take longer than the TTL on a slow CPU). A heartbeat never
    /// shortens a deadline.
    public var leaseSecondsPerStepMegapixel: Double = 2
    /// What workers are told to heartbeat at; nil = a third of `leaseTTL`, so two heartbeats can
    /// be lost before a lease expires. A worker is listed as alive while its last request is no
    /// older than `aliveHeartbeats` intervals.
    public var heartbeatInterval: TimeInterval? = nil
    public var aliveHeartbeats: Double = 3
    /// Unfinished (queued or leased) tasks the queue may hold; a submission that would exceed it
    /// is refused with QUEUE_FULL.
    public var maxUnfinishedTasks: Int = 10_000
    /// Attempts per task when a submission says 0; submissions may ask for up to `maxAttemptsLimit`.
    public var defaultMaxAttempts: Int = 3
    public var maxAttemptsLimit: Int = 100
    /// Expired leases a task may have before it fails (and its job with it). Expiries are charged
    /// apart from `max_attempts`: a killed, restarted or stopped worker says nothing about the
    /// task, so this budget is generous, and an expiry never fails a job before it is used up.
    public var maxLeaseExpiries: Int = 10
    /// After its first expiry a task is offered again at once (preferably to another worker);
    /// after its n-th (n ≥ 2) it waits `expiryBackoff × 2^(n-2)` (at most `expiryBackoffMax`), so
    /// a task that keeps losing its worker cannot absorb every restart of a flapping farm, and
    /// the other tasks go first.
    public var expiryBackoff: TimeInterval = 2
    public var expiryBackoffMax: TimeInterval = 120
    /// Most slots (leases held at once) a worker may declare; a worker declaring 0 gets 1.
    public var maxWorkerSlots: Int = 64
    /// A worker whose leases expired this many times in a row (no completion in between) is
    /// quarantined: no leases for `quarantine × 2^(streak - quarantineAfterExpiries)`, at most
    /// `quarantineMax`. A peer that leases without ever working cannot keep taking tasks.
    public var quarantineAfterExpiries: Int = 2
    public var quarantine: TimeInterval = 60
    public var quarantineMax: TimeInterval = 3600
    /// A worker not heard from for this long that holds no lease is removed (its row, models and
    /// blocklist entries): restarted workers register anew, and the table must not grow for good.
    public var workerRetention: TimeInterval = 3600
    /// A worker that failed this many tasks of one job is not offered that job again (while another
    /// live worker could take it instead).
    public var blocklistThreshold: Int = 2
    /// What a worker with nothing to do is told to wait before asking again.
    public var retryAfterMs: UInt32 = 500
    /// Stored responses of mutating requests are kept this long and at most this many, for
    /// resends of the same request_id.
    public var requestLogMaxAge: TimeInterval = 3600
    public var requestLogMaxRows: Int = 10_000
    /// Any image in a request (upscale input, init image, mask, depth map) larger than this is
    /// refused with TOO_LARGE.
    public var maxImageBytes: Int = 32 << 20
    /// Longest side of an upscale input, in low-res pixels (TOO_LARGE beyond).
    public var maxUpscaleSide: Int = 1024
    /// Largest result PNG a worker may send.
    public var maxResultBytes: Int = 64 << 20
    /// watch_job requests that may wait at once (each holds a REP context while it waits);
    /// beyond it a watch is answered at once. The CLI sets it to half of `--contexts`, so
    /// watchers never take the contexts workers need.
    public var maxWatchers: Int = 4

    public init() {}

    /// The heartbeat interval workers are told.
    public var effectiveHeartbeatInterval: TimeInterval {
        heartbeatInterval ?? leaseTTL / 3
    }
}

/// The policy numbers every store derives from the options the same way.
extension CoordinatorOptions {
    /// A worker counts as alive while its last request is at most this old (ms).
    public var aliveWindowMs: Int64 {
        Int64((effectiveHeartbeatInterval * aliveHeartbeats * 1000).rounded())
    }

    /// A lease's time to live after a heartbeat (ms).
    public var leaseTTLMs: Int64 { Int64((leaseTTL * 1000).rounded()) }

    /// The back-off before a task whose lease expired `expiries` times may be leased again (ms):
    /// 0 after the first expiry (the worker was most likely killed or restarted: another one
    /// takes the task at once), then `expiryBackoff × 2^(expiries-2)`, at most `expiryBackoffMax`.
    public func expiryBackoffMs(expiries: Int) -> Int64 {
        guard expiries >= 2 else { return 0 }
        let base = max(expiryBackoff, 0), cap = max(expiryBackoffMax, 0)
        let seconds = min(base * pow(2, Double(min(expiries - 2, 30))), cap)
        return Int64((seconds * 1000).rounded())
    }
}
