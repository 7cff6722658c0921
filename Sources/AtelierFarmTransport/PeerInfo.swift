import CNNG
import Foundation

/// Who sent a request: the nng pipe (one connection) it arrived on and that pipe's remote address.
///
/// The address is recorded when the pipe is added, because `NNG_OPT_REMADDR` fails once the pipe
/// is being removed (NNG-NOTES §4, "Peer identity"). It identifies a connection, not a worker:
/// a reconnecting worker gets a new pipe id, and TLS peer names do not exist in 1.5.2. The
/// application identifies senders by the ids in its messages.
public struct PeerInfo: Sendable, Hashable, CustomStringConvertible {
    /// nng pipe id (> 0), stable for the life of one connection.
    public let pipeID: UInt32
    /// "127.0.0.1:53422", "[::1]:53422", "ipc:///run/atelier.sock", or "unknown".
    public let remoteAddress: String

    public init(pipeID: UInt32, remoteAddress: String) {
        self.pipeID = pipeID
        self.remoteAddress = remoteAddress
    }

    public var description: String { "\(remoteAddress) (pipe \(pipeID))" }
}

/// Per-socket pipe bookkeeping, fed by `nng_pipe_notify` callbacks.
///
/// The address is recorded at **ADD_PRE**, not ADD_POST: nng runs ADD_POST only after the
/// protocol has started the pipe (`pipe_start` in socket.c), so traffic can flow on a new
/// connection before ADD_POST has run: in about one test run in six a whole request and reply
/// had gone over a pipe whose ADD_POST had not happened yet. ADD_PRE runs before the pipe joins
/// the socket, and
/// REMADDR works there too (NNG-NOTES §4). nng delivers REM_POST only for pipes that had
/// ADD_PRE (`p_cbs` in socket.c), so every entry is removed exactly once; a removal of an
/// unknown id is ignored, so the state stays consistent whatever the order (pynng#40).
///
/// The callbacks run on nng threads (ADD_PRE on a worker, REM_POST on the reaper), so they only
/// take a short lock: never block, never touch sockets there (NNG-NOTES §4, #1247/#1665).
///
/// It also enforces the connection cap: at ADD_PRE a pipe beyond `maxPipes` is closed at once
/// (`nng_pipe_close` there rejects the peer; NNG-NOTES §4), with a rate-limited log line, and it
/// remembers when each pipe last carried a request so idle ones can be reaped (`idlePipes`).
final class PipeRegistry: @unchecked Sendable {
    private let lock = NSLock()
    private var addresses: [UInt32: String] = [:]
    private var lastActivity: [UInt32: UInt64] = [:]
    private var removals = 0
    private var rejections = 0
    private var rejectionsLogged = 0
    private var lastRejectionLog: UInt64 = 0
    /// 0 = no cap. Set before the listener starts.
    var maxPipes = 0
    /// A TLS server: a pipe whose peer certificate did not verify is closed at ADD_PRE. With
    /// AUTH_MODE_REQUIRED the handshake already refuses such peers; this is the second lock.
    var requireTLSVerified = false
    var log: (@Sendable (String) -> Void)?

    /// Connections refused at the cap so far.
    var rejectedCount: Int {
        lock.lock(); defer { lock.unlock() }
        return rejections
    }

    /// Records that a request arrived on `pipeID` (it is not idle).
    func touch(_ pipeID: UInt32) {
        let now = DispatchTime.now().uptimeNanoseconds
        lock.lock(); defer { lock.unlock() }
        if lastActivity[pipeID] != nil { lastActivity[pipeID] = now }
    }

    /// Pipes that carried no request for `idleNanoseconds`, the longest idle first.
    func idlePipes(idleNanoseconds: UInt64) -> [UInt32] {
        let now = DispatchTime.now().uptimeNanoseconds
        lock.lock(); defer { lock.unlock() }
        return lastActivity.filter { now &- $0.value >= idleNanoseconds }.sorted { $0.value < $1.value }.map(\.key)
    }

    /// Connections that closed so far (every REM_POST).
    var removedCount: Int {
        lock.lock(); defer { lock.unlock() }
        return removals
    }

    /// Pipes currently connected.
    var liveCount: Int {
        lock.lock(); defer { lock.unlock() }
        return addresses.count
    }

    /// The peer of `pipeID`; if the pipe is unknown (it cannot be, see above, but a wrong
    /// answer is worse than a slow one), nng is asked directly, from the caller's thread.
    func peer(pipeID: UInt32) -> PeerInfo {
        lock.lock()
        let known = addresses[pipeID]
        lock.unlock()
        return PeerInfo(pipeID: pipeID, remoteAddress: known ?? remoteAddress(of: nng_pipe(id: pipeID)))
    }

    /// ADD_PRE: records the pipe, or closes it when the cap is reached.
    fileprivate func added(_ pipe: nng_pipe) {
        let id = UInt32(bitPattern: nng_pipe_id(pipe))
        let address = remoteAddress(of: pipe)
        let now = DispatchTime.now().uptimeNanoseconds
        if requireTLSVerified {
            var verified = false
            if nng_pipe_get_bool(pipe, NNG_OPT_TLS_VERIFIED, &verified) != 0 || !verified {
                nng_pipe_close(pipe)
                log?("refused a connection from \(address): its TLS certificate was not verified")
                return
            }
        }
        lock.lock()
        if maxPipes > 0, addresses.count >= maxPipes {
            rejections += 1
            var line: String?
            // At most one line every 10 s, saying how many were refused since the last one.
            if lastRejectionLog == 0 || now &- lastRejectionLog >= 10_000_000_000 {
                line = "refused \(rejections - rejectionsLogged) connection(s) (latest from \(address)): "
                    + "\(addresses.count) open, at the cap of \(maxPipes); idle connections are reaped"
                rejectionsLogged = rejections
                lastRejectionLog = now
            }
            let log = self.log
            lock.unlock()
            nng_pipe_close(pipe)
            if let line { log?(line) }
            return
        }
        addresses[id] = address
        lastActivity[id] = now
        lock.unlock()
    }

    fileprivate func removed(_ pipe: nng_pipe) {
        let id = UInt32(bitPattern: nng_pipe_id(pipe))
        lock.lock(); defer { lock.unlock() }
        removals += 1
        addresses.removeValue(forKey: id)
        lastActivity.removeValue(forKey: id)
    }

    /// Registers the callbacks on `socket`. Must run before any dialer or listener starts
    /// (pynng#31), and the registry must outlive the socket: the caller keeps the retained
    /// reference this returns and releases it only after `nng_close`.
    static func attach(to socket: nng_socket) throws -> Unmanaged<PipeRegistry> {
        let registry = Unmanaged.passRetained(PipeRegistry())
        let arg = registry.toOpaque()
        for event in [NNG_PIPE_EV_ADD_PRE, NNG_PIPE_EV_REM_POST] {
            let rv = nng_pipe_notify(socket, event, pipeNotify, arg)
            if rv != 0 {
                registry.release()
                throw TransportError.nng(operation: "registering pipe notifications", code: rv)
            }
        }
        return registry
    }
}

private let pipeNotify: nng_pipe_cb = { pipe, event, arg in
    guard let arg else { return }
    let registry = Unmanaged<PipeRegistry>.fromOpaque(arg).takeUnretainedValue()
    if event == NNG_PIPE_EV_ADD_PRE {
        registry.added(pipe)
    } else if event == NNG_PIPE_EV_REM_POST {
        registry.removed(pipe)
    }
}

/// `NNG_OPT_REMADDR` of a pipe, formatted; "unknown" when nng cannot tell.
private func remoteAddress(of pipe: nng_pipe) -> String {
    var sa = nng_sockaddr()
    guard nng_pipe_get_addr(pipe, NNG_OPT_REMADDR, &sa) == 0 else { return "unknown" }
    return format(sa)
}

func format(_ sa: nng_sockaddr) -> String {
    switch UInt32(sa.s_family) {
    case NNG_AF_INET.rawValue:
        var addr = sa.s_in.sa_addr  // network byte order, as in sockaddr_in
        var buffer = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
        guard inet_ntop(AF_INET, &addr, &buffer, socklen_t(buffer.count)) != nil else { return "unknown" }
        return "\(String(cString: buffer)):\(UInt16(bigEndian: sa.s_in.sa_port))"
    case NNG_AF_INET6.rawValue:
        var addr = sa.s_in6.sa_addr
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_ntop(AF_INET6, &addr, &buffer, socklen_t(buffer.count)) != nil else { return "unknown" }
        return "[\(String(cString: buffer))]:\(UInt16(bigEndian: sa.s_in6.sa_port))"
    case NNG_AF_IPC.rawValue:
        var path = sa.s_ipc.sa_path
        let text = withUnsafeBytes(of: &path) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        return "ipc://\(text)"
    case NNG_AF_INPROC.rawValue:
        var name = sa.s_inproc.sa_name
        let text = withUnsafeBytes(of: &name) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        return "inproc://\(text)"
    case NNG_AF_ABSTRACT.rawValue:
        var name = sa.s_abstract.sa_name
        let length = Int(sa.s_abstract.sa_len)
        let text = withUnsafeBytes(of: &name) { raw in String(decoding: raw.prefix(length), as: UTF8.self) }
        return "abstract://\(text)"
    default:
        return "unknown"
    }
}
