import Foundation
import XCTest

/// A program from the system that a test drives as a real consumer (promtool, chromium). A
/// missing one fails the test with how to install it, unless its skip variable is set (CI
/// installs them with `scripts/setup.sh --test`), so a dev machine never passes by not checking.
struct ExternalTool {
    let path: String

    /// Finds `names` (the first found) on PATH; otherwise fails with `install`, or skips when
    /// `skipVariable` is set in the environment.
    static func require(_ names: [String], install: String, skipVariable: String) throws -> ExternalTool {
        let environment = ProcessInfo.processInfo.environment
        let folders = (environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map(String.init)
        for name in names {
            for folder in folders {
                let candidate = "\(folder)/\(name)"
                if FileManager.default.isExecutableFile(atPath: candidate) { return ExternalTool(path: candidate) }
            }
        }
        let hint = "\(names.joined(separator: " or ")) is not installed: \(install) (or `scripts/setup.sh --test`); "
            + "set \(skipVariable)=1 to skip this check"
        if environment[skipVariable] != nil { throw XCTSkip(hint) }
        throw FarmTestError(hint)
    }

    /// Runs it with `arguments` (and `input` on stdin), killing it after `timeout`.
    func run(_ arguments: [String], input: Data? = nil, timeout: TimeInterval = 60) throws -> (status: Int32, stdout: Data, stderr: String) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("atelier-tool-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let out = folder.appendingPathComponent("out"), err = folder.appendingPathComponent("err")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = try FileHandle(forWritingTo: err)
        if let input {
            let inputFile = folder.appendingPathComponent("in")
            try input.write(to: inputFile)
            process.standardInput = try FileHandle(forReadingFrom: inputFile)
        } else {
            process.standardInput = FileHandle.nullDevice
        }
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            throw FarmTestError("`\(path) \(arguments.joined(separator: " "))` did not finish within \(Int(timeout)) s")
        }
        return (process.terminationStatus, (try? Data(contentsOf: out)) ?? Data(),
                (try? String(contentsOf: err, encoding: .utf8)) ?? "")
    }
}
