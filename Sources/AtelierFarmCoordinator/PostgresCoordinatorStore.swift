#if PostgreSQL  // the trait (Package.swift); off, the coordinator builds without postgres-nio
import AtelierFarmProtocol
import Foundation
import Logging
import PostgresNIO

/// A `CoordinatorStore` in a PostgreSQL database (`atelier coordinator --store postgres://…`), for
/// farms that keep their state in a database they already operate.
///
/// Correctness does not rest on a single writer: transactions run at READ COMMITTED on many
/// connections at once (and from several coordinator processes), so every check-then-act is made
/// safe by a lock taken inside its transaction:
/// - leasing picks candidate tasks with `FOR UPDATE OF t SKIP LOCKED` (concurrent leasers skip each
///   other's candidates instead of waiting, and never grant one task twice), after locking the
///   worker's row (its slot count cannot be overrun by its own concurrent polls);
/// - fencing tokens come from a sequence (`atelier_fencing_token`): unique and increasing;
/// - an operation on a lease locks the task row (`FOR UPDATE`) before checking the token, and a
///   completion locks its job's row first (so the last two completions of a job cannot each miss
///   the other, and the job succeeds exactly once);
/// - the queue cap serialises submissions on a transaction advisory lock;
/// - a logged request takes an advisory lock on its request id, so a resend racing its original
///   waits and then replays the stored response.
/// A transaction that PostgreSQL aborts as a deadlock victim or serialisation failure is retried
/// from the start (it changed nothing).
///
/// The queries run through PostgresNIO's future-based API and are waited for on the calling
/// thread: the coordinator's operations are synchronous, called from transport and GCD threads
/// (never from Swift concurrency's cooperative pool, which must not block).
public final class PostgresCoordinatorStore: CoordinatorStore, @unchecked Sendable {
    let options: CoordinatorOptions
    let logger: Logger
    private let configuration: PostgresConnection.Configuration
    private let condition = NSCondition()
    private var idle = [PostgresConnection]()
    private var open = 0
    private var closed = false
    private let maxConnections: Int
    private var writes = 0
    private var recordedSincePrune = 0
    private var nextConnectionID = 0

    /// Opens a store on the database at `url` (`postgres://user[:password]@host[:port]/database`,
    /// or `?host=/socket/dir`), creating its tables if they are missing.
    /// - Parameter maxConnections: connections kept open at most (operations beyond wait).
    public init(url: String, options: CoordinatorOptions = CoordinatorOptions(), maxConnections: Int = 16) throws {
        self.options = try options.validated()
        self.configuration = try PostgresCoordinatorStore.configuration(url)
        self.maxConnections = max(maxConnections, 1)
        var logger = Logger(label: "atelier.coordinator.postgres")
        logger.logLevel = .critical
        self.logger = logger
        try PostgresSchema.migrate(self)
    }

    /// Parses a `postgres://` / `postgresql://` URL. TLS is not used (a loopback or private
    /// network; put the database behind a TLS tunnel otherwise).
    static func configuration(_ url: String) throws -> PostgresConnection.Configuration {
        guard let components = URLComponents(string: url),
              components.scheme == "postgres" || components.scheme == "postgresql" else {
            throw CoordinatorError.invalid("the store URL \"\(url)\" is not postgres://user@host:port/database")
        }
        let user = components.user.flatMap { $0.removingPercentEncoding } ?? "postgres"
        let password = components.password.flatMap { $0.removingPercentEncoding }
        var database = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        if database.isEmpty { database = user }
        if let socketDir = components.queryItems?.first(where: { $0.name == "host" })?.value, socketDir.hasPrefix("/") {
            let port = components.port ?? 5432
            return .init(unixSocketPath: "\(socketDir)/.s.PGSQL.\(port)", username: user, password: password, database: database)
        }
        guard let host = components.host, !host.isEmpty else {
            throw CoordinatorError.invalid("the store URL \"\(url)\" names no host")
        }
        return .init(host: host, port: components.port ?? 5432, username: user, password: password,
                     database: database, tls: .disable)
    }

    public var writeTransactionCount: Int {
        condition.lock()
        defer { condition.unlock() }
        return writes
    }

    public func close() throws {
        condition.lock()
        closed = true
        let connections = idle
        idle = []
        condition.broadcast()
        condition.unlock()
        for connection in connections { let closing: EventLoopFuture<Void> = connection.close(); try? closing.wait() }
    }

    // MARK: Connections and transactions

    private func checkout() throws -> PostgresConnection {
        condition.lock()
        while true {
            if closed {
                condition.unlock()
                throw CoordinatorError.internalError("the PostgreSQL store is closed")
            }
            if let connection = idle.popLast() {
                condition.unlock()
                if connection.isClosed {
                    condition.lock()
                    open -= 1
                    continue
                }
                return connection
            }
            if open < maxConnections {
                open += 1
                nextConnectionID += 1
                let id = nextConnectionID
                condition.unlock()
                do {
                    return try PostgresConnection.connect(on: PostgresConnection.defaultEventLoopGroup.any(),
                                                          configuration: configuration, id: id, logger: logger).wait()
                } catch {
                    condition.lock()
                    open -= 1
                    condition.signal()
                    condition.unlock()
                    throw CoordinatorError.internalError("cannot connect to PostgreSQL: \(PostgresCoordinatorStore.describe(error))")
                }
            }
            condition.wait()
        }
    }

    private func checkin(_ connection: PostgresConnection, broken: Bool) {
        condition.lock()
        if broken || closed || connection.isClosed {
            open -= 1
            condition.unlock()
            let closing: EventLoopFuture<Void> = connection.close()
            _ = closing
            condition.lock()
        } else {
            idle.append(connection)
        }
        condition.signal()
        condition.unlock()
    }

    /// Runs `body` in one transaction (`write`: READ COMMITTED; otherwise a REPEATABLE READ READ
    /// ONLY snapshot), committing if it returns and rolling back if it throws; retried from the
    /// start when PostgreSQL aborts it as a deadlock victim or serialisation failure.
    func transaction<T>(write: Bool, _ body: (PostgresSession) throws -> T) throws -> T {
        if write {
            condition.lock()
            writes += 1
            condition.unlock()
        }
        var attempt = 0
        while true {
            attempt += 1
            let connection = try checkout()
            let session = PostgresSession(connection: connection, logger: logger)
            var broken = false
            do {
                try session.execute(write ? "BEGIN" : "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                let value = try body(session)
                try session.execute("COMMIT")
                checkin(connection, broken: false)
                return value
            } catch {
                do { try session.execute("ROLLBACK") } catch { broken = true }
                checkin(connection, broken: broken)
                if let code = PostgresCoordinatorStore.sqlState(error), code == "40P01" || code == "40001", attempt < 20 {
                    continue
                }
                if error is CoordinatorError { throw error }
                throw CoordinatorError.internalError("database error: \(PostgresCoordinatorStore.describe(error))")
            }
        }
    }

    func write<T>(_ body: (PostgresSession) throws -> T) throws -> T { try transaction(write: true, body) }
    func read<T>(_ body: (PostgresSession) throws -> T) throws -> T { try transaction(write: false, body) }

    static func sqlState(_ error: Error) -> String? {
        (error as? PSQLError)?.serverInfo?[.sqlState]
    }

    static func describe(_ error: Error) -> String {
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] { return message }
            return "\(error.code)"
        }
        return "\(error)"
    }

    // MARK: Request log

    /// A logged operation (see `CoordinatorStore`): an advisory lock on the request id serialises
    /// a resend with its original; the stored response is replayed, or `change` runs and its
    /// response is stored in the same transaction.
    func recorded<Value>(_ log: LoggedRequest, now: Int64, _ change: (PostgresSession) throws -> Value,
                         respond: (Value) throws -> Atelier_V1_Response) throws -> Logged<Value> {
        let prune = shouldPruneRequestLog()
        return try write { db in
            try db.execute("SELECT pg_advisory_xact_lock(1, hashtext(\(log.requestID)))")
            if let stored = try PostgresCoordinatorStore.lookup(db, requestID: log.requestID) {
                return .replayed(try RequestLog.replay(stored, requestID: log.requestID, fingerprint: log.fingerprint))
            }
            let value = try change(db)
            var response = try respond(value)
            response.protocolVersion = 1
            response.requestID = log.requestID
            let bytes: Data = try response.serializedBytes()
            try db.execute("""
                INSERT INTO requests (request_id, peer, kind, fingerprint, response, created)
                VALUES (\(log.requestID), \(log.peer), \(log.kind), \(log.fingerprint), \(bytes), \(now))
                ON CONFLICT (request_id) DO UPDATE SET peer = excluded.peer, kind = excluded.kind,
                    fingerprint = excluded.fingerprint, response = excluded.response, created = excluded.created
                """)
            if prune { try pruneRequestLog(db, now: now) }
            return .ran(value, response)
        }
    }

    private func shouldPruneRequestLog() -> Bool {
        condition.lock()
        defer { condition.unlock() }
        recordedSincePrune += 1
        if recordedSincePrune >= 200 {
            recordedSincePrune = 0
            return true
        }
        return false
    }

    static func lookup(_ db: PostgresSession, requestID: String) throws -> LoggedResponse? {
        guard let row = try db.rows("SELECT response, fingerprint, kind FROM requests WHERE request_id = \(requestID)").first
        else { return nil }
        let response = try Atelier_V1_Response(serializedBytes: try row["response"].decode(Data.self))
        return LoggedResponse(response: response, fingerprint: try row["fingerprint"].decode(Int64.self),
                              kind: try row["kind"].decode(String.self))
    }

    func pruneRequestLog(_ db: PostgresSession, now: Int64) throws {
        let oldest = now - Int64(options.requestLogMaxAge * 1000)
        try db.execute("DELETE FROM requests WHERE created < \(oldest)")
        try db.execute("""
            DELETE FROM requests WHERE request_id IN (
                SELECT request_id FROM requests ORDER BY created DESC, request_id DESC OFFSET \(max(options.requestLogMaxRows, 0)))
            """)
    }

    public func pruneRequestLog(now: Int64) throws {
        try write { db in try pruneRequestLog(db, now: now) }
    }

    public func loggedResponse(requestID: String) throws -> LoggedResponse? {
        try read { db in try PostgresCoordinatorStore.lookup(db, requestID: requestID) }
    }

    public func lastFencingToken() throws -> UInt64 {
        try read { db in
            guard let row = try db.rows("SELECT last_value, is_called FROM atelier_fencing_token").first else { return 0 }
            return try row["is_called"].decode(Bool.self) ? UInt64(max(try row["last_value"].decode(Int64.self), 0)) : 0
        }
    }
}

/// One connection inside a transaction: queries waited for on the calling thread.
struct PostgresSession {
    let connection: PostgresConnection
    let logger: Logger

    @discardableResult
    func execute(_ query: PostgresQuery) throws -> Int {
        try connection.query(query, logger: logger).wait().metadata.rows ?? 0
    }

    func rows(_ query: PostgresQuery) throws -> [PostgresRandomAccessRow] {
        try connection.query(query, logger: logger).wait().rows.map { $0.makeRandomAccess() }
    }
}
#endif
