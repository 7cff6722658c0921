import AtelierDiffusion
import AtelierFarm
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// How many faults of each kind a chaos run injects.
struct ChaosPlan {
    var workers: Int
    var workerKills: Int
    var coordinatorKills: Int
    var sigstop: Bool
    var diskFull: Bool
    var workerKillInterval: TimeInterval
    var diskFullHold: TimeInterval
    /// How long the run may take, faults included, before unfinished images count as lost.
    var deadline: TimeInterval

    /// The acceptance run of issue 9: ≥ 50 worker kill -9, ≥ 5 coordinator kill -9, a worker
    /// stopped past its lease, a straggler, a full disk.
    static let full = ChaosPlan(workers: 3, workerKills: 50, coordinatorKills: 5, sigstop: true, diskFull: true,
                                workerKillInterval: 1.2, diskFullHold: 5, deadline: 900)
    /// CI's fast lane (about a minute; the deadline leaves room for a slow CI machine): a few of each fault that fits in that time. SIGSTOP past a
    /// lease needs the default 30 s TTL to pass, so it is left to the full run.
    static let quick = ChaosPlan(workers: 2, workerKills: 4, coordinatorKills: 1, sigstop: false, diskFull: true,
                                 workerKillInterval: 2, diskFullHold: 3, deadline: 300)
}

/// A batch the run submits, possibly many times; every copy must give the reference images.
struct ChaosJobSpec {
    var label: String
    var prompts: [String]
    var count: Int
    var seed: UInt64
    var steps: Int
    var scheduler: String?
    static let side = 64

    var images: Int { prompts.count * count }

    var batch: Atelier_V1_BatchJob {
        .with {
            $0.prompts = prompts
            $0.count = UInt32(count)
            $0.params.model = "base"
            $0.params.seed = seed
            $0.params.steps = UInt32(steps)
            $0.params.width = UInt32(Self.side)
            $0.params.height = UInt32(Self.side)
            if let scheduler { $0.params.scheduler = scheduler }
        }
    }
}

/// The chaos run: a real coordinator and real workers (the `atelier` executable, tiny embedded
/// models) on loopback, with the coordinator's default options, while the run kills, restarts,
/// stops and slows them and fills the coordinator's disk. Afterwards every image of every job
/// must have arrived exactly once and equal the fault-free `atelier render` of its seed, and the
/// database must pass `PRAGMA integrity_check`.
final class ChaosRun {
    let plan: ChaosPlan
    let atelier: URL
    let root: URL
    let logs: URL
    let port: Int
    var address: String { "tcp://127.0.0.1:\(port)" }
    let tinyBase: URL
    let specs: [ChaosJobSpec]

    private var counts = FaultCounts()
    private var references: [[RGBImage]] = []
    private var stragglerDelayMs = 0
    private var coordinator: ChildProcess?
    private var coordinatorStarts = 0
    private var workers: [String: ChildProcess] = [:]
    private var workerStarts: [String: Int] = [:]
    private var jobs: [(id: String, spec: Int)] = []
    private var data: TmpfsDataDirectory!
    private var notes: [String] = []

    struct FaultCounts {
        var workerKills = 0, midTaskKills = 0, coordinatorKills = 0, sigstops = 0, diskFulls = 0
        var sigstopDetail = "", stragglerDetail = "", diskDetail = ""
    }

    init(plan: ChaosPlan, atelier: URL, repoRoot: URL) throws {
        self.plan = plan
        self.atelier = atelier
        root = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("atelier-chaos-\(getpid())")
        logs = root.appendingPathComponent("logs")
        try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
        port = try freeLoopbackPort()
        tinyBase = repoRoot.appendingPathComponent("Tests/Fixtures/pipelines/models/tiny-base")
        specs = [
            ChaosJobSpec(label: "A", prompts: ["a lighthouse at dusk", "a red fox in fresh snow"], count: 3, seed: 4200,
                         steps: 6, scheduler: nil),
            ChaosJobSpec(label: "B", prompts: ["a castle on a hill"], count: 4, seed: 9_000_000_000, steps: 6,
                         scheduler: "euler-a"),
        ]
    }

    // MARK: Run

    /// Runs the whole thing and prints the table; the process exit code (0 = nothing lost,
    /// duplicated, mismatched or corrupt).
    func run() -> Int32 {
        let started = Date()
        var outcome: ChaosOutcome
        do {
            try renderReferences()
            data = TmpfsDataDirectory(url: root.appendingPathComponent("coordinator-data"), sizeMiB: 64)
            try startCoordinator()
            for i in 1...plan.workers { try startWorker("w\(i)") }
            try startWorker("straggler")
            try waitForWorkers(plan.workers + 1)
            progress("\(plan.workers) workers and a straggler registered; injecting faults")
            try injectFaults()
            progress("faults done; waiting for \(jobs.count) jobs to finish")
            outcome = try collect()      // stops every process, so the tmpfs is no longer busy
            data.unmount()
        } catch {
            // shutdownAll stops the processes first and then unmounts (a busy tmpfs will not go).
            print("chaos: the run itself failed: \(error)")
            shutdownAll()
            print("chaos: logs kept in \(root.path)")
            return 2
        }
        outcome.wall = Date().timeIntervalSince(started)
        print(table(outcome))
        let failed = outcome.lost + outcome.duplicated + outcome.mismatched + outcome.corrupt > 0
        if failed || ProcessInfo.processInfo.environment["ATELIER_CHAOS_KEEP"] != nil {
            print("chaos: logs and data kept in \(root.path)")
        } else {
            try? FileManager.default.removeItem(at: root)
        }
        return failed ? 1 : 0
    }

    // MARK: References

    /// Fault-free local renders of every spec (one `atelier render --count K` per prompt, image k
    /// of prompt p has seed S + p·K + k, as in the farm), and the straggler's delay from their timing.
    private func renderReferences() throws {
        let folder = root.appendingPathComponent("reference")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var perStep = [Double]()
        for spec in specs {
            var images = [RGBImage]()
            for (p, prompt) in spec.prompts.enumerated() {
                let output = folder.appendingPathComponent("\(spec.label)-p\(p).png")
                var args = ["render", "--model", tinyBase.path, "--prompt", prompt,
                            "--seed", "\(spec.seed &+ UInt64(p * spec.count))", "--count", "\(spec.count)",
                            "--steps", "\(spec.steps)", "--width", "\(ChaosJobSpec.side)", "--height", "\(ChaosJobSpec.side)",
                            "--quiet", "--output", output.path]
                if let s = spec.scheduler { args += ["--scheduler", s] }
                let t0 = Date()
                try runToCompletion("reference-\(spec.label)-p\(p)", atelier, args, logs: logs, timeout: 300)
                perStep.append(Date().timeIntervalSince(t0) / Double(spec.count * spec.steps))
                for k in 0..<spec.count {
                    let file = spec.count == 1 ? output : folder.appendingPathComponent("\(spec.label)-p\(p)-\(k).png")
                    images.append(try PNGCodec.read(contentsOf: file).rgb())
                }
            }
            references.append(images)
        }
        // The measured time per step includes process start and model loading, so it is an upper
        // bound of a step; 9 × that added per step makes the straggler at least 10× slower.
        let step = perStep.min() ?? 0.05
        stragglerDelayMs = max(100, Int(step * 9 * 1000))
        counts.stragglerDetail = String(format: "+%d ms per step (a step takes ≤ %.0f ms)", stragglerDelayMs, step * 1000)
    }

    // MARK: Processes

    private func startCoordinator() throws {
        coordinatorStarts += 1
        // Default options: only the address and the data folder are given.
        let child = try ChildProcess(name: "coordinator-\(coordinatorStarts)", executable: atelier,
                                     arguments: ["coordinator", "--listen", address, "--data", data.url.path], logs: logs)
        coordinator = child
        let probe = try FarmProbe(address: address)
        defer { probe.close() }
        let deadline = Date().addingTimeInterval(60)
        while true {
            guard child.isRunning else { throw SuiteError("the coordinator exited: \(child.tail())") }
            if let r = try? probe.call(.listJobs(.init()), patience: 0, timeout: .seconds(1)), !r.hasError { return }
            if Date() > deadline { throw SuiteError("the coordinator did not answer within 60 s: \(child.tail())") }
            Thread.sleep(forTimeInterval: 0.1)
        }
    }

    private func startWorker(_ slot: String) throws {
        let n = (workerStarts[slot] ?? 0) + 1
        workerStarts[slot] = n
        var args = ["worker", "--coordinator", address, "--name", "chaos-\(slot)", "--model", "base=\(tinyBase.path)"]
        if slot == "straggler" { args += ["--straggler-step-delay-ms", "\(stragglerDelayMs)"] }
        workers[slot] = try ChildProcess(name: "worker-\(slot)-\(n)", executable: atelier, arguments: args, logs: logs)
    }

    private func waitForWorkers(_ n: Int) throws {
        let probe = try FarmProbe(address: address)
        defer { probe.close() }
        let deadline = Date().addingTimeInterval(120)
        while Set(try probe.workers().filter(\.alive).map(\.name)).count < n {
            if Date() > deadline { throw SuiteError("fewer than \(n) workers registered within 120 s") }
            Thread.sleep(forTimeInterval: 0.2)
        }
    }

    /// slot → the task its *current* process holds. A worker's id is read from its own log
    /// ("registered as ID"), because list_workers also shows the rows of killed predecessors with
    /// the same name, alive until three heartbeat intervals pass.
    private func busySlots(_ probe: FarmProbe) throws -> [String: String] {
        let byID = Dictionary(try probe.workers().map { ($0.workerID, $0) }, uniquingKeysWith: { a, _ in a })
        var busy = [String: String]()
        for (slot, child) in workers where child.isRunning {
            let text = (try? String(contentsOf: child.stderrURL, encoding: .utf8)) ?? ""
            guard let r = text.range(of: "registered as ", options: .backwards) else { continue }
            let id = String(text[r.upperBound...].prefix { !$0.isWhitespace })
            if let task = byID[id]?.currentTaskID, !task.isEmpty { busy[slot] = task }
        }
        return busy
    }

    /// A progress line on stderr (the table goes to stdout at the end).
    private func progress(_ message: String) {
        FileHandle.standardError.write(Data("chaos: \(message)\n".utf8))
    }

    private func shutdownAll() {
        for (_, w) in workers { w.signal(SIGCONT); w.kill9() }
        coordinator?.terminate()
        data?.unmount()
    }

    // MARK: Faults

    /// Keeps work queued and injects the planned faults, one decision per tick.
    private func injectFaults() throws {
        let probe = try FarmProbe(address: address)
        defer { probe.close() }
        var nextKill = Date().addingTimeInterval(plan.workerKillInterval)
        var stopped: (slot: String, taskID: String, at: Date, attempts: UInt32)?
        var diskFilledAt: Date?
        var nextSpec = 0
        var ended = Set<String>()  // jobs seen in a terminal state (not polled again)
        func coordinatorKillsDue() -> Int {
            plan.coordinatorKills == 0 ? 0 : counts.workerKills * (plan.coordinatorKills + 1) / max(1, plan.workerKills)
        }
        var sigstopDone = !plan.sigstop
        var diskDone = !plan.diskFull
        if plan.diskFull, let reason = data.unavailableReason {
            counts.diskDetail = "skipped: \(reason)"
            diskDone = true
        }

        while counts.workerKills < plan.workerKills || counts.coordinatorKills < plan.coordinatorKills
                || !sigstopDone || !diskDone || stopped != nil || diskFilledAt != nil {
            // A coordinator that died without being killed is a finding; note it and carry on.
            if let c = coordinator, !c.isRunning {
                notes.append("the coordinator exited by itself (status \(c.exitStatus ?? -1)): \(c.tail(2))")
                try startCoordinator()
            }
            // Enough queued work that every worker is busy when it is hit.
            var unfinished = 0
            for job in jobs where !ended.contains(job.id) {
                let s = try probe.status(job.id)
                if FarmProbe.isTerminal(s.state) { ended.insert(job.id) } else { unfinished += Int(s.totalTasks - s.doneTasks) }
            }
            // Not while the disk is full: the coordinator refuses every write then (INTERNAL), and
            // this thread must stay free to give the space back on time.
            if unfinished < 3 * (plan.workers + 1), diskFilledAt == nil {
                let spec = nextSpec % specs.count
                nextSpec += 1
                jobs.append((try probe.submit(specs[spec].batch).jobID, spec))
            }

            // A worker kill -9, preferring one that holds a lease (mid-render), then a restart.
            if counts.workerKills < plan.workerKills, Date() >= nextKill {
                let busy = try busySlots(probe)
                let candidates = workers.keys.filter { $0 != "straggler" && $0 != stopped?.slot }.sorted()
                let preferred = candidates.filter { busy[$0] != nil }
                if let slot = (preferred.isEmpty ? candidates : preferred).randomElement() {
                    workers[slot]?.kill9()
                    counts.workerKills += 1
                    if busy[slot] != nil { counts.midTaskKills += 1 }
                    if counts.workerKills % 10 == 0 || counts.workerKills == plan.workerKills {
                        progress("\(counts.workerKills)/\(plan.workerKills) worker kills, \(counts.coordinatorKills) coordinator kills, \(jobs.count) jobs submitted")
                    }
                    try startWorker(slot)
                }
                nextKill = Date().addingTimeInterval(plan.workerKillInterval)
            }

            // Coordinator kill -9 and restart on the same data folder, spread over the worker kills
            // (never while the disk is full: a restart then is a different experiment).
            if counts.coordinatorKills < min(plan.coordinatorKills, coordinatorKillsDue()), diskFilledAt == nil {
                coordinator?.kill9()
                counts.coordinatorKills += 1
                Thread.sleep(forTimeInterval: 0.5)
                try startCoordinator()
            }

            // Disk full for a few seconds, half-way through.
            if !diskDone, diskFilledAt == nil, counts.workerKills >= plan.workerKills / 2 {
                let bytes = data.fill()
                diskFilledAt = Date()
                counts.diskDetail = "tmpfs \(data.sizeMiB) MiB filled (+\(bytes >> 20) MiB) for \(Int(plan.diskFullHold)) s"
            } else if let at = diskFilledAt, Date().timeIntervalSince(at) >= plan.diskFullHold {
                data.free()
                diskFilledAt = nil
                diskDone = true
                counts.diskFulls += 1
            }

            // SIGSTOP a busy worker until its task has been leased again elsewhere (past its lease),
            // then SIGCONT: its late heartbeat and completion must be refused as stale.
            if !sigstopDone, stopped == nil, counts.workerKills >= plan.workerKills / 3 {
                let busy = try busySlots(probe).filter { $0.key != "straggler" }
                if let (slot, taskID) = busy.randomElement(), let child = workers[slot],
                   let jobID = taskID.split(separator: "-").first {
                    let task = try probe.status(String(jobID), tasks: true).tasks.first { $0.taskID == taskID }
                    child.signal(SIGSTOP)
                    stopped = (slot, taskID, Date(), task?.attempts ?? 0)
                }
            } else if let s = stopped, let jobID = s.taskID.split(separator: "-").first {
                let task = try probe.status(String(jobID), tasks: true).tasks.first { $0.taskID == s.taskID }
                let releasedElsewhere = task.map { $0.attempts > s.attempts || $0.state == .done || $0.state == .queued } ?? true
                let waited = Date().timeIntervalSince(s.at)
                if releasedElsewhere || waited > 150 {
                    workers[s.slot]?.signal(SIGCONT)
                    counts.sigstops += 1
                    counts.sigstopDetail = releasedElsewhere
                        ? String(format: "stopped %.0f s; its task was requeued meanwhile", waited)
                        : String(format: "stopped %.0f s; its task was NOT requeued", waited)
                    stopped = nil
                    sigstopDone = true
                }
            }
            Thread.sleep(forTimeInterval: 0.2)
        }
    }

    // MARK: Results

    struct ChaosOutcome {
        var jobs = 0, succeeded = 0, failed = 0, expected = 0, received = 0
        var lost = 0, duplicated = 0, mismatched = 0, corrupt = 0
        var integrity = "not checked"
        var outcomes: [String: Int] = [:]
        var stragglerCompleted = 0
        var errors: [String] = []
        var wall: TimeInterval = 0
    }

    /// Waits for every job to end, fetches and compares every image, stops the coordinator and
    /// audits its database.
    private func collect() throws -> ChaosOutcome {
        let probe = try FarmProbe(address: address)
        defer { probe.close() }
        var result = ChaosOutcome()
        let deadline = Date().addingTimeInterval(plan.deadline)
        var final: [String: Atelier_V1_JobStatus] = [:]
        while final.count < jobs.count, Date() < deadline {
            for job in jobs where final[job.id] == nil {
                let s = try probe.status(job.id)
                if FarmProbe.isTerminal(s.state) { final[job.id] = s }
            }
            Thread.sleep(forTimeInterval: 0.5)
        }
        result.jobs = jobs.count
        var completionsReported = 0
        for worker in try probe.workers() {
            completionsReported += Int(worker.completed)
            if worker.name == "chaos-straggler" { result.stragglerCompleted += Int(worker.completed) }
        }
        for job in jobs {
            let spec = specs[job.spec]
            let status = final[job.id]
            switch status?.state {
            case .succeeded?: result.succeeded += 1
            case .failed?, .cancelled?: result.failed += 1
                result.errors += (status?.errors ?? []).suffix(2).map { "job \(job.id): \($0)" }
            default: result.errors.append("job \(job.id) did not finish within \(Int(plan.deadline)) s")
            }
            for index in 0..<spec.images {
                result.expected += 1
                guard let png = try probe.fetch(job.id, index) else { result.lost += 1; continue }
                result.received += 1
                guard let image = try? PNGCodec.decode([UInt8](png)).rgb() else { result.corrupt += 1; continue }
                let want = references[job.spec][index]
                if image.width != want.width || image.height != want.height || image.pixels != want.pixels {
                    result.mismatched += 1
                    if result.mismatched <= 3 { result.errors.append("job \(job.id) image \(index) differs from its reference") }
                }
            }
        }
        // Each worker row counts the completions the coordinator accepted from it.
        let excessCompletions = max(0, completionsReported - result.received)

        for (_, w) in workers { w.signal(SIGCONT); w.terminate(grace: 5) }
        coordinator?.terminate(grace: 20)
        let audit = try DatabaseAudit.read(databaseAt: data.url.appendingPathComponent("atelier.sqlite"))
        result.integrity = audit.integrity
        if audit.integrity != "ok" { result.corrupt += 1 }
        result.duplicated = max(audit.extraCompletions, excessCompletions)
        result.outcomes = audit.outcomes
        return result
    }

    private func table(_ o: ChaosOutcome) -> String {
        func row(_ a: String, _ b: String) -> String { a.padding(toLength: 38, withPad: " ", startingAt: 0) + b }
        var lines = ["", "chaos run (\(plan.workers) workers + 1 straggler, coordinator with default options) on \(address)",
                     String(repeating: "-", count: 72)]
        lines.append(row("fault", "injected"))
        lines.append(row("worker kill -9 (restarted)", "\(counts.workerKills)  (\(counts.midTaskKills) holding a lease)"))
        lines.append(row("coordinator kill -9 (restarted)", "\(counts.coordinatorKills)"))
        lines.append(row("worker SIGSTOP past lease, SIGCONT", plan.sigstop ? "\(counts.sigstops)  \(counts.sigstopDetail)"
                                                                             : "0  (not in --quick: needs the 30 s default TTL)"))
        lines.append(row("straggler worker (≥ 10× slower)", "1  \(counts.stragglerDetail); completed \(o.stragglerCompleted)"))
        lines.append(row("disk full (coordinator data)", "\(counts.diskFulls)  \(counts.diskDetail)"))
        lines.append(String(repeating: "-", count: 72))
        lines.append(row("jobs submitted/succeeded/failed", "\(o.jobs)/\(o.succeeded)/\(o.failed)"))
        lines.append(row("images expected", "\(o.expected)"))
        lines.append(row("images received", "\(o.received)"))
        lines.append(row("lost", "\(o.lost)"))
        lines.append(row("duplicated", "\(o.duplicated)"))
        lines.append(row("mismatched (vs atelier render)", "\(o.mismatched)"))
        lines.append(row("corrupt", "\(o.corrupt)"))
        lines.append(row("PRAGMA integrity_check", o.integrity))
        lines.append(row("lease outcomes", o.outcomes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")))
        lines.append(row("wall time", String(format: "%.1f s", o.wall)))
        lines.append(String(repeating: "-", count: 72))
        for e in (notes + o.errors).prefix(10) { lines.append("  \(e)") }
        let verdict = o.lost + o.duplicated + o.mismatched + o.corrupt == 0 ? "PASS" : "FAIL"
        lines.append("chaos: \(verdict) (lost \(o.lost), duplicated \(o.duplicated), mismatched \(o.mismatched), corrupt \(o.corrupt))")
        return lines.joined(separator: "\n")
    }
}
