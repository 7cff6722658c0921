import CNNG
import Foundation

/// `nng_close` under a watchdog, so that closing a transport is bounded in time.
///
/// nng 1.5.2 has close paths that never return (NNG-NOTES §6: #1543, the PULL close hang). We
/// reproduced one with REQ/REP on Debian's library: when a connection is closed while a message
/// of a few MiB is still half-written to it (the receiver refused it as over `recv-size-max`) and
/// both ends live in the same process, nng's single reaper thread can block for good (about 1 run
/// in 5 with 2 MiB messages; never with messages that fit the socket buffers, never with the ends
/// in two processes). From then on every `nng_close` in the process waits for that reaper.
///
/// So the close runs on a thread of its own and the caller waits at most `limit`. If it does not
/// finish, the socket is abandoned (its memory, and whatever its callbacks reference, stay
/// allocated) and a warning goes to stderr; the process can still exit normally.
enum NNGSocketClose {
    /// - Returns: true if `nng_close` returned within `limit`.
    static func close(_ socket: nng_socket, within limit: Duration, what: String) -> Bool {
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            nng_close(socket)
            done.signal()
        }
        thread.name = "atelier-nng-close"
        thread.start()
        let deadline = DispatchTime.now() + .milliseconds(Int(limit.milliseconds))
        if done.wait(timeout: deadline) == .success { return true }
        let warning = "atelier: warning: closing the nng socket of \(what) did not finish within "
            + "\(formatDuration(limit)); abandoning it (a known nng 1.5.2 close hang)\n"
        FileHandle.standardError.write(Data(warning.utf8))
        return false
    }
}
