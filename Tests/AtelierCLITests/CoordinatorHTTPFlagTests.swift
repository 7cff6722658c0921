import Foundation
import XCTest

/// `atelier coordinator --http`: a malformed address is refused in one line before anything is
/// opened or served.
final class CoordinatorHTTPFlagTests: XCTestCase {
    func testMalformedHTTPAddressIsRefusedInOneLine() throws {
        let dir = try CLI.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        for (bad, needle) in [("9733", "HOST:PORT"), ("127.0.0.1:99999", "0...65535")] {
            let r = try CLI.run(["coordinator", "--data", dir.appendingPathComponent("farm").path,
                                 "--listen", "tcp://127.0.0.1:9", "--http", bad], in: dir, timeout: 60)
            XCTAssertEqual(r.status, 1, r.stderr)
            let lines = r.stderr.split(separator: "\n", omittingEmptySubsequences: true)
            XCTAssertEqual(lines.count, 1, r.stderr)
            XCTAssertTrue(r.stderr.contains("--http") && r.stderr.contains(needle), r.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("farm").path),
                           "nothing was created before the refusal")
        }
    }
}
