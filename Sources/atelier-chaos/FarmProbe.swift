import AtelierFarm
import Foundation

/// The suite's own protocol client: submits jobs, watches them and fetches results over the
/// same nng REQ socket a CLI uses. Every call has a bounded timeout; calls made while the
/// coordinator is down (the suite kills it on purpose) are retried with the same request id.
final class FarmProbe: @unchecked Sendable {
    let client: FarmClient

    init(address: String) throws {
        client = try FarmClient(address: address, defaultTimeout: .seconds(10))
    }

    func close() { client.close() }

    /// One logical request; retried with its request id until answered or `patience` runs out.
    /// An INTERNAL answer (the coordinator's disk is full, say — the suite fills it on purpose)
    /// changed nothing, so it is retried the same way, as Protocols/README §8 tells clients to.
    func call(_ body: Atelier_V1_Request.OneOf_Body, patience: TimeInterval = 60,
              timeout: Duration = .seconds(5)) throws -> Atelier_V1_Response {
        var request = Atelier_V1_Request()
        request.protocolVersion = FarmClient.protocolVersion
        request.requestID = UUID().uuidString
        request.body = body
        let deadline = Date().addingTimeInterval(patience)
        while true {
            do {
                let response = try client.call(request, timeout: timeout)
                if response.hasError, response.error.code == .internal, Date() < deadline {
                    Thread.sleep(forTimeInterval: 0.5)
                    continue
                }
                return response
            } catch {
                if Date() >= deadline { throw SuiteError("no answer from the coordinator within \(Int(patience)) s: \(error)") }
                Thread.sleep(forTimeInterval: 0.2)
            }
        }
    }

    /// The body of a successful response, or a `SuiteError` naming the error.
    func ok(_ body: Atelier_V1_Request.OneOf_Body, patience: TimeInterval = 60) throws -> Atelier_V1_Response {
        let response = try call(body, patience: patience)
        if response.hasError { throw SuiteError("\(response.error.code): \(response.error.message)") }
        return response
    }

    func submit(_ batch: Atelier_V1_BatchJob) throws -> (jobID: String, tasks: Int) {
        let r = try ok(.submitJob(.with { $0.batch = batch }))
        return (r.submitJob.jobID, Int(r.submitJob.taskCount))
    }

    func status(_ jobID: String, tasks: Bool = false) throws -> Atelier_V1_JobStatus {
        try ok(.jobStatus(.with { $0.jobID = jobID; $0.includeTasks = tasks })).jobStatus.job
    }

    /// Every registered worker (all pages).
    func workers() throws -> [Atelier_V1_WorkerStatus] {
        var all = [Atelier_V1_WorkerStatus](), after = ""
        repeat {
            let page = try ok(.listWorkers(.with { $0.limit = 1000; $0.afterWorkerID = after })).listWorkers
            all += page.workers
            after = page.nextAfterWorkerID
        } while !after.isEmpty
        return all
    }

    /// The PNG of image `index`, or nil when the coordinator has none (NOT_FOUND).
    func fetch(_ jobID: String, _ index: Int) throws -> Data? {
        let r = try call(.fetchResult(.with { $0.jobID = jobID; $0.index = UInt32(index) }))
        if r.hasError {
            if r.error.code == .notFound { return nil }
            throw SuiteError("fetch_result \(jobID)/\(index): \(r.error.code): \(r.error.message)")
        }
        return r.fetchResult.png
    }

    static func isTerminal(_ state: Atelier_V1_JobState) -> Bool {
        state == .succeeded || state == .failed || state == .cancelled
    }
}
