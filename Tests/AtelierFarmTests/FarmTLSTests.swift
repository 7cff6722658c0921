import AtelierFarm
import Foundation
import XCTest

/// Mutual TLS on real sockets: certificates from scripts/make-test-ca.sh (generated into a
/// temporary folder per run; no key is committed), a `RequestServer` on `tls+tcp://`, and
/// clients with and without a certificate from the farm CA. Then the whole farm over TLS with
/// role tokens: the real `atelier` coordinator, workers and CLI.
final class FarmTLSTests: XCTestCase {
    /// The farm CA and, for the refusal tests, a second CA that has nothing to do with the farm.
    private static let certificates: Result<(farm: URL, other: URL), Error> = Result {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("atelier-tls-\(getpid())-\(UUID().uuidString.prefix(8))")
        let farm = root.appendingPathComponent("farm"), other = root.appendingPathComponent("other")
        try makeCA(farm)
        try makeCA(other)
        return (farm, other)
    }

    /// The keys made for this run go with it.
    override class func tearDown() {
        if case .success(let dirs) = certificates {
            try? FileManager.default.removeItem(at: dirs.farm.deletingLastPathComponent())
        }
        super.tearDown()
    }

    private static func makeCA(_ dir: URL) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [FarmProcessSupport.repoRoot.appendingPathComponent("scripts/make-test-ca.sh").path, dir.path]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw FarmTestError("scripts/make-test-ca.sh \(dir.path) exited with \(process.terminationStatus) (is openssl installed?)")
        }
    }

    private func dirs() throws -> (farm: URL, other: URL) { try Self.certificates.get() }

    private func tls(_ dir: URL, _ who: String, serverName: String? = nil) -> TLSConfiguration {
        TLSConfiguration(caFile: dir.appendingPathComponent("ca.crt").path,
                         certFile: dir.appendingPathComponent("\(who).crt").path,
                         keyFile: dir.appendingPathComponent("\(who).key").path, serverName: serverName)
    }

    /// Counts the requests that reach the handler: refused peers must never get that far.
    private final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var value = 0
        func increment() { lock.lock(); value += 1; lock.unlock() }
        var count: Int { lock.lock(); defer { lock.unlock() }; return value }
    }

    private func startServer(_ farm: URL, counter: Counter) throws -> RequestServer {
        let server = try RequestServer(listeningOn: "tls+tcp://127.0.0.1:0", options: RequestServerOptions(
            contexts: 2, pollInterval: .milliseconds(100), shutdownGrace: .seconds(1), closeTimeout: .seconds(2),
            tls: tls(farm, "coordinator")))
        try server.start { body, _ in
            counter.increment()
            return Data("pong:".utf8) + body
        }
        return server
    }

    private func client(_ address: String, _ configuration: TLSConfiguration?) throws -> RequestClient {
        try RequestClient(dialing: address, options: RequestClientOptions(
            resendTime: .seconds(1), reconnectMin: .milliseconds(50), reconnectMax: .milliseconds(200),
            closeTimeout: .seconds(2), tls: configuration))
    }

    func testOnlyPeersWithAFarmCertificateGetAnswersOverTLS() throws {
        let (farm, other) = try dirs()
        let counter = Counter()
        let server = try startServer(farm, counter: counter)
        defer { server.close() }
        guard let port = server.boundPort else { return XCTFail("no bound port") }
        let address = "tls+tcp://127.0.0.1:\(port)"

        let good = try client(address, tls(farm, "client"))
        defer { good.close() }
        XCTAssertEqual(try good.request(Data("hi".utf8), timeout: .seconds(10)), Data("pong:hi".utf8))
        // The hostname check is on: "localhost" is a SAN of the coordinator's certificate too.
        let byName = try client("tls+tcp://localhost:\(port)", tls(farm, "worker"))
        defer { byName.close() }
        XCTAssertEqual(try byName.request(Data("w".utf8), timeout: .seconds(10)), Data("pong:w".utf8))

        // Refused: a certificate from another CA, no TLS at all, and a coordinator certificate
        // that does not carry the name the client expects.
        let refused: [(String, RequestClient)] = [
            ("another CA's certificate", try client(address, tls(other, "client"))),
            ("plain TCP, no certificate", try client("tcp://127.0.0.1:\(port)", nil)),
            ("the wrong server name", try client(address, tls(farm, "client", serverName: "coordinator.elsewhere"))),
        ]
        for (what, peer) in refused {
            defer { peer.close() }
            XCTAssertThrowsError(try peer.request(Data("let me in".utf8), timeout: .seconds(2)), what) { error in
                guard case TransportError.timeout = error else { return XCTFail("\(what): \(error)") }
            }
        }
        // openssl's own client, which trusts the farm CA (so it accepts the coordinator) but
        // presents no certificate, or one from another CA: the coordinator ends the handshake.
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl") {
            let stranger = ["-cert", other.appendingPathComponent("client.crt").path, "-key", other.appendingPathComponent("client.key").path]
            for (what, extra) in [("no certificate", [String]()), ("another CA's certificate", stranger)] {
                let sClient = Process()
                sClient.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
                sClient.arguments = ["s_client", "-connect", "127.0.0.1:\(port)", "-CAfile", farm.appendingPathComponent("ca.crt").path,
                                     "-tls1_2", "-verify_return_error", "-quiet"] + extra
                let input = Pipe()
                sClient.standardInput = input
                sClient.standardOutput = FileHandle.nullDevice
                sClient.standardError = FileHandle.nullDevice
                try sClient.run()
                // Bytes that would be an SP handshake and a request if the TLS handshake let them through.
                input.fileHandleForWriting.write(Data([0, 0x53, 0x50, 0, 0, 0x30, 0, 0]))
                try? input.fileHandleForWriting.close()
                sClient.waitUntilExit()
                XCTAssertNotEqual(sClient.terminationStatus, 0, "openssl s_client with \(what) completed the handshake")
            }
        }
        XCTAssertEqual(counter.count, 2, "only the two clients with farm certificates reached the handler")
        XCTAssertEqual(try good.request(Data("again".utf8), timeout: .seconds(10)), Data("pong:again".utf8),
                       "the server still serves after the refusals")
    }

    func testTLSFileMistakesAreOneLineErrorsNamingTheFile() throws {
        let (farm, other) = try dirs()
        let notPEM = farm.appendingPathComponent("notes.txt")
        try Data("not a certificate\n".utf8).write(to: notPEM)
        let ca = farm.appendingPathComponent("ca.crt").path
        let cases: [(TLSConfiguration, String)] = [
            (TLSConfiguration(caFile: "/nonexistent/ca.crt", certFile: ca, keyFile: ca), "--tls-ca /nonexistent/ca.crt: no such file"),
            (TLSConfiguration(caFile: ca, certFile: farm.appendingPathComponent("client.crt").path,
                              keyFile: farm.appendingPathComponent("worker.key").path), "is not the private key of --tls-cert"),
            (TLSConfiguration(caFile: ca, certFile: other.appendingPathComponent("client.crt").path,
                              keyFile: other.appendingPathComponent("client.key").path), "does not verify against --tls-ca"),
            (TLSConfiguration(caFile: ca, certFile: notPEM.path, keyFile: ca), "--tls-cert \(notPEM.path): not a PEM certificate"),
            (TLSConfiguration(caFile: ca, certFile: farm.appendingPathComponent("client.crt").path, keyFile: farm.path),
             "--tls-key \(farm.path): not a readable file"),
            (TLSConfiguration(caFile: ca, certFile: farm.appendingPathComponent("client.crt").path, keyFile: ca),
             "not a PEM unencrypted private key"),
        ]
        for (configuration, expected) in cases {
            for attempt in ["client", "server"] {
                XCTAssertThrowsError(try attempt == "client"
                    ? RequestClient(dialing: "tls+tcp://127.0.0.1:1", options: .init(tls: configuration)).close()
                    : RequestServer(listeningOn: "tls+tcp://127.0.0.1:0", options: .init(tls: configuration)).close()) { error in
                    XCTAssertTrue(error is TLSConfigurationError, "\(attempt): \(error)")
                    XCTAssertTrue("\(error)".contains(expected), "\(attempt): \(error)")
                    XCTAssertFalse("\(error)".contains("\n"))
                }
            }
        }
        XCTAssertThrowsError(try RequestServer(listeningOn: "tls+tcp://127.0.0.1:0")) { error in
            XCTAssertEqual(error as? TLSConfigurationError, .tlsAddressWithoutFiles(address: "tls+tcp://127.0.0.1:0"))
        }
        XCTAssertThrowsError(try RequestClient(dialing: "tcp://127.0.0.1:1", options: .init(tls: tls(farm, "client")))) { error in
            XCTAssertEqual(error as? TLSConfigurationError, .filesWithoutTLSAddress(address: "tcp://127.0.0.1:1"))
        }
        XCTAssertThrowsError(try TLSConfiguration.resolve(ca: ca, cert: nil, key: nil, environment: [:])) { error in
            XCTAssertEqual("\(error)", "TLS needs --tls-ca, --tls-cert and --tls-key together (or ATELIER_TLS_CA/_CERT/_KEY); missing --tls-cert, --tls-key")
        }
        XCTAssertEqual(try TLSConfiguration.resolve(ca: nil, cert: nil, key: nil, environment: [
            "ATELIER_TLS_CA": "a", "ATELIER_TLS_CERT": "b", "ATELIER_TLS_KEY": "c",
        ]), TLSConfiguration(caFile: "a", certFile: "b", keyFile: "c"))
        XCTAssertNil(try TLSConfiguration.resolve(ca: nil, cert: nil, key: nil, environment: [:]))
        XCTAssertTrue(FarmAddress.isLoopback("tcp://127.0.0.1:7733") && FarmAddress.isLoopback("tcp://[::1]:1")
                      && FarmAddress.isLoopback("ipc:///tmp/x") && !FarmAddress.isLoopback("tcp://0.0.0.0:7733")
                      && !FarmAddress.isLoopback("tls+tcp://farm.lan:7733"))
    }

    // MARK: The farm over TLS, with tokens

    func testCoordinatorStartupChecksAreOneLineAndPlainTCPBeyondLoopbackWarns() throws {
        let (farm, _) = try dirs()
        let cluster = try FarmCluster(testName: name)
        var keep = true
        defer { cluster.shutdown(keep: keep) }
        func oneLine(_ text: String) -> String { text.trimmingCharacters(in: .whitespacesAndNewlines) }

        let noFiles = try cluster.run("no-files", ["coordinator", "--listen", "tls+tcp://127.0.0.1:\(cluster.port)",
                                                   "--data", cluster.dataDir.path], timeout: 30)
        XCTAssertNotEqual(noFiles.status, 0)
        XCTAssertEqual(oneLine(noFiles.stderr), "Error: tls+tcp://127.0.0.1:\(cluster.port) is a TLS address: give --tls-ca, "
                       + "--tls-cert and --tls-key (see scripts/make-test-ca.sh)")

        let badTokens = cluster.root.appendingPathComponent("tokens")
        try Data("ops admin not-a-hash\n".utf8).write(to: badTokens)
        let tokens = try cluster.run("bad-tokens", ["coordinator", "--listen", "tcp://127.0.0.1:\(cluster.port)",
                                                    "--data", cluster.dataDir.path, "--tokens", badTokens.path], timeout: 30)
        XCTAssertNotEqual(tokens.status, 0)
        XCTAssertEqual(oneLine(tokens.stderr), "Error: tokens file \(badTokens.path) line 1: the hash must be 64 hex digits "
                       + "(the SHA-256 of the token), not the token itself")

        let mismatched = try cluster.run("mismatch", ["coordinator", "--listen", "tls+tcp://127.0.0.1:\(cluster.port)",
                                                      "--data", cluster.dataDir.path,
                                                      "--tls-ca", farm.appendingPathComponent("ca.crt").path,
                                                      "--tls-cert", farm.appendingPathComponent("coordinator.crt").path,
                                                      "--tls-key", farm.appendingPathComponent("client.key").path], timeout: 30)
        XCTAssertNotEqual(mismatched.status, 0)
        XCTAssertTrue(oneLine(mismatched.stderr).hasPrefix("Error: --tls-key ") && !oneLine(mismatched.stderr).contains("\n"),
                      mismatched.stderr)

        // Plain TCP on every interface: it serves, with a one-line warning.
        let open = try cluster.spawn("open", ["coordinator", "--listen", "tcp://0.0.0.0:\(cluster.port)", "--data", cluster.dataDir.path])
        _ = try FarmProcessSupport.poll("the startup warning", timeout: 30, interval: 0.2) { () -> Bool? in
            guard open.isRunning else { throw FarmTestError("the coordinator exited\n\(open.tail())") }
            return open.stderr.contains("warning: serving tcp://0.0.0.0:\(cluster.port) beyond loopback without TLS") ? true : nil
        }
        open.terminate()
        keep = false
    }

    func testFarmOverTLSWithTokensRendersRefusesAndDrains() throws {
        let (farm, other) = try dirs()
        let cluster = try FarmCluster(testName: name)
        var keep = true
        defer { cluster.shutdown(keep: keep) }
        let address = "tls+tcp://127.0.0.1:\(cluster.port)"
        func files(_ dir: URL, _ who: String) -> [String] {
            ["--tls-ca", dir.appendingPathComponent("ca.crt").path, "--tls-cert", dir.appendingPathComponent("\(who).crt").path,
             "--tls-key", dir.appendingPathComponent("\(who).key").path]
        }

        // Tokens as a user makes them: the secret on stdout, the tokens-file line on stderr.
        let tokensFile = cluster.root.appendingPathComponent("tokens")
        var tokenFiles: [String: String] = [:]
        var lines = ""
        for (name, role) in [("alice", "submit"), ("render1", "work"), ("ops", "admin")] {
            let made = try cluster.run("token", ["token", "new", "--name", name, "--role", role], timeout: 30)
            XCTAssertEqual(made.status, 0, made.stderr)
            let path = cluster.root.appendingPathComponent("\(name).token").path
            try Data(made.stdout.utf8).write(to: URL(fileURLWithPath: path))
            tokenFiles[name] = path
            lines += made.stderr
        }
        try Data(lines.utf8).write(to: tokensFile)

        let httpPort = try FarmProcessSupport.freePort()
        let coordinator = try cluster.spawn("coordinator", ["coordinator", "--listen", address, "--data", cluster.dataDir.path,
                                                            "--lease-seconds", "6", "--tokens", tokensFile.path,
                                                            "--http", "127.0.0.1:\(httpPort)"] + files(farm, "coordinator"))
        let admin = try FarmClient(address: address, defaultTimeout: .seconds(2),
                                   options: RequestClientOptions(tls: tls(farm, "client")),
                                   authToken: try String(contentsOfFile: tokenFiles["ops"]!).trimmingCharacters(in: .whitespacesAndNewlines))
        defer { admin.close() }
        func workers() throws -> [Atelier_V1_WorkerStatus] {
            let response = try admin.call(.with { $0.body = .listWorkers(.init()) })
            if response.hasError { throw FarmTestError(response.error.message) }
            return response.listWorkers.workers
        }
        _ = try FarmProcessSupport.poll("the TLS coordinator to answer", timeout: 30, interval: 0.2) { () -> Bool? in
            guard coordinator.isRunning else { throw FarmTestError("the coordinator exited\n\(coordinator.tail())") }
            return (try? workers()) != nil ? true : nil
        }

        // The status page and the metrics sit behind the same tokens: submit and admin get in
        // (Bearer, or a browser's Basic login with the token as password); a work token does not.
        func secret(_ name: String) throws -> String {
            try String(contentsOfFile: tokenFiles[name]!).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let page = "http://127.0.0.1:\(httpPort)/"
        XCTAssertEqual(try HTTPFetch.get(page).status, 401)
        XCTAssertEqual(try HTTPFetch.get(page + "metrics", bearer: "not-a-token").status, 401)
        XCTAssertEqual(try HTTPFetch.get(page, bearer: try secret("render1")).status, 401, "a work token reads no status page")
        XCTAssertEqual(try HTTPFetch.get(page, bearer: try secret("alice")).status, 200)
        XCTAssertEqual(try HTTPFetch.get(page + "metrics",
                                         authorization: "Basic " + Data("ops:\(try secret("ops"))".utf8).base64EncodedString()).status, 200)

        // One worker with farm certificates and a work token; one with another CA's certificate.
        let worker = try cluster.spawn("worker", ["worker", "--coordinator", address, "--engine", "noop", "--name", "good",
                                                  "--token-file", tokenFiles["render1"]!, "--straggler-step-delay-ms", "100"]
                                       + files(farm, "worker"))
        let intruder = try cluster.spawn("intruder", ["worker", "--coordinator", address, "--engine", "noop", "--name", "intruder",
                                                      "--token-file", tokenFiles["render1"]!] + files(other, "worker"))
        let goodID = try FarmProcessSupport.poll("worker good to register", timeout: 30, interval: 0.2) { () -> String? in
            guard worker.isRunning else { throw FarmTestError("the worker exited\n\(worker.tail())") }
            return try workers().first { $0.name == "good" }?.workerID
        }

        // A worker whose token is not a work token stops at once with the reason, exit non-zero.
        let misconfigured = try cluster.run("worker-with-submit-token", [
            "worker", "--coordinator", address, "--engine", "noop", "--name", "confused", "--token-file", tokenFiles["alice"]!,
        ] + files(farm, "worker"), timeout: 30)
        XCTAssertNotEqual(misconfigured.status, 0)
        XCTAssertTrue(misconfigured.stderr.contains("Error: the coordinator refused this worker: token \"alice\" has role submit; "
                                                    + "register_worker needs a work or admin token"), misconfigured.stderr)

        // submit + wait over TLS with alice's token.
        let client = files(farm, "client") + ["--coordinator", address, "--token-file", tokenFiles["alice"]!]
        let submitted = try cluster.run("submit", ["submit", "--steps", "3", "--seed", "5", "a fox"] + client, timeout: 60)
        XCTAssertEqual(submitted.status, 0, submitted.stderr)
        let jobID = submitted.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let out = cluster.root.appendingPathComponent("out")
        let waited = try cluster.run("wait", ["wait", jobID, "--out", out.path, "--quiet"] + client, timeout: 60)
        XCTAssertEqual(waited.status, 0, waited.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("0.png").path))

        // Refusals are one line and a non-zero exit: no token; a submit token draining a worker.
        let anonymous = try cluster.run("status", ["status", jobID, "--coordinator", address] + files(farm, "client"), timeout: 30)
        XCTAssertNotEqual(anonymous.status, 0)
        XCTAssertTrue(anonymous.stderr.contains("needs a token"), anonymous.stderr)
        XCTAssertEqual(anonymous.stderr.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count, 1, anonymous.stderr)
        let notAdmin = try cluster.run("drain", ["drain", goodID] + client, timeout: 30)
        XCTAssertNotEqual(notAdmin.status, 0)
        XCTAssertTrue(notAdmin.stderr.contains("drain_worker needs an admin token"),
                      notAdmin.stderr)

        // Drain while the worker renders a 30-step task (3 s): it finishes the task, then exits 0.
        let slow = try cluster.run("submit", ["submit", "--steps", "30", "--seed", "6", "a slow fox"] + client, timeout: 60)
        XCTAssertEqual(slow.status, 0, slow.stderr)
        let slowID = slow.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        _ = try FarmProcessSupport.poll("the slow task to be leased", timeout: 30, interval: 0.1) { () -> Bool? in
            try workers().first { $0.workerID == goodID }?.currentTaskID.isEmpty == false ? true : nil
        }
        let drained = try cluster.run("drain", ["drain", goodID, "--coordinator", address, "--token-file", tokenFiles["ops"]!]
                                      + files(farm, "client"), timeout: 30)
        XCTAssertEqual(drained.status, 0, drained.stderr)
        XCTAssertEqual(try workers().first { $0.workerID == goodID }?.draining, true)
        guard let exit = worker.waitForExit(timeout: 30) else { return XCTFail("the drained worker did not exit\n\(worker.tail())") }
        XCTAssertEqual(exit, 0, worker.tail())
        let status = try admin.call(.with { $0.body = .jobStatus(.with { $0.jobID = slowID }) }).jobStatus.job
        XCTAssertEqual(status.state, .succeeded, "the drained worker finished its task first")
        XCTAssertEqual(status.owner, "alice")

        // The worker with another CA's certificate never got in.
        XCTAssertTrue(intruder.isRunning)
        XCTAssertNil(try workers().first { $0.name == "intruder" })
        keep = false
    }
}
