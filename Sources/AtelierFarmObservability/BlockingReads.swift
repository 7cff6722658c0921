import Dispatch

/// Runs the stores' synchronous reads off the HTTP server's event loops: GRDB blocks its thread
/// and the PostgreSQL store waits on futures, which must never happen on a NIO event loop (it
/// would stall every connection of the loop, or trap). A few threads suffice: scrapes and page
/// loads are rare next to the farm's own traffic, and the nng server never waits for them.
enum BlockingReads {
    private static let queue = DispatchQueue(label: "atelier.observability.reads", qos: .utility, attributes: .concurrent)

    static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result { try body() })
            }
        }
    }
}
