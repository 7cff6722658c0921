import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One child process of a suite run (coordinator, worker, CLI), its output captured to files so
/// a failed run can be read afterwards. Signals are sent by pid: the suite kills, stops and
/// continues exactly the processes it started.
final class ChildProcess: @unchecked Sendable {
    let name: String
    let arguments: [String]
    private let process = Process()
    let stderrURL: URL

    init(name: String, executable: URL, arguments: [String], logs: URL, environment: [String: String] = [:]) throws {
        self.name = name
        self.arguments = arguments
        let out = logs.appendingPathComponent("\(name).out")
        let err = logs.appendingPathComponent("\(name).err")
        stderrURL = err
        for url in [out, err] where !FileManager.default.fileExists(atPath: url.path) {
            FileManager.default.createFile(atPath: url.path, contents: nil)
        }
        process.executableURL = executable
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process.environment = env
        process.standardInput = FileHandle.nullDevice
        let outHandle = try FileHandle(forWritingTo: out), errHandle = try FileHandle(forWritingTo: err)
        outHandle.seekToEndOfFile()
        errHandle.seekToEndOfFile()
        process.standardOutput = outHandle
        process.standardError = errHandle
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }
    var exitStatus: Int32? { process.isRunning ? nil : process.terminationStatus }

    func signal(_ sig: Int32) { if process.isRunning { kill(pid, sig) } }

    /// kill -9 and wait (bounded) until it is gone.
    func kill9() {
        signal(SIGKILL)
        _ = waitForExit(timeout: 10)
    }

    /// SIGTERM, then SIGKILL after `grace` seconds.
    func terminate(grace: TimeInterval = 10) {
        signal(SIGCONT)
        signal(SIGTERM)
        if waitForExit(timeout: grace) == nil { kill9() }
    }

    @discardableResult
    func waitForExit(timeout: TimeInterval) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning {
            if Date() >= deadline { return nil }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return process.terminationStatus
    }

    /// The last lines of its standard error.
    func tail(_ lines: Int = 15) -> String {
        let text = (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }

    /// Peak resident set size (VmHWM) in bytes, from /proc; nil when unavailable.
    var peakRSSBytes: Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let kb = line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap { Int($0) }
            return kb.map { $0 * 1024 }
        }
        return nil
    }
}

/// Errors of the suite itself (not findings): a process that did not start, a timeout.
struct SuiteError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Runs `executable ARGS` to completion within `timeout`; throws with its stderr on failure.
func runToCompletion(_ name: String, _ executable: URL, _ arguments: [String], logs: URL, timeout: TimeInterval) throws {
    let child = try ChildProcess(name: name, executable: executable, arguments: arguments, logs: logs)
    guard let status = child.waitForExit(timeout: timeout) else {
        child.kill9()
        throw SuiteError("`\(executable.lastPathComponent) \(arguments.joined(separator: " "))` did not finish within \(Int(timeout)) s")
    }
    guard status == 0 else {
        throw SuiteError("`\(executable.lastPathComponent) \(arguments.joined(separator: " "))` exited \(status): \(child.tail(5))")
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on right now.
func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw SuiteError("socket(): errno \(errno)") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
    }
    guard bound == 0 else { throw SuiteError("bind(): errno \(errno)") }
    let named = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    guard named == 0 else { throw SuiteError("getsockname(): errno \(errno)") }
    return Int(UInt16(bigEndian: address.sin_port))
}
