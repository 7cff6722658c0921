import AtelierDiffusion
import AtelierFarm
import Foundation
import XCTest

/// A real `atelier worker` process stopped or troubled mid-task, against a real coordinator.
final class FarmWorkerLifecycleTests: XCTestCase {
    private var cluster: FarmCluster?

    override func tearDown() {
        shutDown(&cluster)
        super.tearDown()
    }

    private func submit(_ farm: FarmCluster, _ client: FarmClient, steps: UInt32) throws -> String {
        var batch = Atelier_V1_BatchJob()
        batch.prompts = ["a lighthouse at dusk"]
        batch.count = 1
        batch.params.model = "base"
        batch.params.seed = 7
        batch.params.steps = steps
        batch.params.width = 64
        batch.params.height = 64
        let response = try farm.call(client, .submitJob(.with { $0.batch = batch }))
        XCTAssertFalse(response.hasError, response.error.message)
        return response.submitJob.jobID
    }

    /// SIGTERM mid-render: the worker hands its lease back (release_task) and exits; the task is
    /// queued again at once, with no attempt charged and no expiry — long before the lease
    /// (30 s + the work estimate) would have run out.
    func testWorkerStoppedWithSIGTERMReleasesItsTaskAtOnce() throws {
        let farm = try FarmCluster(testName: name)
        cluster = farm
        try farm.startCoordinator(leaseSeconds: 30)
        let worker = try farm.startWorker(name: "stopper", models: [("base", FarmProcessSupport.tinyBase)])
        let id = try XCTUnwrap(try farm.waitForWorkers(["stopper"])["stopper"])
        let client = try farm.client()
        let job = try submit(farm, client, steps: 300)
        _ = try FarmProcessSupport.poll("the task to be leased", timeout: 15, interval: 0.05) { () -> Bool? in
            try farm.jobStatus(client, job).tasks.first.map { $0.state == .leased && $0.workerID == id } == true ? true : nil
        }
        Thread.sleep(forTimeInterval: 1)  // rendering by now
        let stoppedAt = Date()
        kill(worker.pid, SIGTERM)
        let status = worker.waitForExit(timeout: 10)
        XCTAssertEqual(status, 0, "the worker exits cleanly after releasing\n\(worker.tail())")
        let task = try FarmProcessSupport.poll("the task to be queued again", timeout: 5, interval: 0.05) {
            () -> Atelier_V1_TaskStatus? in
            try farm.jobStatus(client, job).tasks.first.flatMap { $0.state == .queued ? $0 : nil }
        }
        XCTAssertLessThan(Date().timeIntervalSince(stoppedAt), 10, "requeued at once, not after the lease ran out")
        XCTAssertEqual(task.attempts, 0, "a released lease is not charged")
        XCTAssertEqual(task.leaseExpiries, 0)
        XCTAssertTrue(worker.stderr.contains("released \(task.taskID)"), worker.tail())
        let errors = try farm.jobStatus(client, job).errors
        XCTAssertFalse(errors.contains { $0.contains("expired") }, "\(errors)")
    }

    /// complete_task answered INTERNAL (the coordinator cannot write results: here its results
    /// folder is a file, as good as a full disk): the worker keeps the finished render and
    /// retries with the same request id until the coordinator can take it. One attempt, no
    /// expiry, no second render.
    func testWorkerRetriesCompletionAfterInternalErrorWithTheSameRequestID() throws {
        let farm = try FarmCluster(testName: name)
        cluster = farm
        try FileManager.default.createDirectory(at: farm.dataDir, withIntermediateDirectories: true)
        let blocker = farm.dataDir.appendingPathComponent("results")
        XCTAssertTrue(FileManager.default.createFile(atPath: blocker.path, contents: Data("not a folder".utf8)))
        try farm.startCoordinator(leaseSeconds: 30)
        let worker = try farm.startWorker(name: "patient", models: [("base", FarmProcessSupport.tinyBase)])
        try farm.waitForWorkers(["patient"])
        let client = try farm.client()
        let job = try submit(farm, client, steps: 10)
        _ = try FarmProcessSupport.poll("the worker to be told INTERNAL", timeout: 20, interval: 0.05) { () -> Bool? in
            worker.stderr.contains("got internal") || worker.stderr.contains("got INTERNAL") ? true : nil
        }
        try FileManager.default.removeItem(at: blocker)  // disk space is back
        let status = try FarmProcessSupport.poll("the job to succeed", timeout: 15, interval: 0.1) { () -> Atelier_V1_JobStatus? in
            let s = try farm.jobStatus(client, job)
            return s.state == .succeeded || s.state == .failed ? s : nil
        }
        XCTAssertEqual(status.state, .succeeded, "\(status.errors)")
        XCTAssertEqual(status.tasks.first?.attempts, 1, "the same lease delivered its render")
        XCTAssertEqual(status.tasks.first?.leaseExpiries, 0)
        XCTAssertTrue(status.errors.isEmpty, "\(status.errors)")
        XCTAssertTrue(worker.stderr.contains("retrying with the same request id"), worker.tail())
    }
}
