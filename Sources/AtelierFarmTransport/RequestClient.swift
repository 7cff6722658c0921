import CNNG
import Foundation

public struct RequestClientOptions: Sendable {
    /// `NNG_OPT_RECVMAXSZ` of the dialer (set before it starts; nng's default is unlimited),
    /// and the largest request this client sends: a bigger one is refused locally with
    /// `TransportError.messageTooLarge`, because sent to a peer with the same cap it would only
    /// close the connection (NNG-NOTES §3). Keep it at least the server's reply limit (both
    /// default to the protocol's 64 MiB): a reply over it closes the connection, REQ resends,
    /// and the call ends in a timeout.
    public var maxMessageSize: Int
    /// `NNG_OPT_REQ_RESENDTIME`: how long a request waits for its reply before nng resends it
    /// (same request id, possibly to a new connection). nng's undocumented default is 60 s
    /// (NNG-NOTES §1); we set it explicitly. nil disables timed resends (a dropped connection
    /// then still triggers one). Duplicates are made harmless by the application's request ids.
    public var resendTime: Duration?
    /// `NNG_OPT_RECONNMINT` / `NNG_OPT_RECONNMAXT`. nng's defaults are 1 s and 0 (no back-off);
    /// each wait is random in [0, current) and doubles up to the max (NNG-NOTES §4).
    public var reconnectMin: Duration
    public var reconnectMax: Duration
    /// How long `close()` waits for `nng_close` before abandoning the socket (`NNGSocketClose`).
    public var closeTimeout: Duration
    /// Mutual TLS for `tls+tcp://` addresses (required there, refused on plain ones). Each
    /// dialer gets its own configuration with the server name set (NNG-NOTES §5).
    public var tls: TLSConfiguration?

    public init(maxMessageSize: Int = 64 << 20, resendTime: Duration? = .seconds(10),
                reconnectMin: Duration = .milliseconds(100), reconnectMax: Duration = .seconds(2),
                closeTimeout: Duration = .seconds(5), tls: TLSConfiguration? = nil) {
        self.tls = tls
        self.maxMessageSize = maxMessageSize
        self.resendTime = resendTime
        self.reconnectMin = reconnectMin
        self.reconnectMax = reconnectMax
        self.closeTimeout = closeTimeout
    }
}

/// A REQ dialer to the coordinator, used by clients (CLI commands) and workers.
///
/// The dialer starts with `NNG_FLAG_NONBLOCK`, so a client can be created before the
/// coordinator exists: nng keeps dialing in the background and redials whenever the connection
/// drops (NNG-NOTES §4; without the flag the first failure is returned and never retried).
/// Each call opens its own REQ context, so any number of threads may call at once.
///
/// A call sends, and starts the receive only once the send has completed: cancelling a REQ
/// receive while its send is pending can crash 1.5.2 (#1702, NNG-NOTES §2). A send completes
/// when a connection takes the request, so with no coordinator it is the send that times out.
public final class RequestClient: @unchecked Sendable {
    /// The URL dialed.
    public let address: String
    public let options: RequestClientOptions

    private let socket: nng_socket
    /// The +1 reference handed to nng's pipe callbacks; released after `nng_close`.
    private let registry: Unmanaged<PipeRegistry>
    private let pipes: PipeRegistry
    private let lock = NSLock()
    private var closed = false

    /// Opens a REQ socket and starts dialing `address` in the background (or each of a
    /// comma-separated list of addresses: see below).
    /// - Throws: `TransportError.invalidAddress` for a URL nng cannot dial, or `.nng`.
    public init(dialing address: String, options: RequestClientOptions = .init()) throws {
        self.address = address
        self.options = options
        let addresses = address.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
        for address in addresses { try TLSConfiguration.check(address: address, tls: options.tls) }
        _ = try options.tls?.load()  // before any socket exists: a bad file is one clear error
        var socket = nng_socket()
        var rv = nng_req0_open(&socket)
        guard rv == 0 else { throw TransportError.nng(operation: "opening a REQ socket", code: rv) }
        let registry: Unmanaged<PipeRegistry>
        do {
            registry = try PipeRegistry.attach(to: socket)  // before dialing (NNG-NOTES §4)
        } catch {
            nng_close(socket)
            throw error
        }
        func fail(_ error: TransportError) -> TransportError {
            nng_close(socket)
            registry.release()
            return error
        }
        let resend = options.resendTime.map { $0.nngTimeout } ?? nng_duration(NNG_DURATION_INFINITE)
        rv = nng_socket_set_ms(socket, NNG_OPT_REQ_RESENDTIME, resend)
        guard rv == 0 else { throw fail(.nng(operation: "setting req:resend-time", code: rv)) }

        // Several addresses, comma-separated: one dialer each on the one REQ socket. For
        // active/standby coordinators, of which only the leader listens: requests go to the pipe
        // that is up, and one pending when its pipe closes is resent as soon as another peer
        // appears (NNG-NOTES: req resends on pipe close and on a new peer), so clients and workers
        // follow the leader without knowing which it is.
        guard !addresses.isEmpty else { throw fail(.invalidAddress(address: address, reason: "no address given")) }
        for address in addresses {
            var dialer = nng_dialer()
            rv = nng_dialer_create(&dialer, socket, address)
            guard rv == 0 else {
                switch rv {
                case NNGErr.addressInvalid, NNGErr.invalid, NNGErr.notSupported:
                    throw fail(.invalidAddress(address: address, reason: nngErrorString(rv)))
                default:
                    throw fail(.nng(operation: "dialing \(address)", code: rv))
                }
            }
            for (option, value) in [(NNG_OPT_RECONNMINT, options.reconnectMin), (NNG_OPT_RECONNMAXT, options.reconnectMax)] {
                rv = nng_dialer_set_ms(dialer, option, value.nngTimeout)
                guard rv == 0 else { throw fail(.nng(operation: "setting \(option) on \(address)", code: rv)) }
            }
            rv = nng_dialer_set_size(dialer, NNG_OPT_RECVMAXSZ, options.maxMessageSize)
            guard rv == 0 else { throw fail(.nng(operation: "setting recv-size-max on \(address)", code: rv)) }
            if let tls = options.tls {
                let config: OpaquePointer
                do { config = try tls.makeNNGConfig(server: false, dialing: address) } catch {
                    nng_close(socket)
                    registry.release()
                    throw error
                }
                rv = nng_dialer_set_ptr(dialer, NNG_OPT_TLS_CONFIG, UnsafeMutableRawPointer(config))
                nng_tls_config_free(config)  // the dialer holds its own reference
                guard rv == 0 else { throw fail(.nng(operation: "setting the TLS configuration on \(address)", code: rv)) }
            }
            rv = nng_dialer_start(dialer, Int32(NNG_FLAG_NONBLOCK))
            guard rv == 0 else {
                throw fail(rv == NNGErr.addressInvalid
                    ? .invalidAddress(address: address, reason: nngErrorString(rv))
                    : .nng(operation: "dialing \(address)", code: rv))
            }
        }
        self.socket = socket
        self.registry = registry
        self.pipes = registry.takeUnretainedValue()
    }

    deinit {
        close()
    }

    /// Whether a connection to the peer is up right now.
    public var isConnected: Bool { pipes.liveCount > 0 }

    /// Connections that closed since the client was created (each is followed by a redial).
    public var droppedConnections: Int { pipes.removedCount }

    /// Sends one request and blocks the calling thread until its reply arrives or `timeout`
    /// passes (the whole call: waiting for a connection, sending, and the reply).
    /// Do not call this from the Swift cooperative pool; use the `async` overload there.
    /// - Throws: `TransportError.timeout` (no reply in time; includes "no coordinator"),
    ///   `.messageTooLarge`, `.closed`, `.nng`.
    public func request(_ data: Data, timeout: Duration) throws -> Data {
        try perform(data, timeout: timeout, aio: NNGAio())
    }

    /// The same call without blocking a cooperative thread: it runs on a thread of its own, and
    /// cancelling the task cancels the nng operation (the call then throws `CancellationError`).
    public func request(_ data: Data, timeout: Duration) async throws -> Data {
        let aio = try NNGAio()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Data, Error>) in
                let thread = Thread { [self] in
                    do {
                        continuation.resume(returning: try perform(data, timeout: timeout, aio: aio))
                    } catch {
                        continuation.resume(throwing: error)
                    }
                }
                thread.name = "atelier-req"
                thread.start()
            }
        } onCancel: {
            aio.cancel()
        }
    }

    /// Closes the socket; idempotent, and returns within `options.closeTimeout`. Calls in
    /// progress fail with `TransportError.closed`.
    public func close() {
        lock.lock()
        if closed {
            lock.unlock()
            return
        }
        closed = true
        lock.unlock()
        if NNGSocketClose.close(socket, within: options.closeTimeout, what: "the client of \(address)") {
            registry.release()  // no pipe callback runs after nng_close returns
        }
    }

    private func perform(_ data: Data, timeout: Duration, aio: NNGAio) throws -> Data {
        guard data.count <= options.maxMessageSize else {
            throw TransportError.messageTooLarge(size: data.count, limit: options.maxMessageSize)
        }
        lock.lock()
        let isClosed = closed
        lock.unlock()
        // After close, nng_ctx_open below would fail with NNG_ECLOSED anyway; this is the clear path.
        guard !isClosed else { throw TransportError.closed }

        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var ctx = nng_ctx()
        var rv = nng_ctx_open(&ctx, socket)
        guard rv == 0 else { throw TransportError.from(rv, operation: "opening a request context") }
        defer { nng_ctx_close(ctx) }  // also abandons a request still waiting for resend
        let resend = options.resendTime.map { $0.nngTimeout } ?? nng_duration(NNG_DURATION_INFINITE)
        rv = nng_ctx_set_ms(ctx, NNG_OPT_REQ_RESENDTIME, resend)
        guard rv == 0 else { throw TransportError.from(rv, operation: "setting req:resend-time") }

        let dropsBefore = pipes.removedCount
        func failure(_ rv: Int32?, _ operation: String) -> Error {
            switch rv {
            case nil, NNGErr.canceled?: return CancellationError()  // only the async API cancels
            case NNGErr.timedOut?:
                return TransportError.timeout(address: address, after: timeout,
                                              droppedConnections: pipes.removedCount - dropsBefore)
            case let rv?: return TransportError.from(rv, operation: operation)
            }
        }
        let sent = aio.send(try NNGMessage(copying: data), on: ctx, timeout: (deadline - clock.now).nngTimeout)
        guard sent == 0 else { throw failure(sent, "sending a request to \(address)") }
        let received = aio.receive(on: ctx, timeout: (deadline - clock.now).nngTimeout)
        guard received == 0 else { throw failure(received, "receiving a reply from \(address)") }
        guard let reply = aio.takeMessage() else {
            throw TransportError.nng(operation: "receiving a reply from \(address)", code: NNGErr.noMemory)
        }
        return reply.intoData()
    }
}
