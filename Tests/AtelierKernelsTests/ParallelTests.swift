import XCTest
import Foundation
import AtelierKernelsC
@testable import AtelierKernels

/// Parallel's regions run on the kernel layer's thread pool (ThreadPool.c): every index exactly
/// once, whatever the thread count, nesting, concurrency or how long the workers slept.
final class ParallelTests: XCTestCase {
    private var savedThreads = Parallel.threads
    override func setUp() { savedThreads = Parallel.threads }
    override func tearDown() { Parallel.threads = savedThreads }

    /// Counts how often each index ran; atomics because tasks run on several threads.
    private final class Hits: @unchecked Sendable {
        let counts: UnsafeMutablePointer<Int>
        let n: Int
        init(_ n: Int) { self.n = n; counts = .allocate(capacity: max(n, 1)); counts.initialize(repeating: 0, count: max(n, 1)) }
        deinit { counts.deallocate() }
        func hit(_ i: Int) { _ = ak_next_task(counts + i) }
        var all: [Int] { (0..<n).map { counts[$0] } }
    }

    func testEveryTaskRunsExactlyOnceForAnyThreadCount() {
        for threads in [1, 2, 3, 5, 8] {
            Parallel.threads = threads
            for count in [0, 1, 2, 3, 7, 64, 1000] {
                let hits = Hits(count)
                Parallel.forEachTask(count) { hits.hit($0) }
                XCTAssertEqual(hits.all, Array(repeating: 1, count: count), "threads \(threads) count \(count)")
            }
        }
    }

    func testEveryChunkIndexIsCoveredOnce() {
        for threads in [2, 3, 4] {
            Parallel.threads = threads
            for (count, grain) in [(1, 1), (5, 1), (100, 7), (10_000, 64)] {
                let hits = Hits(count)
                Parallel.forEachChunk(count, grain: grain) { range in for i in range { hits.hit(i) } }
                XCTAssertEqual(hits.all, Array(repeating: 1, count: count), "threads \(threads) count \(count) grain \(grain)")
            }
        }
    }

    func testTheCallerIsOneOfTheThreadsAndWorkersShareTheTasks() throws {
        Parallel.threads = 2
        let caller = pthread_self()
        let hits = Hits(2)
        // Tasks long enough (100 ms in all) that the worker takes some of them whether it was
        // spinning or asleep.
        Parallel.forEachTask(200) { _ in
            hits.hit(pthread_equal(pthread_self(), caller) != 0 ? 0 : 1)
            usleep(500)
        }
        XCTAssertEqual(hits.all.reduce(0, +), 200)
        XCTAssertGreaterThan(hits.all[0], 0, "the calling thread runs tasks too")
        XCTAssertGreaterThan(hits.all[1], 0, "a pool worker runs tasks too")
    }

    func testARegionOpenedInsideATaskRunsEveryInnerTask() {
        Parallel.threads = 3
        let hits = Hits(12 * 50)
        Parallel.forEachTask(12) { outer in
            Parallel.forEachTask(50) { inner in hits.hit(outer * 50 + inner) }
        }
        XCTAssertEqual(hits.all, Array(repeating: 1, count: 600))
    }

    func testRegionsFromSeveralThreadsAtOnceAllComplete() {
        Parallel.threads = 2
        let callers = 4, rounds = 200, count = 37
        let hits = Hits(callers * rounds * count)
        DispatchQueue.concurrentPerform(iterations: callers) { c in
            for r in 0..<rounds {
                Parallel.forEachTask(count) { i in hits.hit((c * rounds + r) * count + i) }
            }
        }
        XCTAssertEqual(hits.all, Array(repeating: 1, count: callers * rounds * count))
    }

    func testRegionsAfterTheWorkersFellAsleepStillComplete() {
        Parallel.threads = 2
        for round in 0..<5 {
            usleep(5_000)  // far beyond the spin time: the workers sleep on their futex
            let hits = Hits(100)
            Parallel.forEachTask(100) { hits.hit($0) }
            XCTAssertEqual(hits.all, Array(repeating: 1, count: 100), "round \(round)")
        }
    }

    func testManySmallRegionsInARowComplete() {
        Parallel.threads = 2
        let hits = Hits(3)
        for _ in 0..<20_000 { Parallel.forEachTask(3) { hits.hit($0) } }
        XCTAssertEqual(hits.all, [20_000, 20_000, 20_000])
    }

    func testThePoolDeclinesWhatItCannotRun() {
        // One thread, or a null function: the caller runs the tasks its own way.
        XCTAssertEqual(ak_pool_run(1, 10, { _, _ in }, nil), -1)
        XCTAssertEqual(ak_pool_run(2, 10, nil, nil), -1)
        XCTAssertEqual(ak_pool_run(2, -1, { _, _ in }, nil), -1)
        XCTAssertEqual(ak_pool_run(2, 0, { _, _ in }, nil), 0)
    }
}
