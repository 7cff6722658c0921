@testable import AtelierFarmCoordinator
import Foundation
import XCTest

/// The store conformance suite on `SQLiteCoordinatorStore` (the embedded default), each check on a
/// fresh database file in a temporary directory.
final class SQLiteStoreConformanceTests: StoreConformance {
    private var directories = [URL]()

    override func makeStore(options: CoordinatorOptions) throws -> any CoordinatorStore {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("atelier-store-conformance-\(UUID().uuidString)")
        directories.append(directory)
        lastStoreLocation = directory.path
        return try SQLiteCoordinatorStore(directory: directory, options: options)
    }

    override func tearDown() {
        for directory in directories { try? FileManager.default.removeItem(at: directory) }
        directories = []
        super.tearDown()
    }

    func testEveryCheckIsDeclared() throws { try assertEveryCheckIsDeclared() }
    func testOwnerTokenBindingAndDrainAreStored() throws { try checkOwnerTokenBindingAndDrainAreStored() }
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
