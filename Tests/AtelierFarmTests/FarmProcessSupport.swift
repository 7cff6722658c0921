import AtelierDiffusion
import AtelierFarm
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Support for the end-to-end farm tests: real `atelier` processes (coordinator, workers, CLI
/// clients) talking over loopback TCP. Every process is started through a `FarmCluster`, which
/// captures its output to files, bounds every wait, and kills whatever is left in `shutdown()`.
enum FarmProcessSupport {
    /// The repository root (this file is Tests/AtelierFarmTests/FarmProcessSupport.swift).
    static let repoRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static let tinyBase = repoRoot.appendingPathComponent("Tests/Fixtures/pipelines/models/tiny-base")
    static let tinyX4 = repoRoot.appendingPathComponent("Tests/Fixtures/pipelines/models/tiny-x4")

    /// The `atelier` executable built next to the running test bundle (so `swift test
    /// --scratch-path X` tests X's binary), else `.build/debug/atelier`. `ATELIER_TEST_BINARY`
    /// overrides both.
    static func atelierBinary() throws -> URL {
        let fm = FileManager.default
        if let override = ProcessInfo.processInfo.environment["ATELIER_TEST_BINARY"], !override.isEmpty {
            return URL(fileURLWithPath: override)
        }
        var folders = [URL]()
        let argv0 = URL(fileURLWithPath: ProcessInfo.processInfo.arguments[0]).standardizedFileURL
        folders.append(argv0.deletingLastPathComponent())
        for bundle in [Bundle.main] + Bundle.allBundles where bundle.bundleURL.pathExtension == "xctest" {
            folders.append(bundle.bundleURL.deletingLastPathComponent())
        }
        folders.append(Bundle.main.bundleURL)
        // On macOS the bundle is a folder (X.xctest/Contents/MacOS/X): walk up to the one holding it.
        var walk = argv0
        while walk.path != "/" {
            if walk.pathExtension == "xctest" { folders.append(walk.deletingLastPathComponent()) }
            walk.deleteLastPathComponent()
        }
        folders.append(repoRoot.appendingPathComponent(".build/debug"))
        for folder in folders {
            let candidate = folder.appendingPathComponent("atelier")
            if fm.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        throw FarmTestError("no `atelier` executable next to the test bundle or in .build/debug "
                      + "(searched \(folders.map(\.path))); run `swift build --build-tests` first")
    }

    /// A TCP port on 127.0.0.1 that nothing listens on right now.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw FarmTestError("socket(): errno \(errno)") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0 else { throw FarmTestError("bind(): errno \(errno)") }
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { throw FarmTestError("getsockname(): errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Polls `condition` every `interval` until it returns a value or `timeout` passes.
    static func poll<T>(_ what: String, timeout: TimeInterval, interval: TimeInterval = 0.1,
                        _ condition: () throws -> T?) throws -> T {
        let deadline = Date().addingTimeInterval(timeout)
        var lastError: Error?
        while true {
            do {
                if let value = try condition() { return value }
            } catch {
                lastError = error
            }
            if Date() >= deadline {
                throw FarmTestError("timed out after \(timeout) s waiting for \(what)"
                                    + (lastError.map { " (last error: \($0))" } ?? ""))
            }
            Thread.sleep(forTimeInterval: interval)
        }
    }

    /// The RGB pixels of a PNG file or buffer.
    static func pixels(ofFile url: URL) throws -> RGBImage {
        try PNGCodec.read(contentsOf: url).rgb()
    }

    static func pixels(of png: Data) throws -> RGBImage {
        try PNGCodec.decode([UInt8](png)).rgb()
    }

    /// A deterministic, detailed RGB test image (so a misplaced or mis-seeded tile would show).
    static func patternImage(width: Int, height: Int) throws -> RGBImage {
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                let i = (y * width + x) * 3
                pixels[i] = UInt8(truncatingIfNeeded: x * 255 / max(width - 1, 1))
                pixels[i + 1] = UInt8(truncatingIfNeeded: y * 255 / max(height - 1, 1))
                pixels[i + 2] = UInt8(truncatingIfNeeded: ((x / 8 + y / 8) % 2) * 160 + (x * y) % 64)
            }
        }
        return try RGBImage(width: width, height: height, pixels: pixels)
    }

    static func seconds(since start: Date) -> String {
        String(format: "%.1f s", Date().timeIntervalSince(start))
    }
}

struct FarmTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// One child process with its output captured to files.
final class FarmProcess: @unchecked Sendable {
    let name: String
    let process: Process
    let stdoutURL: URL
    let stderrURL: URL

    init(name: String, process: Process, stdoutURL: URL, stderrURL: URL) {
        self.name = name
        self.process = process
        self.stdoutURL = stdoutURL
        self.stderrURL = stderrURL
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }

    var stdout: String { (try? String(contentsOf: stdoutURL, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? "" }

    /// Waits at most `timeout` for the process to exit; its exit status, or nil if it is still running.
    @discardableResult
    func waitForExit(timeout: TimeInterval) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning {
            if Date() >= deadline { return nil }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return process.terminationStatus
    }

    /// SIGKILL, then waits (bounded) until the process is gone.
    func kill9() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        waitForExit(timeout: 10)
    }

    /// SIGTERM (graceful shutdown), falling back to SIGKILL after `grace`.
    func terminate(grace: TimeInterval = 10) {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        if waitForExit(timeout: grace) == nil { kill9() }
    }

    /// The last lines of its output, for failure messages.
    func tail(_ lines: Int = 30) -> String {
        func last(_ text: String) -> String {
            text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
        }
        return "---- \(name) (pid \(pid)) stdout ----\n\(last(stdout))\n---- \(name) stderr ----\n\(last(stderr))"
    }
}

/// A coordinator, its workers and CLI runs on one free loopback port and a temporary folder.
final class FarmCluster: @unchecked Sendable {
    let binary: URL
    let port: Int
    let root: URL
    let dataDir: URL
    var address: String { "tcp://127.0.0.1:\(port)" }
    /// What workers and protocol clients dial, when not just `address` (a list of coordinators).
    var dialAddress: String?

    private(set) var coordinator: FarmProcess?
    private(set) var processes: [FarmProcess] = []
    private var clients: [FarmClient] = []
    private var counter = 0
    private let lock = NSLock()

    init(testName: String) throws {
        binary = try FarmProcessSupport.atelierBinary()
        port = try FarmProcessSupport.freePort()
        let safe = testName.filter { $0.isLetter || $0.isNumber }
        root = FileManager.default.temporaryDirectory
            .appendingPathComponent("atelier-e2e-\(safe)-\(getpid())-\(UUID().uuidString.prefix(8))")
        dataDir = root.appendingPathComponent("coordinator-data")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("logs"), withIntermediateDirectories: true)
    }

    /// Starts `atelier ARGS` in the background, output to ROOT/logs/NAME-N.{out,err}.
    func spawn(_ name: String, _ arguments: [String], environment extra: [String: String] = [:]) throws -> FarmProcess {
        lock.lock()
        counter += 1
        let n = counter
        lock.unlock()
        let logs = root.appendingPathComponent("logs")
        let out = logs.appendingPathComponent("\(name)-\(n).out")
        let err = logs.appendingPathComponent("\(name)-\(n).err")
        guard FileManager.default.createFile(atPath: out.path, contents: nil),
              FileManager.default.createFile(atPath: err.path, contents: nil) else {
            throw FarmTestError("cannot create the log files in \(logs.path)")
        }
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        process.currentDirectoryURL = root
        var environment = ProcessInfo.processInfo.environment
        environment["ATELIER_COORDINATOR"] = address  // in case a command is run without --coordinator
        for (key, value) in extra { environment[key] = value }
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = try FileHandle(forWritingTo: err)
        try process.run()
        let child = FarmProcess(name: name, process: process, stdoutURL: out, stderrURL: err)
        lock.lock()
        processes.append(child)
        lock.unlock()
        return child
    }

    /// Runs `atelier ARGS` to completion (at most `timeout`); fails the test with its output if it
    /// hangs. Returns the process (exit status, stdout, stderr).
    @discardableResult
    func run(_ name: String, _ arguments: [String], timeout: TimeInterval) throws -> (status: Int32, stdout: String, stderr: String) {
        let child = try spawn(name, arguments)
        guard let status = child.waitForExit(timeout: timeout) else {
            child.kill9()
            throw FarmTestError("`atelier \(arguments.joined(separator: " "))` did not finish within \(timeout) s\n\(child.tail())")
        }
        return (status, child.stdout, child.stderr)
    }

    /// Starts the coordinator on this cluster's port and data folder and waits until it answers.
    @discardableResult
    func startCoordinator(leaseSeconds: Double, extra: [String] = []) throws -> FarmProcess {
        let child = try spawn("coordinator", ["coordinator", "--listen", address, "--data", dataDir.path,
                                              "--lease-seconds", String(leaseSeconds)] + extra)
        coordinator = child
        let probe = try client()
        do {
            _ = try FarmProcessSupport.poll("the coordinator on \(address) to answer", timeout: 30, interval: 0.2) { () -> Bool? in
                guard child.isRunning else { throw FarmTestError("the coordinator exited\n\(child.tail())") }
                guard case .listWorkers? = try? call(probe, .listWorkers(.init()), timeout: .seconds(1)).body else { return nil }
                return true
            }
        } catch {
            throw FarmTestError("\(error)\n\(child.tail())")
        }
        return child
    }

    /// Starts a worker serving the tiny models. It keeps OpenBLAS's default thread count, like the
    /// local reference renders: results depend (by a unit in the last place, now and then) on it.
    @discardableResult
    func startWorker(name: String, models: [(String, URL)] = [("base", FarmProcessSupport.tinyBase),
                                                              ("x4", FarmProcessSupport.tinyX4)],
                     extra: [String] = []) throws -> FarmProcess {
        var arguments = ["worker", "--coordinator", dialAddress ?? address, "--name", name] + extra
        for (model, path) in models { arguments += ["--model", "\(model)=\(path.path)"] }
        return try spawn("worker-\(name)", arguments)
    }

    /// Waits until `names` are all registered and alive; returns name → worker id.
    @discardableResult
    func waitForWorkers(_ names: [String], timeout: TimeInterval = 60) throws -> [String: String] {
        let probe = try client()
        do {
            return try FarmProcessSupport.poll("workers \(names) to register", timeout: timeout, interval: 0.2) { () -> [String: String]? in
                let workers = try call(probe, .listWorkers(.init())).listWorkers.workers
                var ids = [String: String]()
                for w in workers where w.alive && names.contains(w.name) { ids[w.name] = w.workerID }
                return ids.count == names.count ? ids : nil
            }
        } catch {
            throw FarmTestError("\(error)\n\(diagnostics())")
        }
    }

    /// A protocol client dialing this cluster's coordinator, closed in `shutdown()`.
    func client() throws -> FarmClient {
        let client = try FarmClient(address: dialAddress ?? address, defaultTimeout: .seconds(10))
        lock.lock()
        clients.append(client)
        lock.unlock()
        return client
    }

    /// One request (fresh request id), answered or thrown.
    func call(_ client: FarmClient, _ body: Atelier_V1_Request.OneOf_Body, requestID: String = UUID().uuidString,
              timeout: Duration = .seconds(10)) throws -> Atelier_V1_Response {
        var request = Atelier_V1_Request()
        request.protocolVersion = FarmClient.protocolVersion
        request.requestID = requestID
        request.body = body
        return try client.call(request, timeout: timeout)
    }

    func jobStatus(_ client: FarmClient, _ jobID: String) throws -> Atelier_V1_JobStatus {
        let response = try call(client, .jobStatus(.with { $0.jobID = jobID; $0.includeTasks = true }))
        if response.hasError { throw FarmTestError("job_status \(jobID): \(response.error.code) \(response.error.message)") }
        return response.jobStatus.job
    }

    /// Everything captured so far, for failure messages.
    func diagnostics(lines: Int = 25) -> String {
        lock.lock()
        let all = processes
        lock.unlock()
        return all.map { $0.tail(lines) }.joined(separator: "\n")
    }

    /// Kills every process still running, closes the clients, and removes the folder unless
    /// `keep` or `ATELIER_KEEP_FARM_TEST_FILES` is set (then its path is printed so the logs can be read).
    func shutdown(keep: Bool) {
        let keep = keep || ProcessInfo.processInfo.environment["ATELIER_KEEP_FARM_TEST_FILES"] != nil
        lock.lock()
        let all = processes
        let open = clients
        clients = []
        lock.unlock()
        for child in all { child.kill9() }
        for client in open { client.close() }
        if keep {
            print("farm test files kept in \(root.path)")
        } else {
            try? FileManager.default.removeItem(at: root)
        }
    }
}

extension XCTestCase {
    /// Ends a test's cluster: prints its logs and keeps its folder when the test failed, so a
    /// failure can be read afterwards. Returns whether the test failed.
    @discardableResult
    func shutDown(_ cluster: inout FarmCluster?) -> Bool {
        let failed = (testRun?.totalFailureCount ?? 0) > 0
        if let running = cluster {
            if failed { print(running.diagnostics()) }
            running.shutdown(keep: failed)
        }
        cluster = nil
        return failed
    }
}
