import AtelierFarmCoordinator
import AtelierFarmProtocol
import Foundation

/// What the HTTP side reads from the coordinator's store for one scrape or one page: every
/// worker (the listing paged through) and, for metrics, the store's counts. Reads only.
struct FarmReadings {
    /// Most workers read per scrape (pages of 500); a farm beyond it is shown truncated.
    static let maxWorkers = 20_000

    static func workers(of store: any CoordinatorStore, now: Date) throws -> [Atelier_V1_WorkerStatus] {
        var all = [Atelier_V1_WorkerStatus]()
        var after = ""
        let nowMs = Int64((now.timeIntervalSince1970 * 1000).rounded())
        while all.count < maxWorkers {
            let page = try store.listWorkers(afterWorkerID: after, limit: 500, now: nowMs)
            all += page.workers
            guard page.more, let last = page.workers.last else { break }
            after = last.workerID
        }
        return all
    }
}
