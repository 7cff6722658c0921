@testable import AtelierFarmCoordinator
@testable import AtelierFarmProtocol
@testable import AtelierFarmTransport
@testable import AtelierFarmWorker
import Foundation
import XCTest

/// Peers that lease without working: slots bound what one worker holds, expiries lead to
/// quarantine, and tasks that lost a lease go to workers that proved they work.
final class CoordinatorHoardingTests: XCTestCase {
    /// A worker never holds more leases than its declared slots (0 counts as 1).
    func testWorkerHoldingItsSlotsGetsNoFurtherLease() throws {
        let h = try CoordinatorHarness()
        let single = h.register("single", slots: 0)
        let triple = h.register("triple", slots: 3)
        _ = h.submit(h.batch(count: 10))
        let held = try XCTUnwrap(h.lease(single))
        let refused = h.leaseResponse(single)
        XCTAssertFalse(refused.hasError)
        XCTAssertFalse(refused.leaseTask.hasLease, "slots 0 means one lease at a time")
        XCTAssertGreaterThan(refused.leaseTask.retryAfterMs, 0)
        for _ in 0..<3 { XCTAssertNotNil(h.lease(triple)) }
        XCTAssertNil(h.lease(triple), "three slots, three leases")
        XCTAssertFalse(h.complete(single, held).hasError)
        XCTAssertNotNil(h.lease(single), "a free slot again")
        let listed = h.send(.listWorkers(.init())).listWorkers.workers
        XCTAssertEqual(listed.first { $0.workerID == triple }?.leases, 3)

        var tooMany = Atelier_V1_RegisterWorkerRequest()
        tooMany.workerName = "greedy"
        tooMany.capabilities.slots = 100_000
        tooMany.capabilities.models = [.with { $0.name = "sd2"; $0.unetInChannels = 4 }]
        XCTAssertEqual(h.send(.registerWorker(tooMany)).error.code, .invalidArgument)
    }

    /// The peer: registers (with its id, as the protocol says) and leases in a loop
    /// without ever heartbeating, next to one healthy worker. It holds one lease at most, is
    /// quarantined after its leases keep expiring, and the job finishes with the default options.
    func testPeerLeasingInALoopWithoutHeartbeatsCannotStarveAJob() throws {
        let h = try CoordinatorHarness()
        let healthy = h.register("healthy", slots: 0)
        var hoarder = h.register("hoarder", slots: 0)
        let job = h.submit(h.batch(count: 24))
        var mostHeld = 0, quarantined = false, rounds = 0
        while h.status(job, tasks: false).state != .succeeded, rounds < 500 {
            rounds += 1
            hoarder = h.register("hoarder", id: hoarder, slots: 0)
            for _ in 0..<5 { _ = h.leaseResponse(hoarder) }
            let status = h.status(job)
            XCTAssertNotEqual(status.state, .failed, "\(status.errors)")
            if status.state == .failed { break }
            mostHeld = max(mostHeld, status.tasks.filter { $0.state == .leased && $0.workerID == hoarder }.count)
            let hoarderStatus = h.send(.listWorkers(.init())).listWorkers.workers.first { $0.workerID == hoarder }
            quarantined = quarantined || (hoarderStatus?.quarantinedUntilUnixMs ?? 0) > 0
            if let lease = h.lease(healthy) {
                XCTAssertFalse(h.heartbeat(healthy, lease).hasError)
                XCTAssertFalse(h.complete(healthy, lease).hasError)
            }
            h.clock.advance(5)
        }
        let status = h.status(job)
        XCTAssertEqual(status.state, .succeeded, "after \(rounds) rounds: \(status.errors)")
        XCTAssertEqual(mostHeld, 1, "the hoarder never held more than its one slot")
        XCTAssertTrue(quarantined, "its leases kept expiring: it was quarantined")
    }

    /// The same peer registering afresh every time (a new worker id per loop): each id holds
    /// one fresh task at most, and a task it let expire is offered only to the worker that has
    /// proved it works, so the job still finishes.
    func testPeerRegisteringAfreshInALoopCannotStarveAJob() throws {
        let h = try CoordinatorHarness()
        let healthy = h.register("healthy", slots: 0)
        let job = h.submit(h.batch(count: 12))
        var rounds = 0
        while h.status(job, tasks: false).state != .succeeded, rounds < 500 {
            rounds += 1
            for k in 0..<3 {
                let phantom = h.register("phantom-\(rounds)-\(k)", slots: 0)
                for _ in 0..<3 { _ = h.leaseResponse(phantom) }
            }
            XCTAssertNotEqual(h.status(job, tasks: false).state, .failed, "\(h.status(job).errors)")
            if h.status(job, tasks: false).state == .failed { break }
            if let lease = h.lease(healthy) {
                XCTAssertFalse(h.heartbeat(healthy, lease).hasError)
                XCTAssertFalse(h.complete(healthy, lease).hasError)
            }
            h.clock.advance(5)
        }
        let status = h.status(job)
        XCTAssertEqual(status.state, .succeeded, "after \(rounds) rounds: \(status.errors)")
        XCTAssertLessThanOrEqual(status.tasks.map(\.leaseExpiries).max() ?? 0, 1,
                                 "a task that expired once went to the proven worker")
    }

    /// A worker killed mid-render again and again (its leases had heartbeated) and restarted
    /// under the same name — taking its old row back — is not quarantined: only leases never
    /// heartbeated count, and crashes are what the expiry budget and back-off are for.
    func testWorkerKilledAfterHeartbeatingIsNotQuarantined() throws {
        let h = try CoordinatorHarness()
        _ = h.register("bystander")  // gone by the time the kills start
        let job = h.submit(h.batch(count: 6))
        var id = ""
        for _ in 0..<4 {
            var r = Atelier_V1_RegisterWorkerRequest()
            r.workerName = "chaos-1"
            r.capabilities.hostname = "box"
            r.capabilities.models = [.with { $0.name = "sd2"; $0.unetInChannels = 4 }]
            let registered = h.send(.registerWorker(r)).registerWorker.workerID
            if !id.isEmpty { XCTAssertEqual(registered, id, "the restarted worker takes its row back") }
            id = registered
            let lease = try XCTUnwrap(h.lease(id), "not quarantined: \(h.send(.listWorkers(.init())).listWorkers.workers)")
            XCTAssertFalse(h.heartbeat(id, lease).hasError)
            h.clock.advance(40)  // killed: the lease runs out
            try h.coordinator.performMaintenance()
        }
        let me = h.send(.listWorkers(.init())).listWorkers.workers.first { $0.workerID == id }
        XCTAssertEqual(me?.leaseExpiries, 4)
        XCTAssertEqual(me?.quarantinedUntilUnixMs, 0)
        XCTAssertNotEqual(h.status(job).state, .failed)
    }
}
