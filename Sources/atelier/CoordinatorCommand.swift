import ArgumentParser
import Foundation
import AtelierFarm
import Logging
#if StatusPage
import AtelierFarmObservability
#endif

/// `atelier coordinator`: the farm's durable queue, serving workers and clients on one address.
struct CoordinatorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "Run the farm coordinator: a durable job queue that workers pull from.",
        discussion: """
            State lives in DIR/atelier.sqlite (WAL) and results under DIR/results; kill it at any time \
            and start it again on the same --data: jobs continue, leases in flight expire and are retried.

            With --store postgres://USER@HOST:PORT/DATABASE the queue lives in that PostgreSQL database \
            instead (its tables are created on first start); result PNGs stay under --data.

            Examples:
              atelier coordinator --data /var/lib/atelier
              atelier coordinator --data /srv/farm --store postgres://atelier@db.lan:5432/atelier
              atelier coordinator --listen tcp://0.0.0.0:7733 --data ./farm --lease-seconds 60
              atelier coordinator --data ./farm --http 127.0.0.1:9733   (metrics on /metrics, status page on /)
            """)

    @Option(name: [.customLong("http"), .customLong("metrics")],
            help: "HOST:PORT for HTTP: Prometheus metrics on /metrics, the status page on / (read-only; off by default).")
    var http: String?

    @Option(help: "nng address to listen on (default: $ATELIER_COORDINATOR, else tcp://127.0.0.1:7733).")
    var listen: String?

    @Option(help: "Folder for the database and the result PNGs (created if missing).")
    var data: String

    @Option(help: "Where the queue lives: sqlite (default: DIR/atelier.sqlite) or postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE.")
    var store: String = "sqlite"

    @Option(parsing: .unconditional, help: "With --store postgres://…: seconds the serving coordinator's leadership lasts without renewal; a standby on the same database takes over once it lapses.")
    var leaderLeaseSeconds: Double = 6

    @Option(parsing: .unconditional, help: "Seconds a lease lives without a heartbeat.")
    var leaseSeconds: Double = 30

    @Option(parsing: .unconditional, help: "Attempts per task before its job fails.")
    var maxAttempts: Int = 3

    @Option(parsing: .unconditional, help: "Most unfinished tasks the queue holds; submissions beyond it are refused.")
    var maxQueue: Int = 10_000

    @Option(parsing: .unconditional, help: "Concurrent requests served.")
    var contexts: Int = 8

    @Option(parsing: .unconditional, help: "Seconds after which a silent worker holding no lease is forgotten.")
    var workerRetentionSeconds: Double = 3600

    @Option(parsing: .unconditional, help: "Most connections held at once (default: the open-file limit minus a reserve).")
    var maxConnections: Int?

    @Option(parsing: .unconditional, help: "Near the connection cap, connections idle this many seconds are closed.")
    var idleConnectionSeconds: Double = 120

    @OptionGroup var tls: TLSOptions

    @Option(help: "Tokens file (lines `NAME ROLE SHA256HEX` from `atelier token new`; default: $ATELIER_TOKENS_FILE). Without it access is open.")
    var tokens: String?

    @OptionGroup var logging: LogOptions

    /// Why an option cannot work in this build (one built with `--disable-default-traits`, as the demo does).
    static func missingTrait(_ trait: String, for option: String) -> String {
        "\(option) needs the \(trait) trait, which this build of atelier left out (scripts/demo.sh builds without it); "
            + "build with the default traits: swift build -c release"
    }

    func run() throws {
        logging.bootstrap()
        // Checked before anything is opened, so a typo fails at once.
        #if StatusPage
        let httpAddress: HTTPBindAddress?
        do { httpAddress = try http.map { try HTTPBindAddress(parsing: $0) } } catch { throw CLIError("\(error)") }
        #else
        if http != nil { throw CLIError(Self.missingTrait("StatusPage", for: "--http")) }
        #endif
        let dir = URL(fileURLWithPath: (data as NSString).expandingTildeInPath)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var options = CoordinatorOptions()
        options.leaseTTL = leaseSeconds
        options.defaultMaxAttempts = maxAttempts
        options.maxUnfinishedTasks = maxQueue
        options.workerRetention = workerRetentionSeconds
        // Everything about access is checked before the database is opened: a bad file is one line.
        let address = FarmAddress.resolve(flag: listen)
        let tlsConfiguration = try tls.configuration()
        try TLSConfiguration.check(address: address, tls: tlsConfiguration)
        _ = try tlsConfiguration?.load()
        let tokensFile = tokens ?? ProcessInfo.processInfo.environment[AccessTokens.environmentVariable].flatMap { $0.isEmpty ? nil : $0 }
        if let tokensFile {
            options.accessTokens = try AccessTokens.load(path: tokensFile)
        }
        // Watches wait in a REP context: leave at least half of them to workers.
        options.maxWatchers = max(contexts, 1) / 2
        let stop = SignalWaiter()
        let coordinator: Coordinator
        #if PostgreSQL
        var leadership: (store: PostgresCoordinatorStore, holder: String)?
        #else
        let leadership: (store: Never, holder: String)? = nil
        #endif
        if store == "sqlite" {
            coordinator = try Coordinator(directory: dir, options: options)
        } else if store.hasPrefix("postgres://") || store.hasPrefix("postgresql://") {
            #if !PostgreSQL
            throw CLIError(Self.missingTrait("PostgreSQL", for: "--store postgres://…"))
            #else
            guard leaderLeaseSeconds.isFinite, leaderLeaseSeconds >= 1, leaderLeaseSeconds <= 3600 else {
                throw ValidationError("--leader-lease-seconds must be in [1, 3600]")
            }
            let database = try PostgresCoordinatorStore(url: store, options: options, maxConnections: max(contexts, 1) + 2)
            // Active/standby: serve only while holding the leadership; wait for it otherwise.
            let holder = "\(ProcessInfo.processInfo.hostName)/\(getpid())/\(UUID().uuidString.prefix(8))"
            let ttlMs = Int64(leaderLeaseSeconds * 1000)
            var announced = false
            while true {
                let now = Int64(Date().timeIntervalSince1970 * 1000)
                let current = try database.acquireLeadership(holder: holder, ttlMs: ttlMs, now: now)
                if current.holder == holder {
                    log("leading (epoch \(current.epoch)) as \(holder)")
                    break
                }
                if !announced {
                    log("standby: \(current.holder) leads (epoch \(current.epoch)); taking over when its lease lapses")
                    announced = true
                }
                if stop.wait(seconds: max(0.2, leaderLeaseSeconds / 6)) { return }
            }
            leadership = (database, holder)
            coordinator = try Coordinator(store: database, directory: dir, options: options)
            #endif
        } else {
            throw ValidationError("--store must be sqlite or a postgres://USER@HOST:PORT/DATABASE URL, not \"\(store)\"")
        }
        coordinator.logger = Logger(label: "atelier.coordinator")
        // Every connection is a file descriptor: take the hard limit, and cap connections below
        // it so idle peers cannot lock everyone out (EMFILE inside nng is silent).
        let limits = FileDescriptorLimit.raiseSoftLimitToHard()
        let soft = limits?.soft ?? 1024
        let cap = maxConnections ?? FileDescriptorLimit.connectionCap(softLimit: soft)
        guard cap >= 1, idleConnectionSeconds.isFinite, idleConnectionSeconds > 0, idleConnectionSeconds <= 86_400 else {
            throw ValidationError("--max-connections must be at least 1 and --idle-connection-seconds in (0, 86400]")
        }
        log("open-file limit \(soft) (hard \(limits.map { $0.hard == Int.max ? "unlimited" : String($0.hard) } ?? "unknown")); "
            + "at most \(cap) connections, idle ones closed after \(Int(idleConnectionSeconds)) s near the cap")
        let serverOptions = RequestServerOptions(
            contexts: contexts, maxConnections: cap,
            idleConnectionTimeout: .milliseconds(Int64(idleConnectionSeconds * 1000)),
            log: { log($0, level: .warning, metadata: ["event": "connection_limit"]) },
            tls: tlsConfiguration)
        let server = try RequestServer(listeningOn: address, options: serverOptions)
        try server.serve(refused: { code, message, peer in coordinator.logRefusal(code, message, peer: peer.description) }) {
            request, peer in coordinator.handle(request, peer: peer.description)
        }
        log("coordinator listening on \(server.address), data in \(dir.path)"
            + (store == "sqlite" ? "" : ", queue in PostgreSQL")
            + (tlsConfiguration == nil ? "" : ", mutual TLS")
            + (options.accessTokens.map { ", \($0.entries.count) token(s) from \(tokensFile ?? "")" } ?? ", access open (no --tokens)"))
        if tlsConfiguration == nil && !FarmAddress.isLoopback(server.address) {
            log("warning: serving \(server.address) beyond loopback without TLS: anyone who reaches it can talk to the farm; use tls+tcp:// with --tls-ca/--tls-cert/--tls-key on trusted networks only", level: .warning)
        }
        #if StatusPage
        var observability: ObservabilityServer?
        if let httpAddress {
            // With --tokens the page and the metrics are behind the same tokens: any role that
            // may read jobs (submit, admin) gets in; a work token does not.
            let authorize: (@Sendable (String?) -> Bool)? = options.accessTokens.map { tokens in
                { token in
                    guard let token, let caller = tokens.authenticate(token) else { return false }
                    return AccessPolicy.allows(caller.role, .listJobs(.init()))
                }
            }
            let http = ObservabilityServer(coordinator: coordinator, address: httpAddress, authorize: authorize,
                                           log: { log($0) })
            do {
                let bound = try http.start()
                log("metrics on http://\(bound)/metrics, status page on http://\(bound)/"
                    + (bound.isLoopback ? "" : " (read-only, open to anyone who reaches it: keep it on a trusted network)"))
            } catch {
                server.close()
                throw CLIError("--http: \(error)")
            }
            observability = http
        }
        #endif

        // Expired leases are also requeued lazily on every lease request; the timer keeps status
        // honest when no worker is asking. A leader renews its leadership on the same timer and
        // stops serving the moment it finds it lost (a standby has taken over).
        let interval = leadership == nil ? max(1, leaseSeconds / 6) : min(max(1, leaseSeconds / 6), leaderLeaseSeconds / 3)
        while !stop.wait(seconds: interval) {
            #if PostgreSQL
            if let (database, holder) = leadership {
                let now = Int64(Date().timeIntervalSince1970 * 1000)
                do {
                    let current = try database.acquireLeadership(holder: holder, ttlMs: Int64(leaderLeaseSeconds * 1000), now: now)
                    if current.holder != holder {
                        log("lost the leadership to \(current.holder) (epoch \(current.epoch)); stopping", level: .error)
                        server.close()
                        throw ExitCode(3)
                    }
                } catch let error as ExitCode {
                    throw error
                } catch {
                    log("renewing the leadership: \(error)", level: .error)
                }
            }
            #endif
            do { try coordinator.performMaintenance() } catch { log("maintenance: \(error)", level: .error) }
        }
        log("shutting down")
        #if StatusPage
        observability?.close()
        #endif
        server.close()
        #if PostgreSQL
        if let (database, holder) = leadership { try? database.resignLeadership(holder: holder) }
        #endif
        try coordinator.close()
    }
}

/// Blocks until SIGINT or SIGTERM.
final class SignalWaiter: @unchecked Sendable {
    private let semaphore = DispatchSemaphore(value: 0)
    private var sources: [DispatchSourceSignal] = []

    init() {
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler { [semaphore] in semaphore.signal() }
            s.resume()
            sources.append(s)
        }
    }

    func waitForever() { semaphore.wait() }

    /// True once a signal has arrived; waits at most `seconds`.
    func wait(seconds: Double) -> Bool {
        semaphore.wait(timeout: .now() + seconds) == .success
    }
}

