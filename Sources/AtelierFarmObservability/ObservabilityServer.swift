import AtelierFarmCoordinator
import AtelierFarmProtocol
import Foundation
import Hummingbird
import Logging

/// The coordinator's HTTP side (Hummingbird), beside its nng server: `GET /metrics` (Prometheus
/// text format, see `FarmMetrics`), `GET /` (the status page, `StatusPage`) and
/// `GET /jobs/ID/thumb/N.png` (thumbnails of finished images). Read-only: there is no route that
/// changes anything, so the worst an open endpoint gives away is what the page shows.
///
/// It runs on its own event loops and reads the store from its own threads (`BlockingReads`),
/// so a slow scrape never holds an nng request, and a busy farm never blocks a scrape.
///
/// Access: with `authorize` set (when the farm runs with role tokens), every request must carry
/// a token that `authorize` accepts (`Authorization: Bearer TOKEN`, or HTTP Basic with the token
/// as the password), or gets 401.
public final class ObservabilityServer: @unchecked Sendable {
    /// Decides whether a request may read: gets the bearer token (nil when the request has none).
    public typealias Authorizer = @Sendable (_ bearerToken: String?) -> Bool

    public let metrics: FarmMetrics
    private let coordinator: Coordinator
    private let requested: HTTPBindAddress
    private let authorize: Authorizer?
    private let log: @Sendable (String) -> Void
    private let thumbnails = Thumbnails()
    private let lock = NSLock()
    private var task: Task<Void, Error>?
    private var bound: HTTPBindAddress?

    public init(coordinator: Coordinator, address: HTTPBindAddress, metrics: FarmMetrics = FarmMetrics(),
                authorize: Authorizer? = nil, log: @escaping @Sendable (String) -> Void = { _ in }) {
        self.coordinator = coordinator
        self.requested = address
        self.metrics = metrics
        self.authorize = authorize
        self.log = log
    }

    /// The address it listens on (with the real port when 0 was asked for); nil before `start`.
    public var address: HTTPBindAddress? { lock.lock(); defer { lock.unlock() }; return bound }

    /// Binds and starts serving in the background; returns once it listens (or throws why not,
    /// such as an address in use). Also makes the coordinator report request latencies.
    @discardableResult
    public func start(timeout: TimeInterval = 30) throws -> HTTPBindAddress {
        let ready = DispatchSemaphore(value: 0)
        let outcome = StartOutcome()
        let router = Router()
        addRoutes(to: router)
        let requested = self.requested
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(requested.host, port: requested.port), serverName: "atelier"),
            onServerRunning: { channel in
                outcome.set(.success(channel.localAddress?.port ?? requested.port))
                ready.signal()
            },
            logger: Self.quietLogger)
        let task = Task.detached {
            do {
                try await app.run()
            } catch {
                outcome.set(.failure(error))
                ready.signal()
                throw error
            }
        }
        lock.lock()
        self.task = task
        lock.unlock()
        guard ready.wait(timeout: .now() + timeout) == .success, let result = outcome.value else {
            task.cancel()
            throw ObservabilityError("the HTTP server on \(requested) did not start within \(Int(timeout)) s")
        }
        switch result {
        case .failure(let error):
            throw ObservabilityError("cannot serve HTTP on \(requested): \(error)")
        case .success(let port):
            let address = HTTPBindAddress(host: requested.host, port: port)
            lock.lock()
            bound = address
            lock.unlock()
            let metrics = self.metrics
            coordinator.observeRequests { kind, seconds, _ in metrics.observeRequest(kind: kind, seconds: seconds) }
            return address
        }
    }

    /// Stops serving (connections in flight are dropped) and detaches from the coordinator.
    public func close() {
        coordinator.observeRequests(nil)
        lock.lock()
        let task = self.task
        self.task = nil
        lock.unlock()
        task?.cancel()
    }

    /// Hummingbird's own log, errors only: a request it cannot parse is the client's problem,
    /// and stopping the server (a task cancellation) is not an error. Start failures are thrown.
    private static let quietLogger: Logger = {
        var logger = Logger(label: "atelier.http")
        logger.logLevel = .critical
        return logger
    }()

    // MARK: Routes

    private func addRoutes(to router: Router<BasicRequestContext>) {
        let store = coordinator.store
        let directory = coordinator.directory
        let metrics = self.metrics
        let thumbnails = self.thumbnails
        router.get("/metrics") { [self] request, _ -> Response in
            if let refused = refusal(request) { return refused }
            let body = try await BlockingReads.run { metrics.scrape(store: store) }
            return Self.response(.ok, contentType: "text/plain; version=0.0.4; charset=utf-8", body)
        }
        router.get("/") { [self] request, _ -> Response in
            if let refused = refusal(request) { return refused }
            do {
                let html = try await BlockingReads.run { try StatusPage.read(from: store).html() }
                return Self.response(.ok, contentType: "text/html; charset=utf-8", Array(html.utf8))
            } catch {
                log("status page: \(error)")
                return Self.text(.internalServerError, "cannot read the farm's state: \(error)\n")
            }
        }
        router.get("/jobs/:job/thumb/:image") { [self] request, context -> Response in
            if let refused = refusal(request) { return refused }
            let jobID = context.parameters.get("job") ?? ""
            let file = context.parameters.get("image") ?? ""
            guard file.hasSuffix(".png"), let index = Int(file.dropLast(4)), index >= 0, index < 1_000_000,
                  !jobID.isEmpty, jobID.utf8.count <= 128 else {
                return Self.text(.badRequest, "ask for /jobs/JOB_ID/thumb/N.png with N an image index\n")
            }
            do {
                let png = try await BlockingReads.run {
                    try thumbnails.png(jobID: jobID, index: index, store: store, directory: directory)
                }
                var response = Self.response(.ok, contentType: "image/png", png)
                response.headers[.cacheControl] = "max-age=3600"  // a stored result never changes
                return response
            } catch let error as CoordinatorError where error.code == .notFound {
                return Self.text(.notFound, "\(error.message)\n")
            } catch {
                log("thumbnail \(jobID)/\(index): \(error)")
                return Self.text(.internalServerError, "cannot make the thumbnail: \(error)\n")
            }
        }
    }

    /// 401 unless access is open or the request's token is accepted. The token comes as
    /// `Authorization: Bearer TOKEN` (curl, Prometheus' `authorization` config) or as the password
    /// of HTTP Basic auth (any user name), which a browser asks for by itself after the 401's
    /// `WWW-Authenticate: Basic` challenge, so the status page opens in a plain browser.
    private func refusal(_ request: Request) -> Response? {
        guard let authorize else { return nil }
        let token = request.headers[.authorization].flatMap(Self.token(fromAuthorization:))
        if authorize(token) { return nil }
        var response = Self.text(.unauthorized,
                                 "this farm needs a token: send Authorization: Bearer TOKEN, or log in with the token as the password\n")
        response.headers[.wwwAuthenticate] = "Basic realm=\"atelier\", charset=\"UTF-8\""
        return response
    }

    /// The token of an `Authorization` header value: a Bearer token, or the password of Basic
    /// credentials (`base64(user:token)`); nil for anything else.
    static func token(fromAuthorization header: String) -> String? {
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2 else { return nil }
        let value = String(parts[1]).trimmingCharacters(in: .whitespaces)
        switch parts[0].lowercased() {
        case "bearer":
            return value
        case "basic":
            guard let data = Data(base64Encoded: value), let pair = String(data: data, encoding: .utf8),
                  let colon = pair.firstIndex(of: ":") else { return nil }
            return String(pair[pair.index(after: colon)...])
        default:
            return nil
        }
    }

    private static func response(_ status: HTTPResponse.Status, contentType: String, _ bytes: [UInt8]) -> Response {
        Response(status: status, headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    private static func text(_ status: HTTPResponse.Status, _ message: String) -> Response {
        response(status, contentType: "text/plain; charset=utf-8", Array(message.utf8))
    }
}

/// How `start` learnt whether the server came up.
private final class StartOutcome: @unchecked Sendable {
    private let lock = NSLock()
    private var result: Result<Int, Error>?

    var value: Result<Int, Error>? { lock.lock(); defer { lock.unlock() }; return result }

    func set(_ value: Result<Int, Error>) {
        lock.lock()
        if result == nil { result = value }
        lock.unlock()
    }
}
