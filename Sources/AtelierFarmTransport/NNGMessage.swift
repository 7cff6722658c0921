import CNNG
import Foundation

/// An owned `nng_msg`. Non-copyable, so ownership is explicit: either it is handed to nng
/// (`release()`, e.g. to an aio before a send), turned into `Data` (`intoData()`), or freed when it
/// goes out of scope.
///
/// Bodies are built with `nng_msg_append` only. `nng_msg_insert*` overflows the heap in 1.5.2
/// when a message has some headroom but less than the insert length (NNG-NOTES §3, #1541, fixed
/// in 1.6.0); nothing in this layer calls it.
struct NNGMessage: ~Copyable {
    private let pointer: OpaquePointer

    /// Takes ownership of a message nng handed over (e.g. from `nng_aio_get_msg`).
    init(taking pointer: OpaquePointer) {
        self.pointer = pointer
    }

    /// A fresh message whose body is a copy of `body`: one allocation of the right size
    /// (`nng_msg_reserve`), one append. This is the least-copy path in 1.5.2, where even
    /// `NNG_FLAG_ALLOC` copies (NNG-NOTES §3).
    init(copying body: Data) throws {
        var msg: OpaquePointer?
        var rv = nng_msg_alloc(&msg, 0)
        guard rv == 0, let msg else {
            throw TransportError.nng(operation: "allocating a \(body.count)-byte message", code: rv)
        }
        if !body.isEmpty {
            rv = nng_msg_reserve(msg, body.count)
            if rv == 0 {
                rv = body.withUnsafeBytes { raw in nng_msg_append(msg, raw.baseAddress, raw.count) }
            }
            if rv != 0 {
                nng_msg_free(msg)
                throw TransportError.nng(operation: "allocating a \(body.count)-byte message", code: rv)
            }
        }
        self.pointer = msg
    }

    var count: Int { nng_msg_len(pointer) }

    /// Id of the pipe (connection) the message arrived on; > 0 for received messages.
    var pipeID: UInt32 { UInt32(bitPattern: nng_pipe_id(nng_msg_get_pipe(pointer))) }

    /// Hands the message to nng (it then owns and frees it).
    consuming func release() -> OpaquePointer {
        let pointer = self.pointer
        discard self
        return pointer
    }

    /// The body as `Data`, without copying: the `Data` keeps the message alive and frees it
    /// with `nng_msg_free` when it is released (NNG-NOTES §3, "read received bodies in place").
    consuming func intoData() -> Data {
        let msg = release()
        let length = nng_msg_len(msg)
        guard length > 0, let body = nng_msg_body(msg) else {
            nng_msg_free(msg)
            return Data()
        }
        let owner = MessageOwner(msg)
        return Data(bytesNoCopy: body, count: length, deallocator: .custom { _, _ in owner.free() })
    }

    deinit {
        nng_msg_free(pointer)
    }
}

/// Carries a message pointer into the `Data` deallocator, which may run on any thread.
private final class MessageOwner: @unchecked Sendable {
    private let msg: OpaquePointer
    init(_ msg: OpaquePointer) { self.msg = msg }
    func free() { nng_msg_free(msg) }
}
