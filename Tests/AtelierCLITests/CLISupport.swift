import Foundation
import XCTest

/// Runs the `atelier` executable built next to this test bundle.
enum CLI {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let models = repo.appendingPathComponent("Tests/Fixtures/pipelines/models")
    static let inputs = repo.appendingPathComponent("Tests/Fixtures/pipelines/inputs")

    static var executable: URL {
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent("atelier")
        if FileManager.default.isExecutableFile(atPath: beside.path) { return beside }
        return repo.appendingPathComponent(".build/debug/atelier")
    }

    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    /// Runs `atelier args…` to completion (bounded by `timeout` seconds).
    static func run(_ args: [String], in dir: URL? = nil, environment extra: [String: String] = [:], timeout: TimeInterval = 120) throws -> Result {
        let p = Process()
        p.executableURL = executable
        p.arguments = args
        if let dir { p.currentDirectoryURL = dir }
        var env = ProcessInfo.processInfo.environment
        env["ATELIER_MODEL"] = nil
        env.merge(extra) { _, new in new }
        p.environment = env
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        if p.isRunning { p.terminate(); XCTFail("atelier \(args.joined(separator: " ")) did not finish in \(timeout) s") }
        p.waitUntilExit()
        let o = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let e = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return Result(status: p.terminationStatus, stdout: o, stderr: e)
    }

    static func scratch() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("atelier-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }
}
