import AtelierFarm
import Foundation
import XCTest

/// `atelier workers` against a real coordinator: it pages through every worker and shows the
/// (model, weights, numerics) groups jobs are pinned to.
final class FarmWorkersListingTests: XCTestCase {
    private var cluster: FarmCluster?

    override func tearDown() {
        shutDown(&cluster)
        super.tearDown()
    }

    func testWorkersCommandPagesThroughAllWorkersAndShowsGroups() throws {
        let farm = try FarmCluster(testName: name)
        cluster = farm
        try farm.startCoordinator(leaseSeconds: 30)
        let client = try farm.client()
        let digests = [String(repeating: "a", count: 64), String(repeating: "b", count: 64)]
        let count = 620  // more than one page of the CLI (500)
        for i in 0..<count {
            var r = Atelier_V1_RegisterWorkerRequest()
            r.workerName = "listed-\(i)"
            r.capabilities.numerics = "fp32/openblas-haswell"
            r.capabilities.models = [.with { $0.name = "sd21"; $0.unetInChannels = 4; $0.weightsSha256 = digests[i % 7 == 0 ? 1 : 0] }]
            let response = try farm.call(client, .registerWorker(r))
            XCTAssertFalse(response.hasError, response.error.message)
        }
        let run = try farm.run("workers", ["workers", "--coordinator", farm.address], timeout: 30)
        XCTAssertEqual(run.status, 0, run.stderr)
        let lines = run.stdout.split(separator: "\n")
        XCTAssertEqual(lines.filter { $0.contains("  listed-") }.count, count, "every worker, across pages")
        let b = (0..<count).filter { $0 % 7 == 0 }.count
        XCTAssertTrue(lines.contains { $0.contains("sd21  sha256 aaaaaaaaaaaaaaaa  fp32/openblas-haswell  \(count - b) worker(s)") },
                      run.stdout.suffix(600).description)
        XCTAssertTrue(lines.contains { $0.contains("sd21  sha256 bbbbbbbbbbbbbbbb  fp32/openblas-haswell  \(b) worker(s)") })
    }
}
