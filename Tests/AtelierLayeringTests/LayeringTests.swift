import Foundation
import XCTest

/// The layers of Package.swift's comment, checked: the farm links no engine, images need no
/// engine, and no target imports a module of this package it does not declare. Read from the
/// manifest and the sources, so adding `"AtelierDiffusion"` to a farm target's dependencies, or
/// `import AtelierKernels` to one of its files, fails here.
final class LayeringTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    /// The engine: what a coordinator or a worker loop must never link.
    static let engine: Set<String> = ["AtelierDiffusion", "AtelierModels", "AtelierKernels", "AtelierKernelsC", "CBLAS",
                                      "AtelierRenderEngine"]
    static let farm = ["AtelierFarmProtocol", "AtelierFarmTransport", "AtelierFarmCoordinator", "AtelierFarmWorker", "AtelierFarm",
                       "AtelierFarmObservability"]

    private func graph() throws -> PackageGraph {
        try PackageGraph(manifest: String(contentsOf: Self.root.appendingPathComponent("Package.swift"), encoding: .utf8))
    }

    /// Why a graph breaks the layering rules, one line per breach (empty when it keeps them).
    static func breaches(of graph: PackageGraph) -> [String] {
        var found = [String]()
        for target in farm + ["AtelierImaging", "AtelierRequests"] {
            guard graph.targets[target] != nil else { found.append("\(target) is missing from Package.swift"); continue }
            let engine = graph.closure(of: target).intersection(Self.engine)
            if !engine.isEmpty { found.append("\(target) depends on \(engine.sorted().joined(separator: ", "))") }
        }
        // Only the transport sees sockets (so TLS changes only it).
        for target in farm where target != "AtelierFarmTransport" && target != "AtelierFarm" {
            if graph.targets[target]?.targets.contains("CNNG") == true { found.append("\(target) links nng directly") }
        }
        return found
    }

    func testFarmAndImagingTargetsDependOnNoEngineTarget() throws {
        XCTAssertEqual(Self.breaches(of: try graph()), [])
    }

    /// The check itself can fail: the same rules on a manifest where the coordinator reaches the
    /// engine through the imaging library.
    func testTheCheckCatchesAnEngineDependencyReachedIndirectly() throws {
        var manifest = try String(contentsOf: Self.root.appendingPathComponent("Package.swift"), encoding: .utf8)
        let imaging = #".target(name: "AtelierImaging", dependencies: ["#
        XCTAssertTrue(manifest.contains(imaging))
        manifest = manifest.replacingOccurrences(of: imaging, with: imaging + #""AtelierKernels", "#)
        let breaches = Self.breaches(of: try PackageGraph(manifest: manifest))
        XCTAssertTrue(breaches.contains("AtelierFarmCoordinator depends on AtelierKernels, AtelierKernelsC, CBLAS"), "\(breaches)")
        XCTAssertTrue(breaches.contains("AtelierImaging depends on AtelierKernels, AtelierKernelsC, CBLAS"), "\(breaches)")
    }

    /// A conditional dependency (`.target(name: "X", condition: .when(traits: …))`, as the CLI's
    /// on the status page) is a dependency of the target that lists it, not a second declaration
    /// of X that would wipe X's own dependencies from the graph.
    func testAConditionalTargetDependencyIsNotReadAsADeclaration() throws {
        let graph = try PackageGraph(manifest: """
            .target(name: "Page", dependencies: ["Store", .product(name: "HTTP", package: "http")]),
            .executableTarget(name: "cli", dependencies: [.target(name: "Page", condition: .when(traits: ["StatusPage"]))]),
            """)
        XCTAssertEqual(graph.targets["Page"]?.targets, ["Store"])
        XCTAssertEqual(graph.targets["Page"]?.products, ["HTTP"])
        XCTAssertEqual(graph.targets["cli"]?.targets, ["Page"])
        XCTAssertEqual(graph.closure(of: "cli"), ["Page", "Store"])
    }

    /// Every `import` of one of this package's modules in a library or executable names a target
    /// the importing target depends on directly (SwiftPM would let a transitive one through, and
    /// with it a layer violation the manifest does not show); the farm's sources import no engine
    /// module. (Test targets may import what their dependencies bring along.)
    func testEveryTargetImportsOnlyItsDeclaredDependencies() throws {
        let (problems, scanned) = try Self.importProblems(of: try graph(), sources: Self.root.appendingPathComponent("Sources"))
        XCTAssertEqual(problems, [])
        XCTAssertGreaterThan(scanned, 100, "the sources were found and read")
    }

    /// The import check itself can fail: a worker file importing the engine, in a copy of the
    /// worker target's folder.
    func testTheCheckCatchesAFarmFileImportingTheEngine() throws {
        let sources = FileManager.default.temporaryDirectory.appendingPathComponent("atelier-layering-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: sources) }
        let worker = sources.appendingPathComponent("AtelierFarmWorker")
        try FileManager.default.createDirectory(at: worker, withIntermediateDirectories: true)
        try "import AtelierFarmProtocol\n@testable import AtelierDiffusion\nimport Foundation\n"
            .write(to: worker.appendingPathComponent("Sneaky.swift"), atomically: true, encoding: .utf8)
        var graph = try graph()
        graph.targets = graph.targets.filter { $0.key == "AtelierFarmWorker" || $0.value.kind == "systemLibrary" }
        let (problems, _) = try Self.importProblems(of: graph, sources: sources)
        XCTAssertEqual(problems, ["AtelierFarmWorker/Sneaky.swift imports the engine module AtelierDiffusion"])
    }

    /// Imports of this package's modules (named in the full manifest) that a target does not
    /// declare, and engine imports in farm targets; and how many imports were read.
    static func importProblems(of graph: PackageGraph, sources: URL) throws -> (problems: [String], scanned: Int) {
        let ours = Set(try PackageGraph(manifest: String(contentsOf: root.appendingPathComponent("Package.swift"),
                                                         encoding: .utf8)).targets.keys)
        var problems = [String]()
        var scanned = 0
        for (name, target) in graph.targets where target.kind == "target" || target.kind == "executableTarget" {
            let folder = sources.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: folder.path) else {
                problems.append("\(name): no folder \(folder.path)")
                continue
            }
            let imports = try PackageGraph.imports(under: folder)
            scanned += imports.count
            let allowed = Set(target.targets)
            for (module, file) in imports where Self.farm.contains(name) && Self.engine.contains(module) {
                problems.append("\(name)/\(file) imports the engine module \(module)")
            }
            for (module, file) in imports where ours.contains(module) && module != name && !allowed.contains(module)
                && !(Self.farm.contains(name) && Self.engine.contains(module)) {
                problems.append("\(name)/\(file) imports \(module), which \(name) does not declare")
            }
        }
        return (problems.sorted(), scanned)
    }

    func testTheManifestIsReadCompletely() throws {
        let graph = try graph()
        XCTAssertEqual(graph.targets["AtelierFarmCoordinator"]?.products.sorted(), ["Crypto", "GRDB", "Logging", "PostgresNIO", "SwiftProtobuf"])
        XCTAssertEqual(graph.targets["AtelierFarm"]?.targets.sorted(),
                       ["AtelierFarmCoordinator", "AtelierFarmProtocol", "AtelierFarmTransport", "AtelierFarmWorker"])
        XCTAssertTrue(graph.closure(of: "atelier").isSuperset(of: ["AtelierFarm", "AtelierRenderEngine", "AtelierDiffusion", "CBLAS"]))
        XCTAssertEqual(graph.targets["CNNG"]?.kind, "systemLibrary")
    }
}
