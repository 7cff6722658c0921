import AtelierFarmProtocol
import Foundation
import GRDB

/// The embedded `CoordinatorStore`, and the default: one SQLite database, `DIR/atelier.sqlite`, opened as a GRDB
/// `DatabasePool` (WAL mode: status queries read a snapshot while a write transaction runs, and
/// all writes are serialised by GRDB's single writer), plus the result files under
/// `DIR/results/` (see `ResultStore`).
///
/// Everything the coordinator needs to continue after a crash lives here; opening a store on an
/// existing directory runs any pending migrations and carries on.
public final class SQLiteCoordinatorStore: CoordinatorStore, @unchecked Sendable {
    /// The policy the operations apply (lease TTL, budgets, blocklist, request-log limits).
    let options: CoordinatorOptions
    /// The coordinator directory.
    public let directory: URL
    public var databaseURL: URL { directory.appendingPathComponent("atelier.sqlite") }
    let pool: DatabasePool
    private let countLock = NSLock()
    private var writes = 0
    private var recordedSincePrune = 0

    /// Write transactions run since the store was opened: every one takes SQLite's single writer
    /// and, at `synchronous = FULL`, an fsync of the WAL. Reported so the cost of each kind of
    /// request can be counted (`CoordinatorWriteLoadTests`).
    public var writeTransactionCount: Int {
        countLock.lock()
        defer { countLock.unlock() }
        return writes
    }

    /// Opens (creating if needed) the store in `directory`.
    public init(directory: URL, options: CoordinatorOptions = CoordinatorOptions()) throws {
        self.directory = directory
        self.options = try options.validated()
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw CoordinatorError.internalError(
                "cannot create the coordinator directory \(directory.path): \(error.localizedDescription)")
        }
        var configuration = Configuration()
        configuration.label = "atelier.coordinator"
        // Wait for a concurrent process rather than failing at once (e.g. an inspection with the
        // sqlite3 shell); within this process GRDB serialises writers itself.
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            // A committed transaction survives power loss, not just a process crash: a completed
            // task must never be forgotten once its worker was told it succeeded.
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        pool = try DatabasePool(path: directory.appendingPathComponent("atelier.sqlite").path,
                                configuration: configuration)
        try CoordinatorSchema.migrator().migrate(pool)
    }

    /// Closes the database; later calls fail. Not needed before deinit, but lets a test (or a
    /// restart in-process) prove that nothing lives only in memory.
    public func close() throws {
        try pool.close()
    }

    /// Runs `updates` in one write transaction (serialised with every other write; rolled back if
    /// it throws).
    func write<T>(_ updates: (Database) throws -> T) throws -> T {
        countLock.lock()
        writes += 1
        countLock.unlock()
        do {
            return try pool.write(updates)
        } catch let error as DatabaseError {
            throw CoordinatorError.internalError("database error: \(error.message ?? "\(error)")")
        }
    }

    /// Runs `value` on a consistent snapshot, concurrently with other reads and the writer.
    func read<T>(_ value: (Database) throws -> T) throws -> T {
        do {
            return try pool.read(value)
        } catch let error as DatabaseError {
            throw CoordinatorError.internalError("database error: \(error.message ?? "\(error)")")
        }
    }

    /// Hands out the next fencing token. The counter is a row updated in the caller's
    /// transaction, so tokens are strictly increasing across restarts: a token is durable exactly
    /// when the lease that carries it is.
    func nextFencingToken(_ db: Database) throws -> UInt64 {
        try db.execute(sql: "UPDATE counters SET value = value + 1 WHERE name = 'fencing_token'")
        guard let value = try Int64.fetchOne(db, sql: "SELECT value FROM counters WHERE name = 'fencing_token'"),
              value > 0 else {
            throw CoordinatorError.internalError("the fencing token counter is missing from the database")
        }
        return UInt64(value)
    }

    /// The last fencing token handed out (0 before the first lease).
    public func lastFencingToken() throws -> UInt64 {
        try read { db in
            UInt64(max(try Int64.fetchOne(db, sql: "SELECT value FROM counters WHERE name = 'fencing_token'") ?? 0, 0))
        }
    }

    /// Runs a logged operation: in one write transaction, replays the stored response of
    /// `log.requestID` if there is one, or runs `change`, stores `respond(outcome)` under the id
    /// and commits both together. If `change` or `respond` throws, nothing is changed or stored.
    func recorded<Value>(_ log: LoggedRequest, now: Int64, _ change: (Database) throws -> Value,
                         respond: (Value) throws -> Atelier_V1_Response) throws -> Logged<Value> {
        let prune = shouldPruneRequestLog()
        return try write { db in
            if let stored = try RequestLog.lookup(db, requestID: log.requestID) {
                return .replayed(try RequestLog.replay(stored, requestID: log.requestID, fingerprint: log.fingerprint))
            }
            let value = try change(db)
            var response = try respond(value)
            response.protocolVersion = 1
            response.requestID = log.requestID
            try RequestLog.record(db, requestID: log.requestID, peer: log.peer, kind: log.kind,
                                  fingerprint: log.fingerprint, response: response, now: now)
            if prune { try pruneRequestLog(db, now: now) }
            return .ran(value, response)
        }
    }

    private func shouldPruneRequestLog() -> Bool {
        countLock.lock()
        defer { countLock.unlock() }
        recordedSincePrune += 1
        if recordedSincePrune >= 200 {
            recordedSincePrune = 0
            return true
        }
        return false
    }

    func pruneRequestLog(_ db: Database, now: Int64) throws {
        try RequestLog.prune(db, now: now, maxAge: Int64(options.requestLogMaxAge * 1000),
                             maxRows: options.requestLogMaxRows)
    }

    public func pruneRequestLog(now: Int64) throws {
        try write { db in try pruneRequestLog(db, now: now) }
    }

    public func loggedResponse(requestID: String) throws -> LoggedResponse? {
        try read { db in try RequestLog.lookup(db, requestID: requestID) }
    }
}
