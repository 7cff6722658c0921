import Foundation
import XCTest

/// CI's fast lane of the chaos suite: runs `atelier-chaos chaos --quick` (a real coordinator with
/// default options and real workers on loopback; worker and coordinator kill -9, a straggler and,
/// as root, a full tmpfs under the coordinator) as a process and requires its verdict: no image
/// lost, duplicated, different from `atelier render`, or corrupt. The full run is
/// `scripts/chaos.sh`.
final class QuickChaosTests: XCTestCase {
    /// A sibling of the test bundle (the build folder), else `.build/debug`.
    private func executable(_ name: String) throws -> URL {
        var folders = [URL]()
        for bundle in Bundle.allBundles where bundle.bundleURL.pathExtension == "xctest" {
            folders.append(bundle.bundleURL.deletingLastPathComponent())
        }
        folders.append(URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent())
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        folders.append(root.appendingPathComponent(".build/debug"))
        for folder in folders where FileManager.default.isExecutableFile(atPath: folder.appendingPathComponent(name).path) {
            return folder.appendingPathComponent(name)
        }
        throw XCTSkip("no \(name) executable in \(folders.map(\.path)); run `swift build --build-tests` first")
    }

    func testFarmUnderQuickChaosDeliversEveryImageExactlyOnceAndIdentical() throws {
        let chaos = try executable("atelier-chaos"), atelier = try executable("atelier")
        let process = Process()
        process.executableURL = chaos
        process.arguments = ["chaos", "--quick", "--atelier", atelier.path]
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("atelier-quick-chaos-\(getpid()).log")
        FileManager.default.createFile(atPath: output.path, contents: nil)
        let handle = try FileHandle(forWritingTo: output)
        defer { try? handle.close(); try? FileManager.default.removeItem(at: output) }
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        let deadline = Date().addingTimeInterval(420)  // only reached on failure: the run takes about a minute
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.2) }
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
            XCTFail("atelier-chaos chaos --quick did not finish within 240 s")
        }
        let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        print(text)
        XCTAssertEqual(process.terminationStatus, 0, "the quick chaos run lost, duplicated, mismatched or corrupted images:\n\(text)")
        XCTAssertTrue(text.contains("chaos: PASS"), text)
    }
}
