#if PostgreSQL  // the trait (Package.swift); off, the coordinator builds without postgres-nio
import Foundation
import PostgresNIO

/// Active/standby coordinators on one PostgreSQL database: one row, `atelier_leader`, names the
/// coordinator that serves and until when. The active renews it well before it lapses; a standby
/// tries to take it and gets it only once it has lapsed (its holder was killed, stopped or cut
/// off from the database), then starts serving. Each change of holder increments `epoch`.
///
/// The lease decides who *serves*, not who may write: the store's own locks keep the queue correct
/// even if two coordinators ever serve at once (say, one paused past its lease that has not yet
/// noticed), so the lease only has to be live, never perfect.
extension PostgresCoordinatorStore {
    /// Who holds the leadership now.
    public struct Leadership: Sendable, Equatable {
        public var holder: String
        public var epoch: Int64
        public var expiresUnixMs: Int64
    }

    /// Takes or renews the leadership for `holder` until `now + ttlMs`: succeeds when nobody holds
    /// it, when `holder` already does (a renewal), or when the lease has lapsed (a takeover, which
    /// increments the epoch). Atomic (one statement on a row lock). Returns the leadership after
    /// the attempt: `holder` is the caller exactly when it leads.
    public func acquireLeadership(holder: String, ttlMs: Int64, now: Int64) throws -> Leadership {
        try write { db in
            let expires = now + max(ttlMs, 1)
            try db.execute("""
                INSERT INTO atelier_leader (id, holder, epoch, expires) VALUES (1, \(holder), 1, \(expires))
                ON CONFLICT (id) DO UPDATE SET
                    epoch = atelier_leader.epoch + CASE WHEN atelier_leader.holder = excluded.holder THEN 0 ELSE 1 END,
                    holder = excluded.holder, expires = excluded.expires
                WHERE atelier_leader.holder = excluded.holder OR atelier_leader.expires < \(now)
                """)
            guard let row = try db.rows("SELECT holder, epoch, expires FROM atelier_leader WHERE id = 1").first else {
                throw CoordinatorError.internalError("the leader row is missing")
            }
            return Leadership(holder: try row["holder"].decode(String.self), epoch: try row["epoch"].decode(Int64.self),
                              expiresUnixMs: try row["expires"].decode(Int64.self))
        }
    }

    /// Gives the leadership up at once if `holder` has it (a clean shutdown: the standby need not
    /// wait for the lease to lapse).
    public func resignLeadership(holder: String) throws {
        try write { db in
            try db.execute("UPDATE atelier_leader SET expires = 0 WHERE id = 1 AND holder = \(holder)")
        }
    }
}
#endif
