import Foundation

/// What the metrics endpoint reads from a store in one snapshot. Counts that only grow (attempt
/// outcomes, retries, images) are derived from the durable tables rather than counted in the
/// process, so they survive a coordinator restart and agree between an active and a standby
/// coordinator on one PostgreSQL database.
public struct StoreMetrics: Sendable, Equatable {
    /// Unfinished tasks (`queued`, `leased`) of one model in one state.
    public struct QueueDepth: Sendable, Hashable {
        public var state: String
        public var model: String
        public var count: Int

        public init(state: String, model: String, count: Int) {
            self.state = state
            self.model = model
            self.count = count
        }
    }

    /// A finished job, for the submit → finish latency histogram.
    public struct FinishedJob: Sendable, Equatable {
        public var jobID: String
        public var state: String
        public var createdUnixMs: Int64
        public var finishedUnixMs: Int64

        public init(jobID: String, state: String, createdUnixMs: Int64, finishedUnixMs: Int64) {
            self.jobID = jobID
            self.state = state
            self.createdUnixMs = createdUnixMs
            self.finishedUnixMs = finishedUnixMs
        }
    }

    public var queue: [QueueDepth] = []
    /// Attempts by outcome (`running`, `done`, `failed`, `rejected`, `expired`, `cancelled`, `released`).
    public var attemptOutcomes: [String: Int] = [:]
    /// Attempts beyond each task's first (every requeue that was leased again).
    public var retries: Int = 0
    /// Finished images: batch images and stitched upscales (tiles are not counted).
    public var imagesCompleted: Int = 0
    public var jobsByState: [String: Int] = [:]
    /// Jobs finished after the cursor asked for, oldest first.
    public var finished: [FinishedJob] = []

    public init() {}
}

/// Where the last read of finished jobs stopped: (finish time, job id), so jobs finishing in the
/// same millisecond are neither missed nor counted twice.
public struct FinishedJobCursor: Sendable, Equatable {
    public var finishedUnixMs: Int64
    public var jobID: String

    public init(finishedUnixMs: Int64, jobID: String = "") {
        self.finishedUnixMs = finishedUnixMs
        self.jobID = jobID
    }

    /// Past `job`.
    public init(after job: StoreMetrics.FinishedJob) {
        self.init(finishedUnixMs: job.finishedUnixMs, jobID: job.jobID)
    }
}
