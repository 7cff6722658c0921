import AtelierFarmProtocol
import Foundation
import GRDB

/// A job's lifecycle as stored. `running` from the first lease until every task is done (and, for
/// an upscale, the tiles are stitched).
enum JobPhase: String, Codable, Sendable {
    case queued, running, succeeded, failed, cancelled

    var isFinished: Bool { self == .succeeded || self == .failed || self == .cancelled }

    var proto: Atelier_V1_JobState {
        switch self {
        case .queued: return .queued
        case .running: return .running
        case .succeeded: return .succeeded
        case .failed: return .failed
        case .cancelled: return .cancelled
        }
    }
}

/// A task's lifecycle as stored. Only `leased` tasks accept heartbeats, completions and failures.
enum TaskPhase: String, Codable, Sendable {
    case queued, leased, done, failed, cancelled

    var proto: Atelier_V1_TaskState {
        switch self {
        case .queued: return .queued
        case .leased: return .leased
        case .done: return .done
        case .failed: return .failed
        case .cancelled: return .cancelled
        }
    }
}

public enum JobKind: String, Codable, Sendable {
    case batch, upscale
}

/// A `jobs` row without its (possibly large) spec blob.
struct JobRow: Codable, FetchableRecord, Sendable {
    var seq: Int64
    var id: String
    var kind: JobKind
    var state: JobPhase
    var priority: Int32
    var created: Int64
    var finished: Int64?
    var errors: String
    var seamRatio: Double?
    var maxAttempts: Int
    var taskCount: Int
    var model: String
    var imageWidth: Int
    var imageHeight: Int
    var tile: Int
    var overlap: Int
    /// The group the job is pinned to (nil: submitted before pinning existed).
    var weightsSha256: String?
    var numerics: String?
    /// The pinned group's default image side (0 = unknown).
    var defaultSide: Int
    /// Batch jobs: the size every image must have (`expectedExact`), or at most (0 = unknown).
    var expectedWidth: Int
    var expectedHeight: Int
    var expectedExact: Bool
    /// The name of the token that submitted it ('' when access is open).
    var owner: String = ""

    static let databaseColumnDecodingStrategy = DatabaseColumnDecodingStrategy.convertFromSnakeCase
    static let columns = """
        seq, id, kind, state, priority, created, finished, errors, seam_ratio, max_attempts, task_count, model,
        image_width, image_height, tile, overlap, weights_sha256, numerics, default_side,
        expected_width, expected_height, expected_exact, owner
        """

    static func fetch(_ db: Database, id: String) throws -> JobRow? {
        try JobRow.fetchOne(db, sql: "SELECT \(columns) FROM jobs WHERE id = ?", arguments: [id])
    }

    /// The collected error messages.
    var errorList: [String] {
        guard let data = errors.data(using: .utf8),
              let list = try? JSONDecoder().decode([String].self, from: data) else { return [] }
        return list
    }

    static func encodeErrors(_ list: [String]) -> String {
        guard let data = try? JSONEncoder().encode(list) else { return "[]" }
        return String(decoding: data, as: UTF8.self)
    }
}

/// A `tasks` row without its spec blob.
struct TaskRow: Codable, FetchableRecord, Sendable {
    var id: String
    var jobId: String
    var idx: Int
    var state: TaskPhase
    var model: String
    var acceptedChannels: Int64
    var work: Double
    var attempts: Int
    var maxAttempts: Int
    var fencingToken: Int64
    var leaseDeadline: Int64?
    var workerId: String?
    var step: Int
    var totalSteps: Int
    var lastError: String
    var failures: Int
    var expiries: Int
    var notBefore: Int64
    var lostBy: String?

    static let databaseColumnDecodingStrategy = DatabaseColumnDecodingStrategy.convertFromSnakeCase
    static let columns = """
        id, job_id, idx, state, model, accepted_channels, work, attempts, max_attempts, fencing_token,
        lease_deadline, worker_id, step, total_steps, last_error, failures, expiries, not_before, lost_by
        """

    static func fetch(_ db: Database, id: String) throws -> TaskRow? {
        try TaskRow.fetchOne(db, sql: "SELECT \(columns) FROM tasks WHERE id = ?", arguments: [id])
    }

    static func fetchAll(_ db: Database, jobID: String) throws -> [TaskRow] {
        try TaskRow.fetchAll(db, sql: "SELECT \(columns) FROM tasks WHERE job_id = ? ORDER BY idx", arguments: [jobID])
    }

    var token: UInt64 { UInt64(bitPattern: fencingToken) }

    var status: Atelier_V1_TaskStatus {
        var s = Atelier_V1_TaskStatus()
        s.taskID = id
        s.index = UInt32(clamping: idx)
        s.state = state.proto
        s.attempts = UInt32(clamping: attempts)
        s.workerID = workerId ?? ""
        // Rows written before heartbeats were clamped may hold step > total: never report that.
        s.totalSteps = UInt32(clamping: totalSteps)
        s.step = min(UInt32(clamping: step), s.totalSteps)
        s.lastError = lastError
        s.leaseExpiries = UInt32(clamping: expiries)
        s.notBeforeUnixMs = state == .queued ? notBefore : 0
        return s
    }
}

/// A `workers` row.
struct WorkerRow: Codable, FetchableRecord, Sendable {
    var id: String
    var name: String
    var capabilities: Data
    var registered: Int64
    var lastSeen: Int64
    var completed: Int
    var failed: Int
    var slots: Int
    var expiries: Int
    var expiryStreak: Int
    var quarantinedUntil: Int64
    var proven: Bool

    static let databaseColumnDecodingStrategy = DatabaseColumnDecodingStrategy.convertFromSnakeCase

    static func fetch(_ db: Database, id: String) throws -> WorkerRow? {
        try WorkerRow.fetchOne(db, sql: "SELECT * FROM workers WHERE id = ?", arguments: [id])
    }

    /// "name (id)" for error messages and job errors.
    var label: String { name.isEmpty || name == id ? id : "\(name) (\(id))" }
}

/// Unix milliseconds, the unit of every stored time.
@inline(__always)
func unixMilliseconds(_ date: Date) -> Int64 {
    let ms = (date.timeIntervalSince1970 * 1000).rounded()
    guard ms.isFinite else { return 0 }
    return Int64(max(min(ms, Double(Int64.max / 2)), Double(Int64.min / 2)))
}
