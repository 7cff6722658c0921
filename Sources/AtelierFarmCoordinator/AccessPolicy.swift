import AtelierFarmProtocol

/// Which role may send which request (Protocols/README.md, "Access control"). Pure, so the
/// table is one place to read and test; ownership (a submit token cancels only its own jobs, a
/// worker id answers only to the token that registered it) needs the store and is checked in
/// `Coordinator.authorize`.
public enum AccessPolicy {
    /// Whether `role` may send a request with this body at all.
    public static func allows(_ role: AccessRole, _ body: Atelier_V1_Request.OneOf_Body) -> Bool {
        switch role {
        case .admin:
            return true
        case .submit:
            switch body {
            case .submitJob, .jobStatus, .listJobs, .listWorkers, .fetchResult, .cancelJob, .watchJob: return true
            default: return false
            }
        case .work:
            switch body {
            case .registerWorker, .leaseTask, .heartbeat, .completeTask, .failTask, .releaseTask: return true
            default: return false
            }
        }
    }

    /// The roles that may send it, for refusal messages ("needs a work or admin token").
    public static func roles(for body: Atelier_V1_Request.OneOf_Body) -> [AccessRole] {
        AccessRole.allCases.filter { allows($0, body) }
    }

    /// The worker id a worker request acts for (nil for other requests).
    static func workerID(of body: Atelier_V1_Request.OneOf_Body) -> String? {
        switch body {
        case .registerWorker(let r): return r.workerID
        case .leaseTask(let r): return r.workerID
        case .heartbeat(let r): return r.workerID
        case .completeTask(let r): return r.workerID
        case .failTask(let r): return r.workerID
        case .releaseTask(let r): return r.workerID
        default: return nil
        }
    }
}
