import Foundation

/// Row-chunked parallel loops for the resampler. AtelierImaging must not link the kernels
/// (the coordinator resizes and cuts images without the engine), so this is the one loop of
/// `AtelierKernels.Parallel` it needs, with the same thread count (`$ATELIER_THREADS`, else the
/// active cores). Results never depend on it: each chunk writes its own rows.
enum ImagingParallel {
    static let threads: Int = {
        if let s = ProcessInfo.processInfo.environment["ATELIER_THREADS"], let n = Int(s), n > 0 { return n }
        return ProcessInfo.processInfo.activeProcessorCount
    }()

    /// Runs `body(range)` over `0..<count` in contiguous chunks, in parallel when there are at
    /// least two chunks of `grain` iterations.
    static func forEachChunk(_ count: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
        let workers = min(threads, max(1, count / max(grain, 1)))
        if workers <= 1 || count <= 1 {
            if count > 0 { body(0..<count) }
            return
        }
        let chunk = (count + workers - 1) / workers
        withoutActuallyEscaping(body) { body in
            DispatchQueue.concurrentPerform(iterations: workers) { w in
                let start = w * chunk
                let end = min(count, start + chunk)
                if start < end { body(start..<end) }
            }
        }
    }
}
