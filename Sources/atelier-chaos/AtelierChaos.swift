import ArgumentParser
import Foundation

/// `atelier-chaos`: the farm's fault and load suites, run against the real `atelier`
/// executable (coordinator and workers as separate processes on loopback). Heavy by design;
/// `scripts/chaos.sh` and `scripts/load.sh` run it, CI runs only `chaos --quick`.
@main
struct AtelierChaos: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "atelier-chaos",
        abstract: "Fault injection and load benchmark for the Atelier farm.",
        subcommands: [Chaos.self, Load.self, StoreRace.self])

    /// The `atelier` executable next to this one unless given.
    static func atelierExecutable(_ given: String?) throws -> URL {
        if let given { return URL(fileURLWithPath: given) }
        let me = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        let sibling = me.deletingLastPathComponent().appendingPathComponent("atelier")
        guard FileManager.default.isExecutableFile(atPath: sibling.path) else {
            throw ValidationError("no atelier executable at \(sibling.path); build it (swift build --product atelier) or pass --atelier PATH")
        }
        return sibling
    }

    /// The repository root (for the embedded tiny models): this source file's checkout, or the
    /// working directory.
    static var repoRoot: URL {
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let model = "Tests/Fixtures/pipelines/models/tiny-base"
        if FileManager.default.fileExists(atPath: source.appendingPathComponent(model).path) { return source }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    }

    struct Chaos: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Kill, stop, slow and starve a real farm; check every image arrives once and equals a local render.",
            discussion: "Prints a table of faults injected and images expected/received/lost/duplicated/mismatched/corrupt; exits 1 if any of the last four is non-zero.")

        @Flag(help: "The CI fast lane: a few faults, about a minute.")
        var quick = false

        @Option(help: "The atelier executable (default: the one next to atelier-chaos).")
        var atelier: String?

        func run() throws {
            let run = try ChaosRun(plan: quick ? .quick : .full, atelier: try AtelierChaos.atelierExecutable(atelier),
                                   repoRoot: AtelierChaos.repoRoot)
            let code = run.run()
            if code != 0 { throw ExitCode(code) }
        }
    }

    struct Load: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Drain queued tasks with no-op workers; report throughput, lease latency, coordinator RSS.")

        @Option(help: "Tasks queued before the workers start.")
        var tasks = 10_000
        @Option(help: "Jobs the tasks are split into.")
        var jobs = 10
        @Option(help: "Worker processes (atelier worker --engine noop).")
        var workers = 32
        @Option(help: "Protocol workers inside this process that time their lease requests.")
        var probes = 2
        @Option(help: "The atelier executable (default: the one next to atelier-chaos).")
        var atelier: String?

        func validate() throws {
            guard tasks > 0, jobs > 0, jobs <= tasks, workers > 0, probes > 0 else {
                throw ValidationError("--tasks, --jobs, --workers and --probes must be positive, with jobs ≤ tasks")
            }
            guard tasks / jobs <= 2000 else { throw ValidationError("at most 2000 tasks per job: raise --jobs") }
        }

        func run() throws {
            let run = try LoadRun(atelier: try AtelierChaos.atelierExecutable(atelier), tasks: tasks, jobs: jobs,
                                  workers: workers, probes: probes)
            let code = run.run()
            if code != 0 { throw ExitCode(code) }
        }
    }
}
