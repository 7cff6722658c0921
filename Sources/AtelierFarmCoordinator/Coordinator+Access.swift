import AtelierFarmProtocol
import Foundation

/// Access control and drain_worker. With `CoordinatorOptions.accessTokens` nil (no `--tokens`)
/// access is open, as before tokens existed; otherwise every request must carry a known token
/// (UNAUTHENTICATED), of a role allowed to send it (PERMISSION_DENIED), and:
/// - cancel_job with a submit token only for a job that token submitted;
/// - a worker request only from the token that registered that worker id, so a guessed worker id
///   plus a fencing token read off the wire is not enough to complete someone else's lease.
///
/// Checked once, in `dispatch`, before the request log is consulted: a resend is replayed only
/// to a caller that may send the request at all.
extension Coordinator {
    /// The authenticated caller, nil when access is open.
    /// - Throws: `CoordinatorError` UNAUTHENTICATED or PERMISSION_DENIED.
    func authorize(_ request: Atelier_V1_Request, _ body: Atelier_V1_Request.OneOf_Body) throws -> AccessCaller? {
        guard let tokens = options.accessTokens else { return nil }
        let kind = Coordinator.kindName(body)
        guard !request.authToken.isEmpty else {
            throw CoordinatorError(.unauthenticated,
                                   "\(kind) needs a token: this coordinator runs with --tokens; pass --token, --token-file or set ATELIER_TOKEN")
        }
        guard let caller = tokens.authenticate(request.authToken) else {
            throw CoordinatorError(.unauthenticated, "the token is not one this coordinator knows (is it in its --tokens file?)")
        }
        guard AccessPolicy.allows(caller.role, body) else {
            let roles = AccessPolicy.roles(for: body).map(\.rawValue).joined(separator: " or ")
            let article = roles.hasPrefix("a") ? "an" : "a"
            throw CoordinatorError(.permissionDenied,
                                   "token \"\(caller.name)\" has role \(caller.role.rawValue); \(kind) needs \(article) \(roles) token")
        }
        if case .cancelJob(let r) = body, caller.role != .admin {
            let owner = try store.jobStatus(jobID: r.jobID, includeTasks: false).owner
            guard owner == caller.name else {
                throw CoordinatorError(.permissionDenied,
                                       "job \(r.jobID) was not submitted with token \"\(caller.name)\"; only its owner or an admin may cancel it")
            }
        }
        if let workerID = AccessPolicy.workerID(of: body), !workerID.isEmpty,
           let access = try store.workerAccess(workerID: workerID), access.tokenName != caller.name {
            let how = access.tokenName.isEmpty ? "registered without a token (before --tokens)" : "registered with another token"
            throw CoordinatorError(.permissionDenied,
                                   "worker \(workerID) \(how); token \"\(caller.name)\" may not act for it")
        }
        return caller
    }

    /// The name of the token `request` carries ('' when access is open or it carries none that is
    /// known): the owner of a submitted job, the binding of a registered worker.
    func callerName(_ request: Atelier_V1_Request) -> String {
        options.accessTokens?.authenticate(request.authToken)?.name ?? ""
    }

    /// drain_worker: the worker gets no new leases (lease_task answers PERMISSION_DENIED
    /// "draining", which the worker takes as its cue to exit) and `drain` on its heartbeats; the
    /// task it holds runs to the end.
    func drainWorker(_ r: Atelier_V1_DrainWorkerRequest) throws -> Atelier_V1_Response {
        guard !r.workerID.isEmpty, r.workerID.utf8.count <= 128 else {
            throw CoordinatorError.invalid("worker_id must be 1…128 bytes (see `atelier workers`)")
        }
        guard let status = try store.drainWorker(workerID: r.workerID, now: unixMilliseconds(now())) else {
            throw CoordinatorError.notFound("no worker \"\(r.workerID)\" (`atelier workers` lists the known ones)")
        }
        var body = Atelier_V1_DrainWorkerResponse()
        body.worker = status
        return Coordinator.success(.drainWorker(body))
    }

    /// The message of the refusal a draining worker gets instead of a lease; `FarmWorker` exits on it.
    public static let drainingMessage = "draining"

    /// PERMISSION_DENIED "draining…" when `workerID` is draining.
    func refuseLeaseIfDraining(_ workerID: String) throws {
        if let access = try store.workerAccess(workerID: workerID), access.draining {
            throw CoordinatorError(.permissionDenied,
                                   "\(Coordinator.drainingMessage): worker \(workerID) was drained by an admin and gets no new leases")
        }
    }

    /// Whether `workerID` is draining (heartbeats tell the worker).
    func isDraining(_ workerID: String) -> Bool {
        (try? store.workerAccess(workerID: workerID))??.draining ?? false
    }
}
