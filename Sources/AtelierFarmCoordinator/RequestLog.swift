import AtelierFarmProtocol
import Foundation
import GRDB
import SwiftProtobuf

/// Remembers the response to every mutating request, keyed by request_id, so a resend (nng's
/// REQ socket resends when a reply is late or a pipe drops, possibly over a new connection,
/// hence from a different peer address) gets the first answer instead of doing the work twice:
/// a resent lease_task must not grant a second lease, a resent submit_job must not create a
/// second job.
///
/// The response is stored in the same transaction as the state change it reports, so either
/// both are durable or neither is. Lookups ignore the peer (it is kept for diagnostics); a
/// request_id reused for a *different* request (the fingerprint differs) is refused rather than
/// answered with an unrelated response.
enum RequestLog {
    static func lookup(_ db: Database, requestID: String) throws -> LoggedResponse? {
        guard let row = try Row.fetchOne(
            db, sql: "SELECT response, fingerprint, kind FROM requests WHERE request_id = ?", arguments: [requestID])
        else { return nil }
        let bytes: Data = row["response"] ?? Data()
        let response = try Atelier_V1_Response(serializedBytes: bytes)
        return LoggedResponse(response: response, fingerprint: row["fingerprint"] ?? 0, kind: row["kind"] ?? "")
    }

    static func record(_ db: Database, requestID: String, peer: String, kind: String, fingerprint: Int64,
                       response: Atelier_V1_Response, now: Int64) throws {
        let bytes: Data = try response.serializedBytes()
        try db.execute(sql: """
            INSERT OR REPLACE INTO requests (request_id, peer, kind, fingerprint, response, created)
            VALUES (?, ?, ?, ?, ?, ?)
            """, arguments: [requestID, peer, kind, fingerprint, bytes, now])
    }

    /// The stored response for a resend of `requestID`, or INVALID when the id was used for a
    /// different request (its fingerprint differs).
    static func replay(_ entry: LoggedResponse, requestID: String, fingerprint: Int64) throws -> Atelier_V1_Response {
        guard entry.fingerprint == fingerprint else {
            throw CoordinatorError.invalid(
                "request_id \(requestID) was already used for a different \(entry.kind) request; "
                + "use a fresh UUID for every new request (reuse it only to resend the identical request)")
        }
        return entry.response
    }

    /// Drops entries older than `maxAge` ms and all but the newest `maxRows`.
    static func prune(_ db: Database, now: Int64, maxAge: Int64, maxRows: Int) throws {
        try db.execute(sql: "DELETE FROM requests WHERE created < ?", arguments: [now - maxAge])
        try db.execute(sql: """
            DELETE FROM requests WHERE request_id IN (
                SELECT request_id FROM requests ORDER BY created DESC, rowid DESC LIMIT -1 OFFSET ?)
            """, arguments: [max(maxRows, 0)])
    }

    /// FNV-1a (64-bit) of the serialized request: cheap, stable across processes (unlike
    /// `Hasher`), and good enough to tell a resend from a different request under the same id.
    static func fingerprint(_ request: Atelier_V1_Request) -> Int64 {
        let bytes: [UInt8] = (try? request.serializedBytes()) ?? Array(request.requestID.utf8)
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return Int64(bitPattern: hash)
    }
}
