import CNNG
import Foundation

/// Handles one request body and returns the reply body. Called concurrently from up to
/// `RequestServerOptions.contexts` threads; it may block (SQLite, disk), since each call
/// occupies one of the server's own threads, never an nng thread or the Swift cooperative pool.
public typealias RequestHandler = @Sendable (Data, PeerInfo) -> Data

public struct RequestServerOptions: Sendable {
    /// REP contexts, i.e. requests handled at the same time (each has its own thread).
    /// Keep it to the hundreds at most: per-context timers are O(n²) in 1.5.2 (#1663).
    public var contexts: Int
    /// `NNG_OPT_RECVMAXSZ` of the listener, set before it starts. The 1.5.2 default is 0 =
    /// unlimited, letting a peer's 8-byte length prefix drive an allocation of any size
    /// (NNG-NOTES §3). A request over the limit closes that connection; nng reports nothing here.
    public var maxMessageSize: Int
    /// Timeout of each context's receive. `close()` also cancels the receives, so this only
    /// bounds how long a missed cancel could delay shutdown.
    public var pollInterval: Duration
    /// Timeout of each reply's send (a REP send waits only when the peer's pipe is backed up).
    public var sendTimeout: Duration
    /// How long `close()` waits for handlers that are running to finish and send their
    /// replies before it closes the socket anyway.
    public var shutdownGrace: Duration
    /// How long `close()` then waits for `nng_close` before abandoning the socket
    /// (`NNGSocketClose`).
    public var closeTimeout: Duration

    /// Connections held at once (0 = no cap). Beyond it a new connection is closed as soon as
    /// nng has it (ADD_PRE), so the process never runs out of file descriptors: when accept
    /// fails with EMFILE inside nng nobody can connect any more and nothing says why. Servers
    /// derive it from their descriptor limit (`FileDescriptorLimit.connectionCap`).
    public var maxConnections: Int
    /// Once 90 % of `maxConnections` are open, connections that carried no request for this long
    /// are closed (every second), so idle peers cannot hold all the slots. A reaped worker or
    /// client reconnects by itself (nng redials, and REQ resends its pending request).
    public var idleConnectionTimeout: Duration
    /// Where the server reports refused and reaped connections (rate-limited).
    public var log: (@Sendable (String) -> Void)?
    /// Mutual TLS for a `tls+tcp://` address (required there, refused on any other): peers
    /// without a certificate from the farm CA fail the handshake and never become a connection.
    public var tls: TLSConfiguration?

    public init(contexts: Int = 8, maxMessageSize: Int = 64 << 20, pollInterval: Duration = .milliseconds(500),
                sendTimeout: Duration = .seconds(30), shutdownGrace: Duration = .seconds(5),
                closeTimeout: Duration = .seconds(5), maxConnections: Int = 0,
                idleConnectionTimeout: Duration = .seconds(120), log: (@Sendable (String) -> Void)? = nil,
                tls: TLSConfiguration? = nil) {
        self.tls = tls
        self.maxConnections = maxConnections
        self.idleConnectionTimeout = idleConnectionTimeout
        self.log = log
        self.contexts = contexts
        self.maxMessageSize = maxMessageSize
        self.pollInterval = pollInterval
        self.sendTimeout = sendTimeout
        self.shutdownGrace = shutdownGrace
        self.closeTimeout = closeTimeout
    }
}

/// The coordinator's socket: an nng REP listener served by N REP contexts, each driven by a
/// dedicated thread that loops receive → handler → send.
///
/// ```swift
/// let server = try RequestServer(listeningOn: "tcp://127.0.0.1:7733")   // binds now
/// try server.start { body, peer in reply(to: body) }                     // serves
/// server.close()
/// ```
///
/// nng facts this relies on (NNG-NOTES §1): a REP context must receive before it sends; each
/// context is an independent state machine, so N contexts answer N requests at once. A reply to
/// a peer whose connection is gone "succeeds" and is dropped silently; the peer's REQ socket
/// resends the request on its next connection, so **handlers see duplicates** and the
/// application must make them harmless (request ids). Messages are matched to their connection
/// with `nng_msg_get_pipe`, and the remote address is recorded when the pipe is added (`PeerInfo`).
public final class RequestServer: @unchecked Sendable {
    /// The URL as given.
    public let url: String
    /// The URL with the port actually bound (differs from `url` when it asked for port 0).
    public let address: String
    /// The TCP port bound (`NNG_OPT_TCP_BOUND_PORT`); nil for non-TCP transports.
    public let boundPort: Int?
    public let options: RequestServerOptions

    private let socket: nng_socket
    /// The +1 reference handed to nng's pipe callbacks; released after `nng_close`.
    private let registry: Unmanaged<PipeRegistry>
    private let pipes: PipeRegistry
    private let lock = NSLock()
    private var workers: [ContextWorker] = []
    private var started = false
    private var closed = false

    /// Opens a REP socket and starts listening on `url` (tcp://, tcp4://, tcp6://, ipc://, …).
    /// Connections are accepted (and queued) from here on; requests are answered after `start`.
    /// - Throws: `TransportError.addressInUse`, `.invalidAddress`, or `.nng`.
    public init(listeningOn url: String, options: RequestServerOptions = .init()) throws {
        precondition(options.contexts > 0, "a server needs at least one context")
        self.url = url
        self.options = options
        // The files are checked before any socket exists, so a mistake is one clear error.
        try TLSConfiguration.check(address: url, tls: options.tls)
        _ = try options.tls?.load()
        var socket = nng_socket()
        var rv = nng_rep0_open(&socket)
        guard rv == 0 else { throw TransportError.nng(operation: "opening a REP socket", code: rv) }
        let registry: Unmanaged<PipeRegistry>
        do {
            registry = try PipeRegistry.attach(to: socket)  // before the listener starts (NNG-NOTES §4)
        } catch {
            nng_close(socket)
            throw error
        }
        registry.takeUnretainedValue().maxPipes = max(options.maxConnections, 0)
        registry.takeUnretainedValue().log = options.log
        registry.takeUnretainedValue().requireTLSVerified = options.tls != nil
        func fail(_ error: TransportError) -> TransportError {
            nng_close(socket)
            registry.release()
            return error
        }
        var listener = nng_listener()
        rv = nng_listener_create(&listener, socket, url)
        guard rv == 0 else { throw fail(Self.listenError(rv, url: url)) }
        // Per listener and before start: the socket-level setter is deprecated (NNG-NOTES §3).
        rv = nng_listener_set_size(listener, NNG_OPT_RECVMAXSZ, options.maxMessageSize)
        guard rv == 0 else { throw fail(.nng(operation: "setting recv-size-max on \(url)", code: rv)) }
        if let tls = options.tls {
            // Our own configuration, on the listener (never the socket: NNG-NOTES §5), with
            // AUTH_MODE_REQUIRED and the farm CA; the listener takes its own hold.
            let config: OpaquePointer
            do { config = try tls.makeNNGConfig(server: true, dialing: url) } catch {
                nng_close(socket)
                registry.release()
                throw error
            }
            rv = nng_listener_set_ptr(listener, NNG_OPT_TLS_CONFIG, UnsafeMutableRawPointer(config))
            nng_tls_config_free(config)
            guard rv == 0 else { throw fail(.nng(operation: "setting the TLS configuration on \(url)", code: rv)) }
        }
        rv = nng_listener_start(listener, 0)
        guard rv == 0 else { throw fail(Self.listenError(rv, url: url)) }

        var port: Int32 = 0
        if nng_listener_get_int(listener, NNG_OPT_TCP_BOUND_PORT, &port) == 0 {
            boundPort = Int(port)
            address = Self.replacingPortZero(in: url, with: Int(port))
        } else {
            boundPort = nil
            address = url
        }
        self.socket = socket
        self.registry = registry
        self.pipes = registry.takeUnretainedValue()
    }

    deinit {
        close()
    }

    /// Number of connected peers (pipes).
    public var connectedPeers: Int { pipes.liveCount }

    /// Connections refused at `maxConnections` so far.
    public var refusedConnections: Int { pipes.rejectedCount }

    /// Starts the contexts and their threads. Call once.
    /// - Throws: `TransportError.closed` after `close()`, `.nng` if a context cannot be opened.
    public func start(handler: @escaping RequestHandler) throws {
        lock.lock(); defer { lock.unlock() }
        if closed { throw TransportError.closed }
        precondition(!started, "RequestServer.start called twice")
        started = true
        for index in 0..<options.contexts {
            var ctx = nng_ctx()
            let rv = nng_ctx_open(&ctx, socket)
            guard rv == 0 else { throw TransportError.from(rv, operation: "opening REP context \(index)") }
            let worker: ContextWorker
            do {
                worker = try ContextWorker(ctx: ctx, handler: handler, registry: pipes, options: options)
            } catch {
                nng_ctx_close(ctx)
                throw error
            }
            workers.append(worker)
            let thread = Thread { worker.run() }
            thread.name = "atelier-rep-\(index)"
            thread.start()
        }
        if options.maxConnections > 0 {
            let reaper = Thread { [weak self] in
                while let server = self, server.reapIdleConnections() { Thread.sleep(forTimeInterval: 1) }
            }
            reaper.name = "atelier-reaper"
            reaper.start()
        }
    }

    /// Near the cap, closes connections idle for longer than `idleConnectionTimeout`; false once
    /// the server is closed.
    private func reapIdleConnections() -> Bool {
        lock.lock()
        let isClosed = closed
        lock.unlock()
        if isClosed { return false }
        let cap = options.maxConnections
        guard pipes.liveCount * 10 >= cap * 9 else { return true }
        let idle = pipes.idlePipes(idleNanoseconds: UInt64(max(options.idleConnectionTimeout.milliseconds, 0)) * 1_000_000)
        for id in idle { nng_pipe_close(nng_pipe(id: id)) }
        if !idle.isEmpty {
            options.log?("closed \(idle.count) connection(s) idle for over \(options.idleConnectionTimeout) "
                         + "(\(pipes.liveCount) of at most \(cap) open)")
        }
        return true
    }

    /// Stops serving and closes the socket; idempotent, and bounded in time
    /// (`shutdownGrace` + `closeTimeout` at worst):
    /// 1. cancels every context's pending receive, so idle threads exit at once;
    /// 2. waits up to `shutdownGrace` for threads still in a handler to send their reply;
    /// 3. closes the socket (listener, pipes, contexts) under a watchdog (`NNGSocketClose`).
    ///    A thread still inside its handler after the grace period finds its send failing with
    ///    `NNG_ECLOSED` and exits on its own; it owns its aios, so nothing it uses is freed
    ///    under it.
    public func close() {
        lock.lock()
        if closed {
            lock.unlock()
            return
        }
        closed = true
        let workers = self.workers
        lock.unlock()

        for worker in workers { worker.stop() }
        let deadline = DispatchTime.now() + .milliseconds(Int(options.shutdownGrace.milliseconds))
        for worker in workers { _ = worker.finished.wait(timeout: deadline) }
        if NNGSocketClose.close(socket, within: options.closeTimeout, what: "the server on \(address)") {
            // No pipe callback runs after nng_close returns; the workers hold their own reference.
            registry.release()
        }
    }

    private static func listenError(_ rv: Int32, url: String) -> TransportError {
        switch rv {
        case NNGErr.addressInUse:
            return .addressInUse(address: url)
        case NNGErr.addressInvalid, NNGErr.invalid, NNGErr.notSupported:
            return .invalidAddress(address: url, reason: nngErrorString(rv))
        default:
            return .nng(operation: "listening on \(url)", code: rv)
        }
    }

    private static func replacingPortZero(in url: String, with port: Int) -> String {
        url.hasSuffix(":0") ? String(url.dropLast()) + String(port) : url
    }
}

/// One REP context and the thread that drives it. The thread owns the context and both aios
/// for its whole life (it retains this object), so `close()` never frees anything in use.
private final class ContextWorker: @unchecked Sendable {
    let ctx: nng_ctx
    let handler: RequestHandler
    let registry: PipeRegistry
    let recvAio: NNGAio
    let sendAio: NNGAio
    let pollTimeout: nng_duration
    let sendTimeout: nng_duration
    let finished = DispatchSemaphore(value: 0)

    init(ctx: nng_ctx, handler: @escaping RequestHandler, registry: PipeRegistry, options: RequestServerOptions) throws {
        self.ctx = ctx
        self.handler = handler
        self.registry = registry
        self.recvAio = try NNGAio()
        self.sendAio = try NNGAio()
        self.pollTimeout = options.pollInterval.nngTimeout
        self.sendTimeout = options.sendTimeout.nngTimeout
    }

    /// Called from `close()`: the pending receive completes with `NNG_ECANCELED`, and no new
    /// receive starts. Sends are not cancelled, so a reply being sent still goes out.
    func stop() {
        recvAio.cancel()
    }

    func run() {
        defer {
            nng_ctx_close(ctx)  // NNG_ECLOSED if the socket is already closed: harmless
            finished.signal()
        }
        while true {
            guard let rv = recvAio.receive(on: ctx, timeout: pollTimeout) else { return }  // stopped
            switch rv {
            case 0:
                serveOne()
            case NNGErr.timedOut:
                continue
            case NNGErr.canceled, NNGErr.closed:
                return
            default:
                Thread.sleep(forTimeInterval: 0.01)  // e.g. NNG_ENOMEM: don't spin
            }
        }
    }

    private func serveOne() {
        guard let message = recvAio.takeMessage() else { return }
        registry.touch(message.pipeID)
        let peer = registry.peer(pipeID: message.pipeID)
        let body = message.intoData()
        let reply = handler(body, peer)
        guard let out = try? NNGMessage(copying: reply) else { return }  // ENOMEM: the peer times out
        // A failed send (pipe gone: in fact nng reports success; socket closed) needs no action:
        // the requester resends on its next connection.
        _ = sendAio.send(out, on: ctx, timeout: sendTimeout)
    }
}
