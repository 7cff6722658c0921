@testable import AtelierFarmCoordinator
@testable import AtelierFarmProtocol
import Foundation
import XCTest

/// The read-only snapshots behind the metrics endpoint and the status page, and the step rate
/// heartbeats store, checked on every store (declared in each store's conformance subclass).
extension StoreConformance {
    func checkMetricsSnapshotCountsQueueRetriesImagesAndFinishedJobs() throws {
        let store = try makeStore(options: options)
        let w = try register(store, "w")
        let job = try submit(store, batch(count: 3), options: options)
        let start = FinishedJobCursor(finishedUnixMs: 0)
        var m = try store.metricsSnapshot(finishedAfter: start, limit: 100)
        XCTAssertEqual(m.queue, [StoreMetrics.QueueDepth(state: "queued", model: "sd2", count: 3)])
        XCTAssertEqual(m.jobsByState, ["queued": 1])
        XCTAssertEqual(m.imagesCompleted, 0)
        XCTAssertEqual(m.finished, [])

        let a = try XCTUnwrap(try lease(store, w))
        let b = try XCTUnwrap(try lease(store, w))
        m = try store.metricsSnapshot(finishedAfter: start, limit: 100)
        XCTAssertEqual(m.queue, [StoreMetrics.QueueDepth(state: "leased", model: "sd2", count: 2),
                                 StoreMetrics.QueueDepth(state: "queued", model: "sd2", count: 1)])
        XCTAssertEqual(m.attemptOutcomes, ["running": 2])
        XCTAssertEqual(m.retries, 0)

        // One failed attempt, requeued and leased again: a retry and a failure of class "failed".
        _ = try store.fail(claim(a, w), class: .failed, message: "out of memory", now: t0 + 10, log: log("fail_task")) { Self.ok() }
        _ = try complete(store, b, w, now: t0 + 20)
        let again = try XCTUnwrap(try lease(store, w, now: t0 + 30))
        XCTAssertEqual(again.taskID, a.taskID)
        let c = try XCTUnwrap(try lease(store, w, now: t0 + 30))
        _ = try complete(store, again, w, now: t0 + 40)
        m = try store.metricsSnapshot(finishedAfter: start, limit: 100)
        XCTAssertEqual(m.retries, 1)
        XCTAssertEqual(m.attemptOutcomes["failed"], 1)
        XCTAssertEqual(m.attemptOutcomes["done"], 2)
        XCTAssertEqual(m.imagesCompleted, 2)
        XCTAssertEqual(m.queue, [StoreMetrics.QueueDepth(state: "leased", model: "sd2", count: 1)])
        XCTAssertEqual(m.finished, [], "the job is still running")

        _ = try complete(store, c, w, now: t0 + 5000)
        m = try store.metricsSnapshot(finishedAfter: start, limit: 100)
        XCTAssertEqual(m.queue, [], "a drained queue has no rows")
        XCTAssertEqual(m.imagesCompleted, 3)
        XCTAssertEqual(m.jobsByState, ["succeeded": 1])
        XCTAssertEqual(m.finished, [StoreMetrics.FinishedJob(jobID: job, state: "succeeded", createdUnixMs: t0,
                                                             finishedUnixMs: t0 + 5000)])
        let past = try store.metricsSnapshot(finishedAfter: FinishedJobCursor(after: m.finished[0]), limit: 100)
        XCTAssertEqual(past.finished, [], "the cursor moves past a job already read")

        let status = try store.jobStatus(jobID: job, includeTasks: false)
        XCTAssertEqual(status.model, "sd2", "job_status names the model")
        let requests = try store.jobRequests(jobIDs: [job, "no-such-job"])
        XCTAssertEqual(Array(requests.keys), [job])
        XCTAssertEqual(requests[job]?.batch.prompts, ["a lighthouse"])
    }

    func checkHeartbeatStoresTheWorkersStepRate() throws {
        let store = try makeStore(options: options)
        let w = try register(store, "w")
        _ = try submit(store, batch(count: 1), options: options)
        let a = try XCTUnwrap(try lease(store, w))
        XCTAssertEqual(try store.listWorkers(afterWorkerID: "", limit: 10, now: t0).workers.first?.stepsPerSecond, 0,
                       "unknown before the first heartbeat")
        _ = try store.heartbeat(claim(a, w), step: 4, totalSteps: 20, stepsPerSecond: 2.5, now: t0 + 100)
        XCTAssertEqual(try store.listWorkers(afterWorkerID: "", limit: 10, now: t0 + 100).workers.first?.stepsPerSecond, 2.5)
        _ = try store.heartbeat(claim(a, w), step: 5, totalSteps: 20, stepsPerSecond: .nan, now: t0 + 200)
        XCTAssertEqual(try store.listWorkers(afterWorkerID: "", limit: 10, now: t0 + 200).workers.first?.stepsPerSecond, 0,
                       "a rate that is not a number is stored as unknown")
        _ = try store.heartbeat(claim(a, w), step: 6, totalSteps: 20, stepsPerSecond: 1e300, now: t0 + 300)
        XCTAssertEqual(try store.listWorkers(afterWorkerID: "", limit: 10, now: t0 + 300).workers.first?.stepsPerSecond,
                       StepRateBounds.maxStepsPerSecond)
    }
}
