@testable import AtelierFarmCoordinator
import Foundation
import Logging
import PostgresNIO
import XCTest

/// The store conformance suite on `PostgresCoordinatorStore`, against a real PostgreSQL server:
/// each check in a database of its own, created for it and dropped after.
///
/// The server is named by `ATELIER_TEST_POSTGRES_URL` (a superuser URL such as
/// `postgres://atelier@127.0.0.1:5432/postgres`; `scripts/test.sh` starts a throwaway server with
/// `scripts/postgres-test-server.sh` and sets it). Without it these tests FAIL, so CI cannot pass
/// while silently not testing PostgreSQL; a developer without PostgreSQL sets
/// `ATELIER_SKIP_POSTGRES_TESTS=1` to skip them with a message instead.
final class PostgresStoreConformanceTests: StoreConformance {
    private var created = [(store: PostgresCoordinatorStore, database: String)]()

    static func serverURL() throws -> String {
        if let url = ProcessInfo.processInfo.environment["ATELIER_TEST_POSTGRES_URL"], !url.isEmpty { return url }
        if ProcessInfo.processInfo.environment["ATELIER_SKIP_POSTGRES_TESTS"] == "1" {
            throw XCTSkip("ATELIER_SKIP_POSTGRES_TESTS=1: the PostgreSQL store is not tested here")
        }
        throw PostgresTestServerMissing()
    }

    override func makeStore(options: CoordinatorOptions) throws -> any CoordinatorStore {
        let server = try Self.serverURL()
        let database = "atelier_conformance_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        try Self.admin(server, "CREATE DATABASE \(database)")
        guard var components = URLComponents(string: server) else { throw PostgresTestServerMissing() }
        components.path = "/" + database
        let url = components.string ?? server
        lastStoreLocation = url
        let store = try PostgresCoordinatorStore(url: url, options: options)
        created.append((store, database))
        return store
    }

    override func tearDown() {
        for (store, database) in created {
            try? store.close()
            if let server = try? Self.serverURL() { try? Self.admin(server, "DROP DATABASE IF EXISTS \(database) WITH (FORCE)") }
        }
        created = []
        super.tearDown()
    }

    /// Runs one statement on the server's own database (CREATE / DROP DATABASE).
    static func admin(_ server: String, _ sql: String) throws {
        let configuration = try PostgresCoordinatorStore.configuration(server)
        let connection = try PostgresConnection.connect(on: PostgresConnection.defaultEventLoopGroup.any(),
                                                        configuration: configuration, id: 0,
                                                        logger: Logger(label: "atelier.tests.postgres")).wait()
        defer { try? connection.close().wait() }
        _ = try connection.query(PostgresQuery(unsafeSQL: sql), logger: Logger(label: "atelier.tests.postgres")).wait()
    }

    func testEveryCheckIsDeclared() throws { try assertEveryCheckIsDeclared() }
    func testOwnerTokenBindingAndDrainAreStored() throws { try checkOwnerTokenBindingAndDrainAreStored() }

    /// Active/standby (PostgreSQL only): the leadership passes to another coordinator only once
    /// its holder's lease has lapsed; a renewal keeps it; resigning frees it at once.
    func testLeadershipPassesOnlyWhenItsLeaseLapses() throws {
        let store = try XCTUnwrap(try makeStore(options: options) as? PostgresCoordinatorStore)
        let a = try store.acquireLeadership(holder: "a", ttlMs: 3000, now: t0)
        XCTAssertEqual(a, .init(holder: "a", epoch: 1, expiresUnixMs: t0 + 3000))
        XCTAssertEqual(try store.acquireLeadership(holder: "b", ttlMs: 3000, now: t0 + 2999).holder, "a", "a standby waits")
        XCTAssertEqual(try store.acquireLeadership(holder: "a", ttlMs: 3000, now: t0 + 2000),
                       .init(holder: "a", epoch: 1, expiresUnixMs: t0 + 5000), "a renewal keeps the epoch")
        XCTAssertEqual(try store.acquireLeadership(holder: "b", ttlMs: 3000, now: t0 + 5000).holder, "a", "not lapsed yet")
        XCTAssertEqual(try store.acquireLeadership(holder: "b", ttlMs: 3000, now: t0 + 5001),
                       .init(holder: "b", epoch: 2, expiresUnixMs: t0 + 8001), "lapsed: the standby takes over")
        XCTAssertEqual(try store.acquireLeadership(holder: "a", ttlMs: 3000, now: t0 + 5002).holder, "b",
                       "the old leader learns it lost")
        try store.resignLeadership(holder: "b")
        XCTAssertEqual(try store.acquireLeadership(holder: "a", ttlMs: 3000, now: t0 + 5003).epoch, 3, "resigned: free at once")
    }

    /// Many coordinators trying at once: exactly one leads.
    func testConcurrentCandidatesElectExactlyOneLeader() throws {
        let store = try XCTUnwrap(try makeStore(options: options) as? PostgresCoordinatorStore)
        let leaders = Locked(Set<String>())
        DispatchQueue.concurrentPerform(iterations: 8) { i in
            if let won = try? store.acquireLeadership(holder: "c\(i)", ttlMs: 60_000, now: self.t0), won.holder == "c\(i)" {
                leaders.update { $0.insert("c\(i)") }
            }
        }
        XCTAssertEqual(leaders.value.count, 1)
    }
    func testLeaseRaceAcrossProcessesNeverLeasesATaskTwice() throws { try checkLeaseRaceAcrossProcessesNeverLeasesATaskTwice() }
    func testLeasesFollowPriorityWithStrictlyIncreasingTokens() throws { try checkLeasesFollowPriorityWithStrictlyIncreasingTokens() }
    func testResentLeaseGetsTheSameLease() throws { try checkResentLeaseGetsTheSameLease() }
    func testRequestIDReusedForAnotherRequestIsRefused() throws { try checkRequestIDReusedForAnotherRequestIsRefused() }
    func testCompletionIsAcceptedExactlyOnce() throws { try checkCompletionIsAcceptedExactlyOnce() }
    func testExpiredLeaseIsRequeuedUnchargedAndItsTokenFenced() throws { try checkExpiredLeaseIsRequeuedUnchargedAndItsTokenFenced() }
    func testFailuresAreChargedUntilTheJobFails() throws { try checkFailuresAreChargedUntilTheJobFails() }
    func testReleaseRequeuesWithoutCharge() throws { try checkReleaseRequeuesWithoutCharge() }
    func testCancelStopsTasksAndTellsTheHeartbeat() throws { try checkCancelStopsTasksAndTellsTheHeartbeat() }
    func testUnknownWorkerCannotLease() throws { try checkUnknownWorkerCannotLease() }
    func testJobForAModelNoWorkerServesIsQueuedAndPinnedByItsFirstLease() throws {
        try checkJobForAModelNoWorkerServesIsQueuedAndPinnedByItsFirstLease()
    }
    func testWorkerSlotsBoundItsLeases() throws { try checkWorkerSlotsBoundItsLeases() }
    func testQueueCapHoldsUnderConcurrentSubmissions() throws { try checkQueueCapHoldsUnderConcurrentSubmissions() }
    func testConcurrentLeaseRaceNeverLeasesATaskTwice() throws { try checkConcurrentLeaseRaceNeverLeasesATaskTwice() }
    func testConcurrentCompletionsOfOneLeaseSucceedOnce() throws { try checkConcurrentCompletionsOfOneLeaseSucceedOnce() }
    func testIdlePollIsAnsweredWithoutAWrite() throws { try checkIdlePollIsAnsweredWithoutAWrite() }
    func testMetricsSnapshotCountsQueueRetriesImagesAndFinishedJobs() throws { try checkMetricsSnapshotCountsQueueRetriesImagesAndFinishedJobs() }
    func testHeartbeatStoresTheWorkersStepRate() throws { try checkHeartbeatStoresTheWorkersStepRate() }
}

struct PostgresTestServerMissing: Error, CustomStringConvertible {
    var description: String {
        "ATELIER_TEST_POSTGRES_URL is not set: run the tests with scripts/test.sh (it starts a PostgreSQL server), or "
            + "eval \"$(bash scripts/postgres-test-server.sh start)\" first; set ATELIER_SKIP_POSTGRES_TESTS=1 to skip them"
    }
}
