import AtelierDiffusion
import AtelierFarm
import Foundation
import GRDB
#if canImport(Glibc)
import Glibc
#endif

/// The load benchmark: one coordinator (default options) with `tasks` queued image tasks in
/// several jobs, drained by `workers` real `atelier worker --engine noop` processes over loopback
/// TCP. The no-op engine answers at once, so what is measured is the farm's own machinery:
/// leasing, heartbeats, result storage, the database.
///
/// Lease latency is measured two ways: by `probes` protocol workers inside this process, which
/// lease and complete like the others and time every `lease_task` round trip; and, for the 32
/// worker processes, from the coordinator's database as the gap between a worker's completion
/// being recorded and its next lease being granted (one lease round trip plus the worker's own
/// turnaround).
final class LoadRun {
    let atelier: URL
    let tasks: Int, jobCount: Int, workerCount: Int, probes: Int
    let root: URL, logs: URL
    let port: Int
    var address: String { "tcp://127.0.0.1:\(port)" }
    static let side = 64

    init(atelier: URL, tasks: Int, jobs: Int, workers: Int, probes: Int) throws {
        self.atelier = atelier
        self.tasks = tasks; self.jobCount = jobs; self.workerCount = workers; self.probes = probes
        root = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("atelier-load-\(getpid())")
        logs = root.appendingPathComponent("logs")
        try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
        port = try freeLoopbackPort()
    }

    /// The no-op engine's colour for `seed` (the same splitmix64 as `NoOpRenderEngine.colour`,
    /// which lives in the CLI target; the probes must produce the same images).
    static func colour(seed: UInt64) -> (UInt8, UInt8, UInt8) {
        var z = seed &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return (UInt8(truncatingIfNeeded: z), UInt8(truncatingIfNeeded: z >> 8), UInt8(truncatingIfNeeded: z >> 16))
    }

    func run() -> Int32 {
        var coordinator: ChildProcess?
        var workers = [ChildProcess]()
        defer {
            for w in workers { w.kill9() }
            coordinator?.kill9()
        }
        do {
            let dataDir = root.appendingPathComponent("coordinator-data")
            let c = try ChildProcess(name: "coordinator", executable: atelier,
                                     arguments: ["coordinator", "--listen", address, "--data", dataDir.path], logs: logs)
            coordinator = c
            let probe = try FarmProbe(address: address)
            defer { probe.close() }
            // A model must be registered before a job can ask for it: the first probe worker registers.
            let registrar = try ProbeWorker(address: address, name: "load-probe-0")

            // Queue everything first.
            let perJob = tasks / jobCount
            var jobs = [(id: String, seed: UInt64, count: Int)]()
            for j in 0..<jobCount {
                let count = j == jobCount - 1 ? tasks - perJob * (jobCount - 1) : perJob
                let seed = UInt64(j) * 1_000_000
                // A job holds at most 1000 images per prompt.
                let prompts = count > 1000 ? ["load test \(j) a", "load test \(j) b"] : ["load test \(j)"]
                guard count % prompts.count == 0 else { throw SuiteError("\(count) tasks do not split into \(prompts.count) prompts") }
                let submitted = try probe.submit(.with {
                    $0.prompts = prompts
                    $0.count = UInt32(count / prompts.count)
                    $0.params.model = "default"
                    $0.params.seed = seed
                    $0.params.steps = 1
                    $0.params.width = UInt32(Self.side)
                    $0.params.height = UInt32(Self.side)
                })
                jobs.append((submitted.jobID, seed, submitted.tasks))
            }
            let queued = jobs.reduce(0) { $0 + $1.count }
            print("load: \(queued) tasks queued in \(jobs.count) jobs; starting \(workerCount) no-op workers and \(probes) probes")

            let started = Date()
            for i in 1...workerCount {
                workers.append(try ChildProcess(name: "worker-\(i)", executable: atelier,
                                                arguments: ["worker", "--engine", "noop", "--coordinator", address,
                                                            "--name", "load-w\(i)"], logs: logs))
            }
            let latencies = LatencyLog()
            let stop = LockedFlag()
            var threads = [Thread]()
            for i in 0..<probes {
                let worker = i == 0 ? registrar : try ProbeWorker(address: address, name: "load-probe-\(i)")
                let t = Thread { worker.loop(until: stop, log: latencies) }
                t.start()
                threads.append(t)
            }

            // Drain, sampling progress for the steady-state rate.
            var samples = [(Date, Int)]()
            var done = 0
            let deadline = Date().addingTimeInterval(1800)
            while done < queued {
                guard c.isRunning else { throw SuiteError("the coordinator died: \(c.tail())") }
                if Date() > deadline { throw SuiteError("not drained within 30 min (\(done)/\(queued) done)") }
                Thread.sleep(forTimeInterval: 0.5)
                done = try jobs.reduce(0) { $0 + Int(try probe.status($1.id).doneTasks) }
                samples.append((Date(), done))
            }
            let wall = Date().timeIntervalSince(started)
            stop.set()
            let peakRSS = c.peakRSSBytes ?? 0
            let alive = try probe.workers().filter { $0.alive && $0.name.hasPrefix("load-w") }.count
            let engines = Set(try probe.workers().filter { $0.name.hasPrefix("load-w") }.map(\.capabilities.version))

            // Every task exactly once, every result fetchable and the image its seed gives.
            var lost = 0, wrong = 0, states = [String: Int]()
            for job in jobs {
                let s = try probe.status(job.id)
                states["\(s.state)", default: 0] += 1
                for index in 0..<job.count {
                    guard let png = try probe.fetch(job.id, index) else { lost += 1; continue }
                    let (r, g, b) = Self.colour(seed: job.seed &+ UInt64(index))
                    guard let image = try? PNGCodec.decode([UInt8](png)).rgb(), image.width == Self.side,
                          image.height == Self.side, image.pixels.prefix(3).elementsEqual([r, g, b]) else { wrong += 1; continue }
                }
            }
            for w in workers { w.terminate(grace: 5) }
            c.terminate(grace: 20)
            let audit = try DatabaseAudit.read(databaseAt: dataDir.appendingPathComponent("atelier.sqlite"))
            let gaps = try Self.dispatchGaps(databaseAt: dataDir.appendingPathComponent("atelier.sqlite"))

            let steady = Self.steadyRate(samples, total: queued)
            func row(_ a: String, _ b: String) -> String { a.padding(toLength: 36, withPad: " ", startingAt: 0) + b }
            let p = latencies.percentiles()
            let lines = [
                "", "load benchmark: \(queued) tasks, \(workerCount) no-op worker processes (\(alive) alive at the end) + \(probes) probes, one coordinator (default options)",
                String(repeating: "-", count: 80),
                row("worker versions", engines.sorted().joined(separator: " | ")),
                row("wall time (workers start → drained)", String(format: "%.1f s", wall)),
                row("dispatch throughput", String(format: "%.0f tasks/s overall, %.0f tasks/s steady (10%%→90%%)",
                                                   Double(queued) / wall, steady)),
                row("lease latency, probes (leased)", String(format: "p50 %.1f ms, p99 %.1f ms, max %.1f ms (n = %d)",
                                                             p.p50, p.p99, p.max, p.n)),
                row("dispatch gap, workers (from DB)", String(format: "p50 %.0f ms, p99 %.0f ms (n = %d)", gaps.p50, gaps.p99, gaps.n)),
                row("coordinator peak RSS (VmHWM)", String(format: "%.1f MiB", Double(peakRSS) / 1_048_576)),
                row("jobs by final state", states.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")),
                row("tasks lost (no result)", "\(lost)"),
                row("tasks duplicated (accepted twice)", "\(audit.extraCompletions)"),
                row("results wrong (size/colour)", "\(wrong)"),
                row("lease outcomes", audit.outcomes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")),
                row("PRAGMA integrity_check", audit.integrity),
                String(repeating: "-", count: 80),
            ]
            print(lines.joined(separator: "\n"))
            let ok = lost == 0 && wrong == 0 && audit.extraCompletions == 0 && audit.integrity == "ok"
            print("load: \(ok ? "PASS" : "FAIL")")
            if ok { try? FileManager.default.removeItem(at: root) } else { print("load: logs kept in \(root.path)") }
            return ok ? 0 : 1
        } catch {
            print("load: the run itself failed: \(error)\nload: logs kept in \(root.path)")
            return 2
        }
    }

    /// Tasks per second between 10 % and 90 % done (start-up and the tail left out).
    static func steadyRate(_ samples: [(Date, Int)], total: Int) -> Double {
        guard let a = samples.first(where: { $0.1 >= total / 10 }), let b = samples.first(where: { $0.1 >= total * 9 / 10 }),
              b.0 > a.0 else { return 0 }
        return Double(b.1 - a.1) / b.0.timeIntervalSince(a.0)
    }

    /// Per worker, the time from one attempt's end (completion recorded) to its next lease.
    static func dispatchGaps(databaseAt url: URL) throws -> (p50: Double, p99: Double, n: Int) {
        var configuration = Configuration()
        configuration.readonly = true
        let queue = try DatabaseQueue(path: url.path, configuration: configuration)
        defer { try? queue.close() }
        let gaps = try queue.read { db in
            try Double.fetchAll(db, sql: """
                SELECT gap FROM (SELECT started - LAG(ended) OVER (PARTITION BY worker_id ORDER BY started) AS gap
                FROM attempts) WHERE gap IS NOT NULL AND gap >= 0
                """)
        }.sorted()
        guard !gaps.isEmpty else { return (0, 0, 0) }
        return (gaps[gaps.count / 2], gaps[min(gaps.count - 1, gaps.count * 99 / 100)], gaps.count)
    }
}

/// A worker inside the harness that speaks the protocol itself, so it can time its own
/// `lease_task` round trips; it completes with the no-op engine's image.
final class ProbeWorker: @unchecked Sendable {
    let probe: FarmProbe
    let workerID: String

    init(address: String, name: String) throws {
        probe = try FarmProbe(address: address)
        let r = try probe.ok(.registerWorker(.with {
            $0.workerName = name
            $0.capabilities.version = "load-probe engine=noop"
            // The no-op workers' pinning group: no weights digest, numerics "noop".
            $0.capabilities.numerics = "noop"
            $0.capabilities.models = [.with { $0.name = "default"; $0.contentHash = "noop" }]
        }))
        workerID = r.registerWorker.workerID
    }

    func loop(until stop: LockedFlag, log: LatencyLog) {
        defer { probe.close() }
        while !stop.isSet {
            let t0 = DispatchTime.now().uptimeNanoseconds
            guard let r = try? probe.call(.leaseTask(.with { $0.workerID = workerID }), patience: 30) else { continue }
            let ms = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6
            guard !r.hasError, r.leaseTask.hasLease, case .image(let task)? = r.leaseTask.lease.task.kind else {
                Thread.sleep(forTimeInterval: 0.05)
                continue
            }
            log.add(ms)
            let lease = r.leaseTask.lease
            let (red, green, blue) = LoadRun.colour(seed: task.params.seed)
            guard let image = try? RGBImage(width: LoadRun.side, height: LoadRun.side, red: red, green: green, blue: blue),
                  let png = try? PNGCodec.encode(image) else { continue }
            _ = try? probe.call(.completeTask(.with {
                $0.workerID = workerID
                $0.taskID = lease.taskID
                $0.fencingToken = lease.fencingToken
                $0.resultPng = Data(png)
            }), patience: 30)
        }
    }
}

final class LatencyLog: @unchecked Sendable {
    private let lock = NSLock()
    private var values = [Double]()
    func add(_ v: Double) { lock.lock(); values.append(v); lock.unlock() }
    func percentiles() -> (p50: Double, p99: Double, max: Double, n: Int) {
        lock.lock(); let v = values.sorted(); lock.unlock()
        guard !v.isEmpty else { return (0, 0, 0, 0) }
        return (v[v.count / 2], v[min(v.count - 1, v.count * 99 / 100)], v.last!, v.count)
    }
}

final class LockedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
    func set() { lock.lock(); value = true; lock.unlock() }
}
