import Foundation
import AtelierKernelsC

/// Splits element-wise and per-channel loops (the work BLAS does not do) across the cores.
public enum Parallel {
    /// Number of worker threads for our own loops: `$ATELIER_THREADS`, else the machine's active
    /// cores. Results never depend on it (work is cut into fixed-size pieces), only speed does.
    nonisolated(unsafe) public static var threads: Int = {
        if let s = ProcessInfo.processInfo.environment["ATELIER_THREADS"], let n = Int(s), n > 0 { return n }
        return ProcessInfo.processInfo.activeProcessorCount
    }()

    /// Runs `body(range)` over `0..<count` in contiguous chunks, in parallel when the work is big
    /// enough to pay for the dispatch (`grain` = minimum iterations per chunk).
    @inline(__always)
    public static func forEachChunk(_ count: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
        let workers = min(threads, max(1, count / max(grain, 1)))
        if workers <= 1 || count <= 1 {
            if count > 0 { body(0..<count) }
            return
        }
        let chunk = (count + workers - 1) / workers
        withoutActuallyEscaping(body) { body in
            let run: (Int) -> Void = { w in
                let start = w * chunk
                let end = min(count, start + chunk)
                if start < end { body(start..<end) }
            }
            if !onPool(workers, workers, run) { DispatchQueue.concurrentPerform(iterations: workers, execute: run) }
        }
    }

    /// Runs `body(i)` for every i in `0..<count` on up to `threads` threads, each taking the next
    /// index from a shared counter (uneven tasks balance themselves). Only for work whose result
    /// does not depend on which thread runs which task.
    public static func forEachTask(_ count: Int, _ body: (Int) -> Void) {
        let workers = min(threads, count)
        if workers <= 1 {
            for i in 0..<count { body(i) }
            return
        }
        withoutActuallyEscaping(body) { body in
            if onPool(workers, count, body) { return }
            let counter = UnsafeMutablePointer<Int>.allocate(capacity: 1)
            counter.initialize(to: 0)
            defer { counter.deallocate() }
            DispatchQueue.concurrentPerform(iterations: workers) { _ in
                while true {
                    let i = ak_next_task(counter)
                    if i >= count { break }
                    body(i)
                }
            }
        }
    }

    /// Runs `body(i)` for i in 0..<count on the kernel layer's thread pool (`ak_pool_run`: workers
    /// that spin between regions instead of sleeping after each, as OpenMP's do); false, having
    /// run nothing, when the pool declines (a region opened inside a task, another thread's
    /// region in flight, no pool on this platform), and libdispatch runs it instead.
    private static func onPool(_ workers: Int, _ count: Int, _ body: (Int) -> Void) -> Bool {
        return withoutActuallyEscaping(body) { body in
            var task = body
            return withUnsafeMutablePointer(to: &task) { pointer in
                ak_pool_run(Int32(workers), count, { context, i in
                    context!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(i)
                }, pointer) == 0
            }
        }
    }
}
