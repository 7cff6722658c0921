import Foundation
import XCTest

/// Deploy/ checked by the tools that will read it: every Kubernetes manifest parses as YAML
/// (PyYAML, `python3-yaml` from `scripts/setup.sh --test`), the autoscaler is wired to the metric
/// the coordinator exports and to the worker Deployment, workers get the time they need to hand
/// their lease back, and the systemd units pass `systemd-analyze verify` (where systemd is
/// installed; skipped with the reason otherwise).
final class DeployManifestTests: XCTestCase {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    static let deploy = repo.appendingPathComponent("Deploy")

    func testEveryKubernetesManifestParsesAsYAMLWithAKindAndAName() throws {
        let files = try Self.files(under: "kubernetes", ending: ".yaml")
        XCTAssertGreaterThanOrEqual(files.count, 3, "coordinator, workers and the KEDA ScaledObject")
        for file in files {
            let documents = try Self.yamlDocuments(file)
            XCTAssertFalse(documents.isEmpty, "\(file.lastPathComponent) holds no document")
            for document in documents {
                XCTAssertNotNil(document["apiVersion"] as? String, "\(file.lastPathComponent): a document without apiVersion")
                XCTAssertNotNil(document["kind"] as? String, "\(file.lastPathComponent): a document without kind")
                XCTAssertNotNil((document["metadata"] as? [String: Any])?["name"] as? String,
                                "\(file.lastPathComponent): a document without metadata.name")
            }
        }
    }

    /// The ScaledObject scales the worker Deployment from zero on the coordinator's
    /// `atelier_queue_depth{model,state}` gauge, through Prometheus.
    func testKEDAScalesTheWorkerDeploymentFromZeroOnTheQueueDepthMetric() throws {
        let scaled = try Self.document(kind: "ScaledObject")
        let workers = try Self.document(kind: "Deployment")
        let spec = try XCTUnwrap(scaled["spec"] as? [String: Any])
        let target = try XCTUnwrap((spec["scaleTargetRef"] as? [String: Any])?["name"] as? String)
        XCTAssertEqual(target, (workers["metadata"] as? [String: Any])?["name"] as? String)
        XCTAssertEqual(spec["minReplicaCount"] as? Int, 0, "scale to zero when idle")
        let triggers = try XCTUnwrap(spec["triggers"] as? [[String: Any]])
        let prometheus = try XCTUnwrap(triggers.first { $0["type"] as? String == "prometheus" })
        let metadata = try XCTUnwrap(prometheus["metadata"] as? [String: String])
        let query = try XCTUnwrap(metadata["query"])
        XCTAssertTrue(query.contains("atelier_queue_depth{"), query)
        XCTAssertTrue(query.contains("model=\""), "one ScaledObject per model: \(query)")
        XCTAssertTrue(query.contains("queued"), "the queued tasks drive it: \(query)")
        XCTAssertNotNil(metadata["serverAddress"])
        XCTAssertNotNil(Double(metadata["threshold"] ?? ""), "threshold must be a number in a string")
        // KEDA owns the replica count; a fixed one in the Deployment would fight it.
        XCTAssertNil((workers["spec"] as? [String: Any])?["replicas"])
    }

    /// SIGTERM makes a worker release its lease and exit within 20 s; Kubernetes must wait longer
    /// than that before its SIGKILL.
    func testWorkerPodsGetLongerThanTheWorkersOwnStopDeadlineToDrain() throws {
        let workers = try Self.document(kind: "Deployment")
        let pod = try XCTUnwrap(((workers["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any])
        let grace = try XCTUnwrap(pod["terminationGracePeriodSeconds"] as? Int)
        XCTAssertGreaterThan(grace, 20)
    }

    func testTheCoordinatorHasOneReplicaAPersistentVolumeAndProbes() throws {
        let coordinator = try Self.document(kind: "StatefulSet")
        let spec = try XCTUnwrap(coordinator["spec"] as? [String: Any])
        XCTAssertEqual(spec["replicas"] as? Int, 1)
        XCTAssertEqual((spec["volumeClaimTemplates"] as? [Any])?.count, 1)
        let pod = try XCTUnwrap((spec["template"] as? [String: Any])?["spec"] as? [String: Any])
        let container = try XCTUnwrap((pod["containers"] as? [[String: Any]])?.first)
        XCTAssertNotNil(container["readinessProbe"])
        XCTAssertNotNil(container["livenessProbe"])
        let args = try XCTUnwrap(container["args"] as? [String])
        XCTAssertTrue(args.contains("/var/lib/atelier"))
        let mounts = try XCTUnwrap(container["volumeMounts"] as? [[String: Any]])
        XCTAssertTrue(mounts.contains { $0["mountPath"] as? String == "/var/lib/atelier" })
    }

    /// `systemd-analyze verify` on copies of the units whose ExecStart names an executable that
    /// exists here (the real path, /usr/local/bin/atelier, is where an operator installs it):
    /// unknown keys, bad values and bad sections make it print, and any output fails the test.
    func testSystemdUnitsPassSystemdAnalyzeVerify() throws {
        guard let analyze = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
            .first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw XCTSkip("systemd-analyze is not installed (Debian package `systemd`); the units were not verified")
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("atelier-units-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var names: [String] = []
        for unit in try Self.files(under: "systemd", ending: ".service") {
            let text = try String(contentsOf: unit, encoding: .utf8)
                .replacingOccurrences(of: "/usr/local/bin/atelier", with: "/bin/sh")
            // A template is verified as one of its instances.
            let name = unit.lastPathComponent.replacingOccurrences(of: "@.service", with: "@1.service")
            try text.write(to: dir.appendingPathComponent(name), atomically: true, encoding: .utf8)
            names.append(dir.appendingPathComponent(name).path)
        }
        XCTAssertEqual(names.count, 2)
        let result = try Self.run(analyze, ["verify"] + names)
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertEqual(result.output.trimmingCharacters(in: .whitespacesAndNewlines), "", "systemd-analyze complained")
    }

    /// The coordinator derives its connection cap from the descriptor limit (the limit minus a
    /// reserve of 256): the unit's limit must leave thousands of connections, and both units run
    /// as a dedicated user in a read-only system with no way to gain privileges.
    func testSystemdUnitsRaiseTheDescriptorLimitAndAreHardened() throws {
        for unit in try Self.files(under: "systemd", ending: ".service") {
            let keys = try Self.unitKeys(unit)
            let name = unit.lastPathComponent
            let limit = try XCTUnwrap(keys["LimitNOFILE"].flatMap { Int($0) }, "\(name): LimitNOFILE")
            XCTAssertGreaterThanOrEqual(limit - 256, 8192, "\(name): room for thousands of connections")
            XCTAssertEqual(keys["User"], "atelier", name)
            XCTAssertEqual(keys["ProtectSystem"], "strict", name)
            XCTAssertEqual(keys["NoNewPrivileges"], "true", name)
            XCTAssertEqual(keys["ProtectHome"], "true", name)
            XCTAssertEqual(keys["KillSignal"], "SIGTERM", name)
            XCTAssertGreaterThan(Int(keys["TimeoutStopSec"] ?? "") ?? 0, name.hasPrefix("atelier-worker") ? 20 : 0, name)
            XCTAssertNotNil(keys["ReadWritePaths"], "\(name): ProtectSystem=strict needs its writable folder named")
        }
    }

    // MARK: Helpers

    static func files(under folder: String, ending suffix: String) throws -> [URL] {
        let dir = deploy.appendingPathComponent(folder)
        return try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(suffix) }.sorted()
            .map { dir.appendingPathComponent($0) }
    }

    /// The documents of a YAML file, as PyYAML's safe loader reads them (converted through JSON).
    static func yamlDocuments(_ file: URL) throws -> [[String: Any]] {
        let script = "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))"
        let result = try run("/usr/bin/env", ["python3", "-c", script, file.path])
        guard result.status == 0 else {
            if result.output.contains("No module named 'yaml'") {
                XCTFail("PyYAML is missing: install python3-yaml (scripts/setup.sh --test)")
            }
            throw NSError(domain: "yaml", code: Int(result.status),
                          userInfo: [NSLocalizedDescriptionKey: "\(file.lastPathComponent) does not parse: \(result.output)"])
        }
        let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8))
        return (json as? [Any] ?? []).compactMap { $0 as? [String: Any] }
    }

    /// The one document of `kind` among the Kubernetes manifests.
    static func document(kind: String) throws -> [String: Any] {
        let all = try files(under: "kubernetes", ending: ".yaml").flatMap { try yamlDocuments($0) }
        let matching = all.filter { $0["kind"] as? String == kind }
        XCTAssertEqual(matching.count, 1, "one \(kind)")
        return try XCTUnwrap(matching.first)
    }

    /// KEY=VALUE lines of a unit (the last one wins, as for systemd's single-valued settings).
    static func unitKeys(_ unit: URL) throws -> [String: String] {
        var keys: [String: String] = [:]
        for line in try String(contentsOf: unit, encoding: .utf8).split(separator: "\n") {
            guard !line.hasPrefix("#"), let eq = line.firstIndex(of: "=") else { continue }
            keys[String(line[..<eq]).trimmingCharacters(in: .whitespaces)] =
                String(line[line.index(after: eq)...]).trimmingCharacters(in: .whitespaces)
        }
        return keys
    }

    struct Output { let status: Int32; let stdout: String; let output: String }

    static func run(_ executable: String, _ arguments: [String]) throws -> Output {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: stdout, as: UTF8.self)
        return Output(status: process.terminationStatus, stdout: text, output: text + String(decoding: stderr, as: UTF8.self))
    }
}
