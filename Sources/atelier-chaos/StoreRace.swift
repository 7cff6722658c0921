import AtelierFarm
import ArgumentParser
import Foundation

/// `atelier-chaos store-race`: one contender of a lease race across processes. Opens a
/// `CoordinatorStore` (an SQLite coordinator directory, or a postgres:// URL), registers itself
/// as a worker, and leases and completes tasks until the store says wait; prints one line per
/// lease, `TASK TOKEN`. The store conformance suite starts several of these at once on one store
/// and checks that no task was leased twice (`checkLeaseRaceAcrossProcessesNeverLeasesATaskTwice`).
struct StoreRace: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store-race",
        abstract: "Lease and complete tasks from a coordinator store until none is left (one racer of a multi-process test).")

    @Option(help: "An SQLite coordinator directory, or a postgres://USER@HOST:PORT/DATABASE URL.")
    var store: String

    @Option(help: "This racer's worker name.")
    var name: String

    func run() throws {
        var options = CoordinatorOptions()
        options.leaseTTL = 600
        let store: any CoordinatorStore
        if self.store.hasPrefix("postgres") {
            #if PostgreSQL
            store = try PostgresCoordinatorStore(url: self.store, options: options, maxConnections: 2)
            #else
            throw ValidationError("built without the PostgreSQL trait: rebuild with the default traits for a postgres:// store")
            #endif
        } else {
            store = try SQLiteCoordinatorStore(directory: URL(fileURLWithPath: self.store), options: options)
        }
        defer { try? store.close() }
        var caps = Atelier_V1_WorkerCapabilities()
        var model = Atelier_V1_ModelInfo()
        model.name = "sd2"
        model.unetInChannels = 4
        caps.models = [model]
        caps.hostname = name
        var counter = 0
        func log(_ kind: String) -> LoggedRequest {
            counter += 1
            return LoggedRequest(requestID: "\(name)-\(kind)-\(counter)-\(UUID().uuidString)", kind: kind, peer: name,
                                 fingerprint: Int64(counter))
        }
        let now = { Int64(Date().timeIntervalSince1970 * 1000) }
        let worker = try store.registerWorker(WorkerRegistration(workerID: "", name: name, capabilities: caps, slots: 64),
                                              now: now(), log: log("register_worker")) { _ in Atelier_V1_Response() }.outcome ?? ""
        while let lease = try store.leaseNext(worker: worker, now: now(), log: log("lease_task"), respond: { _ in Atelier_V1_Response() })
                .outcome?.lease {
            // Printed before the completion, so a lease whose completion is refused still counts.
            FileHandle.standardOutput.write(Data("\(lease.taskID) \(lease.fencingToken)\n".utf8))
            _ = try store.complete(LeaseClaim(taskID: lease.taskID, workerID: worker, token: lease.fencingToken),
                                   result: StoredResult(path: "results/\(lease.taskID).png", bytes: 1), file: ResultFileHooks(),
                                   now: now(), log: log("complete_task")) { _ in Atelier_V1_Response() }
        }
    }
}
