import ArgumentParser
import Foundation
import AtelierFarm

/// `atelier drain WORKER_ID` (admin): the worker finishes its current task, takes no new one,
/// and exits 0.
struct DrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drain",
        abstract: "Drain a worker: it finishes its current task, takes no new ones, and exits (admin token).",
        discussion: "`atelier workers` lists worker ids; a drained worker shows as draining until it exits.")
    @OptionGroup var farm: CoordinatorOption
    @Argument(help: "Worker id (from `atelier workers`).") var workerID: String

    func run() throws {
        let client = try farm.client()
        defer { client.close() }
        let w = try farmCall(client, .drainWorker(.with { $0.workerID = workerID })).drainWorker.worker
        print("\(w.workerID) draining\(w.currentTaskID.isEmpty ? "" : " after \(w.currentTaskID)")")
    }
}
