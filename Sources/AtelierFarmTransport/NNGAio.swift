import CNNG
import Foundation

/// One `nng_aio`, driven synchronously from a dedicated thread.
///
/// It is allocated **without a callback** and completion is awaited with `nng_aio_wait`, so no
/// Swift code ever runs on nng's worker threads. That sidesteps the callback rules of NNG-NOTES §2:
/// nothing can block an nng thread, and no aio is ever freed or stopped inside its own callback.
/// The thread that waits is always one of ours (a server context thread, a CLI or worker thread,
/// or the per-call thread of the `async` API), never the Swift cooperative pool.
///
/// Cancellation is sticky: after `cancel()`, `begin` refuses to start any further operation.
/// `begin` and `cancel` share a lock, so a cancel can never slip between "checked the flag" and
/// "started the operation" and be lost (the operation would then wait its whole timeout).
/// `nng_aio_stop` is never called: in 1.5.2 a stopped aio silently never completes again
/// (NNG-NOTES §2, aio quirks); `nng_aio_free` in `deinit` is the only stop.
final class NNGAio: @unchecked Sendable {
    let pointer: OpaquePointer
    private let lock = NSLock()
    private var cancelled = false

    init() throws {
        var aio: OpaquePointer?
        let rv = nng_aio_alloc(&aio, nil, nil)
        guard rv == 0, let aio else { throw TransportError.nng(operation: "allocating an aio", code: rv) }
        pointer = aio
    }

    deinit {
        nng_aio_free(pointer)
    }

    /// Whether `cancel()` was called.
    var isCancelled: Bool {
        lock.lock(); defer { lock.unlock() }
        return cancelled
    }

    /// Sets an explicit timeout and starts one operation, unless the aio was cancelled. New aios
    /// have an **infinite** timeout, and socket `RECVTIMEO`/`SENDTIMEO` do not apply to aio
    /// operations (NNG-NOTES §2), so every operation here gets its own.
    /// - Returns: false (and starts nothing) if the aio was cancelled.
    func begin(timeout: nng_duration, _ start: (OpaquePointer) -> Void) -> Bool {
        lock.lock(); defer { lock.unlock() }
        if cancelled { return false }
        nng_aio_set_timeout(pointer, timeout)
        start(pointer)
        return true
    }

    /// Blocks the calling thread until the current operation completes; returns its result.
    func wait() -> Int32 {
        nng_aio_wait(pointer)
        return nng_aio_result(pointer)
    }

    /// Aborts the pending operation (it completes with `NNG_ECANCELED`) and refuses new ones.
    /// Non-blocking; safe from any thread.
    func cancel() {
        lock.lock(); defer { lock.unlock() }
        cancelled = true
        nng_aio_cancel(pointer)
    }

    /// Sends `message` on a context. On failure the message is taken back and freed, since nng
    /// leaves it with the aio (NNG-NOTES §2, "Send ownership").
    /// - Returns: the nng result; `nil` if the aio was cancelled before the send started.
    func send(_ message: consuming NNGMessage, on ctx: nng_ctx, timeout: nng_duration) -> Int32? {
        let msg = message.release()
        let started = begin(timeout: timeout) { aio in
            nng_aio_set_msg(aio, msg)
            nng_ctx_send(ctx, aio)
        }
        guard started else {
            nng_msg_free(msg)
            return nil
        }
        let rv = wait()
        if rv != 0, let back = nng_aio_get_msg(pointer) {
            nng_aio_set_msg(pointer, nil)
            nng_msg_free(back)
        }
        return rv
    }

    /// Receives on a context.
    /// - Returns: the nng result; `nil` if the aio was cancelled before the receive started.
    func receive(on ctx: nng_ctx, timeout: nng_duration) -> Int32? {
        guard begin(timeout: timeout, { aio in nng_ctx_recv(ctx, aio) }) else { return nil }
        return wait()
    }

    /// The message of a successful receive; the caller owns it.
    func takeMessage() -> NNGMessage? {
        guard let msg = nng_aio_get_msg(pointer) else { return nil }
        nng_aio_set_msg(pointer, nil)
        return NNGMessage(taking: msg)
    }
}
