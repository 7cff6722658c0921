import AtelierFarmProtocol
import AtelierRequests

/// A request the coordinator refuses, with the protocol error code the client sees and a message
/// that says what to do. Thrown inside a handler, it rolls the handler's transaction back, so a
/// refused request changes nothing (and is not remembered for idempotency: a resend is judged
/// afresh, which is what a client retrying after QUEUE_FULL or UNKNOWN_WORKER wants).
public struct CoordinatorError: Error, CustomStringConvertible, Equatable, Sendable {
    public var code: Atelier_V1_ErrorCode
    public var message: String

    public init(_ code: Atelier_V1_ErrorCode, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }

    /// The protocol value.
    public var proto: Atelier_V1_Error {
        var error = Atelier_V1_Error()
        error.code = code
        error.message = message
        return error
    }

    static func invalid(_ message: String) -> CoordinatorError { .init(.invalidArgument, message) }
    static func notFound(_ message: String) -> CoordinatorError { .init(.notFound, message) }
    static func stale(_ message: String) -> CoordinatorError { .init(.staleLease, message) }
    static func tooLarge(_ message: String) -> CoordinatorError { .init(.tooLarge, message) }
    static func internalError(_ message: String) -> CoordinatorError { .init(.internal, message) }

    /// QUEUE_FULL: the same words from every store.
    static func queueFull(unfinished: Int, adding: Int, limit: Int) -> CoordinatorError {
        .init(.queueFull,
              "the queue holds \(unfinished) unfinished tasks; this job adds \(adding), over the limit of "
              + "\(limit). Retry when some have finished, or submit a smaller job")
    }
}

extension CoordinatorError {
    /// A validation refusal as the protocol error the client sees.
    init(_ error: RequestValidationError) {
        self.init(error.kind == .tooLarge ? .tooLarge : .invalidArgument, error.message)
    }
}
