#if PostgreSQL  // the trait (Package.swift); off, the coordinator builds without postgres-nio
import AtelierFarmProtocol
import Foundation
import PostgresNIO

/// Rows of the PostgreSQL store, decoded into the records both stores share (`JobRow`, `TaskRow`,
/// `WorkerRow`), so the protocol views of them (`TaskRow.status`, …) are built the same way.
extension PostgresCoordinatorStore {
    static func job(_ db: PostgresSession, id: String, lock: Bool = false) throws -> JobRow? {
        try db.rows("SELECT \(unescaped: JobRow.columns) FROM jobs WHERE id = \(id)\(unescaped: lock ? " FOR UPDATE" : "")")
            .first.map(jobRow)
    }

    static func jobRow(_ r: PostgresRandomAccessRow) throws -> JobRow {
        JobRow(seq: try r["seq"].decode(Int64.self), id: try r["id"].decode(String.self),
               kind: JobKind(rawValue: try r["kind"].decode(String.self)) ?? .batch,
               state: JobPhase(rawValue: try r["state"].decode(String.self)) ?? .failed,
               priority: Int32(clamping: try r["priority"].decode(Int64.self)), created: try r["created"].decode(Int64.self),
               finished: try r["finished"].decode(Int64?.self), errors: try r["errors"].decode(String.self),
               seamRatio: try r["seam_ratio"].decode(Double?.self), maxAttempts: try r["max_attempts"].decode(Int.self),
               taskCount: try r["task_count"].decode(Int.self), model: try r["model"].decode(String.self),
               imageWidth: try r["image_width"].decode(Int.self), imageHeight: try r["image_height"].decode(Int.self),
               tile: try r["tile"].decode(Int.self), overlap: try r["overlap"].decode(Int.self),
               weightsSha256: try r["weights_sha256"].decode(String?.self), numerics: try r["numerics"].decode(String?.self),
               defaultSide: try r["default_side"].decode(Int.self), expectedWidth: try r["expected_width"].decode(Int.self),
               expectedHeight: try r["expected_height"].decode(Int.self), expectedExact: try r["expected_exact"].decode(Bool.self),
               owner: try r["owner"].decode(String.self))
    }

    static func task(_ db: PostgresSession, id: String, lock: Bool = false) throws -> TaskRow? {
        try db.rows("SELECT \(unescaped: TaskRow.columns) FROM tasks WHERE id = \(id)\(unescaped: lock ? " FOR UPDATE" : "")")
            .first.map(taskRow)
    }

    static func taskRow(_ r: PostgresRandomAccessRow) throws -> TaskRow {
        TaskRow(id: try r["id"].decode(String.self), jobId: try r["job_id"].decode(String.self), idx: try r["idx"].decode(Int.self),
                state: TaskPhase(rawValue: try r["state"].decode(String.self)) ?? .failed, model: try r["model"].decode(String.self),
                acceptedChannels: try r["accepted_channels"].decode(Int64.self), work: try r["work"].decode(Double.self),
                attempts: try r["attempts"].decode(Int.self), maxAttempts: try r["max_attempts"].decode(Int.self),
                fencingToken: try r["fencing_token"].decode(Int64.self), leaseDeadline: try r["lease_deadline"].decode(Int64?.self),
                workerId: try r["worker_id"].decode(String?.self), step: try r["step"].decode(Int.self),
                totalSteps: try r["total_steps"].decode(Int.self), lastError: try r["last_error"].decode(String.self),
                failures: try r["failures"].decode(Int.self), expiries: try r["expiries"].decode(Int.self),
                notBefore: try r["not_before"].decode(Int64.self), lostBy: try r["lost_by"].decode(String?.self))
    }

    static let workerColumns = """
        id, name, capabilities, registered, last_seen, completed, failed, slots, expiries, expiry_streak, quarantined_until, proven
        """

    static func worker(_ db: PostgresSession, id: String, lock: Bool = false) throws -> WorkerRow? {
        try db.rows("SELECT \(unescaped: workerColumns) FROM workers WHERE id = \(id)\(unescaped: lock ? " FOR UPDATE" : "")")
            .first.map(workerRow)
    }

    static func workerRow(_ r: PostgresRandomAccessRow) throws -> WorkerRow {
        WorkerRow(id: try r["id"].decode(String.self), name: try r["name"].decode(String.self),
                  capabilities: try r["capabilities"].decode(Data.self), registered: try r["registered"].decode(Int64.self),
                  lastSeen: try r["last_seen"].decode(Int64.self), completed: try r["completed"].decode(Int.self),
                  failed: try r["failed"].decode(Int.self), slots: try r["slots"].decode(Int.self),
                  expiries: try r["expiries"].decode(Int.self), expiryStreak: try r["expiry_streak"].decode(Int.self),
                  quarantinedUntil: try r["quarantined_until"].decode(Int64.self), proven: try r["proven"].decode(Bool.self))
    }

    static func int(_ db: PostgresSession, _ query: PostgresQuery) throws -> Int {
        guard let row = try db.rows(query).first else { return 0 }
        return try row.first?.decode(Int?.self) ?? 0
    }

    /// SQL: the worker model `m` has a UNet whose input channels the mask accepts (see
    /// `ChannelRequirement`), in PostgreSQL's operators.
    static func sqlFits(mask: String) -> String {
        "(m.unet_in_channels = 0 OR (m.unet_in_channels BETWEEN 1 AND 62 AND ((\(mask)::bigint >> m.unet_in_channels::int) & 1) = 1))"
    }

    static func sqlMatchesPin(job: String) -> String {
        "(\(job).weights_sha256 IS NULL OR (m.weights_sha256 = \(job).weights_sha256 AND m.numerics = \(job).numerics))"
    }
}
#endif
