import ArgumentParser
import Foundation
import AtelierDiffusion
import AtelierFarm
import AtelierRequests

/// Options every client command shares.
struct CoordinatorOption: ParsableArguments {
    @Option(help: "Coordinator address (default: $ATELIER_COORDINATOR, else tcp://127.0.0.1:7733).")
    var coordinator: String?
    @OptionGroup var tls: TLSOptions
    @OptionGroup var token: TokenOptions

    var address: String { FarmAddress.resolve(flag: coordinator) }

    func client() throws -> FarmClient {
        try FarmClient(address: address, defaultTimeout: .seconds(10),
                       options: RequestClientOptions(tls: try tls.configuration()), authToken: try token.resolve())
    }
}

/// One request/response with the coordinator; protocol errors become a one-line CLI error.
func farmCall(_ client: FarmClient, _ body: Atelier_V1_Request.OneOf_Body, timeout: Duration = .seconds(10)) throws -> Atelier_V1_Response {
    var req = Atelier_V1_Request()
    req.requestID = UUID().uuidString
    req.body = body
    let response: Atelier_V1_Response
    do { response = try client.call(req, timeout: timeout) } catch {
        throw FarmCLIError("\(error)", unreachable: true)
    }
    if response.hasError { throw FarmCLIError("coordinator: \(response.error.message) [\(response.error.code)]") }
    return response
}

struct FarmCLIError: Error, CustomStringConvertible {
    let description: String
    /// The coordinator did not answer (transport error), as opposed to answering with an error.
    var unreachable = false
    init(_ d: String, unreachable: Bool = false) { description = d; self.unreachable = unreachable }
}

/// `atelier submit`: a batch of prompts × count, one task per image.
struct SubmitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submit",
        abstract: "Submit a batch of images to the farm; prints the job id.",
        discussion: """
            Prompts come as arguments or from --prompts-file (one per line). With P prompts and \
            --count K the job has P·K images; image index = p·K + k renders with seed = --seed + index, \
            exactly like `atelier render --seed <seed+index>`.

            Examples:
              atelier submit --model sd21 "a red fox" "a blue heron" --count 4 --seed 100
              atelier submit --model sd21 --prompts-file prompts.txt --steps 30 --wait --out results/
            """)

    @OptionGroup var farm: CoordinatorOption
    @Argument(help: "Prompts.") var prompts: [String] = []
    @Option(name: .customLong("prompt"), help: "A prompt (repeatable), as `render --prompt`; adds to the arguments.")
    var promptOptions: [String] = []
    @Option(help: "File with one prompt per line.") var promptsFile: String?
    @Option(help: "Model NAME as workers serve it.") var model: String = "default"
    @Option(parsing: .unconditional, help: "Images per prompt (1…1000).") var count: Int = 1
    @Option(parsing: .unconditional, help: "Higher runs first.") var priority: Int = 0
    @Option(help: "Negative prompt.") var negativePrompt: String = ""
    @Option(parsing: .unconditional, help: "Seed of image 0 (0…2⁶⁴−1; default: random).") var seed: UInt64?
    @Option(parsing: .unconditional, help: "Denoising steps (1…1000).") var steps: Int?
    @Option(parsing: .unconditional, help: "Guidance scale (0…100).") var guidance: Double?
    @Option(help: "ddim | pndm | euler | euler-a | dpm++2m | dpm++2m-karras") var scheduler: String?
    @Option(parsing: .unconditional, help: "Width (multiple of 8, 64…4096).") var width: Int?
    @Option(parsing: .unconditional, help: "Height (multiple of 8, 64…4096).") var height: Int?
    @Option(help: "Init image PNG (img2img / inpaint / depth).") var initImage: String?
    @Option(parsing: .unconditional, help: "Strength in (0, 1].") var strength: Double?
    @Option(help: "Inpainting mask PNG.") var mask: String?
    @Option(help: "Depth map PNG.") var depthMap: String?
    @Option(parsing: .unconditional, help: "Guidance rescale in [0, 1].") var guidanceRescale: Double = 0
    @Flag(help: "Refuse the job (UNKNOWN_MODEL) when no worker serves --model, instead of queueing it until one starts.")
    var requireWorker = false
    @Flag(help: "Wait for the job and write its images to --out.") var wait = false
    @Option(help: "Folder for the results (with --wait).") var out: String?

    func run() throws {
        var all = promptOptions + prompts
        if let promptsFile {
            let text = try BoundedFile.text(promptsFile, maxBytes: RequestLimits.totalPromptBytes, option: "--prompts-file")
            all += text.split(whereSeparator: \.isNewline).map(String.init).filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        }
        guard !all.isEmpty else { throw CLIError("give at least one prompt (arguments, --prompt or --prompts-file)") }
        if wait && out == nil { throw CLIError("--wait needs --out DIR") }
        let priority = Int32(try OptionRange.check(priority, in: Int(Int32.min)...Int(Int32.max), "--priority"))
        var check = GenerationRequest(prompt: all[0])
        check.negativePrompt = negativePrompt
        check.steps = steps; check.width = width; check.height = height; check.scheduler = scheduler
        check.guidance = guidance; check.strength = strength; check.guidanceRescale = guidanceRescale
        // The coordinator runs the same validation; refusing here saves uploading the images.
        try GenerationValidation.validate(RequestChecks.describe(
            check, prompts: all, count: count, model: model, initImage: initImage, mask: mask, depthMap: depthMap))

        // Every value below passed its range check, so the conversions cannot trap.
        var params = Atelier_V1_GenerationParams()
        params.model = model
        params.negativePrompt = negativePrompt
        params.seed = seed ?? UInt64(UInt32.random(in: 0...UInt32.max))
        if let steps { params.steps = UInt32(clamping: steps) }
        if let guidance { params.guidance = guidance }
        if let scheduler { params.scheduler = scheduler }
        if let width { params.width = UInt32(clamping: width) }
        if let height { params.height = UInt32(clamping: height) }
        if let strength { params.strength = strength }
        params.guidanceRescale = guidanceRescale
        if let initImage { params.initImagePng = try readPNGBytes(initImage) }
        if let mask { params.maskPng = try readPNGBytes(mask) }
        if let depthMap { params.depthMapPng = try readPNGBytes(depthMap) }
        var submit = Atelier_V1_SubmitJobRequest()
        submit.batch.prompts = all
        submit.batch.count = UInt32(clamping: count)
        submit.batch.params = params
        submit.priority = priority
        submit.requireWorker = requireWorker
        let client = try farm.client()
        defer { client.close() }
        let job = try farmCall(client, .submitJob(submit), timeout: .seconds(60)).submitJob
        printWarnings(job)
        print(job.jobID)
        if wait, let out { try JobWaiter(client: client, jobID: job.jobID, out: out, quiet: false).run() }
    }
}

/// `atelier submit-upscale`: an x4 upscale split into overlapping tiles.
struct SubmitUpscaleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submit-upscale",
        abstract: "Submit a tiled x4 upscale to the farm; prints the job id.",
        discussion: """
            The image is cut into overlapping tiles (in low-res pixels) rendered by any workers and \
            stitched with feathered seams; the result equals `atelier upscale --tile T --overlap O` \
            with the same seed.

            Example:
              atelier submit-upscale --model x4 --image photo-512.png --prompt "a harbour" --seed 3 --wait --out up/
            """)

    @OptionGroup var farm: CoordinatorOption
    @Option(help: "Low-res PNG (at most 1024 px a side).") var image: String
    @Option(help: "What the image shows.") var prompt: String
    @Option(help: "Model NAME (an x4 upscaler).") var model: String = "x4"
    @Option(help: "Negative prompt.") var negativePrompt: String = ""
    @Option(parsing: .unconditional, help: "Seed (0…2⁶⁴−1; default: random).") var seed: UInt64?
    @Option(parsing: .unconditional, help: "Steps (1…1000, default 75).") var steps: Int?
    @Option(parsing: .unconditional, help: "Guidance (0…100, default 9).") var guidance: Double?
    @Option(parsing: .unconditional, help: "Noise level 0…350 (default 20).") var noiseLevel: Int?
    @Option(help: "Scheduler.") var scheduler: String?
    @Option(parsing: .unconditional, help: "Tile side in low-res pixels (multiple of 8, 32…256).") var tile: Int = 128
    @Option(parsing: .unconditional, help: "Overlap in low-res pixels (multiple of 4, < tile/2).") var overlap: Int = 32
    @Option(parsing: .unconditional, help: "Higher runs first.") var priority: Int = 0
    @Flag(help: "Refuse the job (UNKNOWN_MODEL) when no worker serves --model, instead of queueing it until one starts.")
    var requireWorker = false
    @Flag(help: "Wait and write DIR/upscaled.png.") var wait = false
    @Option(help: "Folder for the result (with --wait).") var out: String?

    func run() throws {
        if wait && out == nil { throw CLIError("--wait needs --out DIR") }
        let priority = Int32(try OptionRange.check(priority, in: Int(Int32.min)...Int(Int32.max), "--priority"))
        var r = GenerationRequest(prompt: prompt)
        r.negativePrompt = negativePrompt
        r.steps = steps; r.guidance = guidance; r.noiseLevel = noiseLevel; r.scheduler = scheduler
        try GenerationValidation.validate(RequestChecks.describeUpscale(r, model: model, image: image, tile: tile, overlap: overlap))

        // Every value below passed its range check, so the conversions cannot trap.
        var p = Atelier_V1_UpscaleParams()
        p.model = model
        p.prompt = prompt
        p.negativePrompt = negativePrompt
        p.seed = seed ?? UInt64(UInt32.random(in: 0...UInt32.max))
        if let steps { p.steps = UInt32(clamping: steps) }
        if let guidance { p.guidance = guidance }
        if let noiseLevel { p.noiseLevel = UInt32(clamping: noiseLevel) }
        if let scheduler { p.scheduler = scheduler }
        var submit = Atelier_V1_SubmitJobRequest()
        submit.upscale.imagePng = try readPNGBytes(image, limits: PNGReadLimits(maxSide: RequestLimits.upscaleTiledSide))
        submit.upscale.params = p
        submit.upscale.tile = UInt32(clamping: tile)
        submit.upscale.overlap = UInt32(clamping: overlap)
        submit.priority = priority
        submit.requireWorker = requireWorker
        let client = try farm.client()
        defer { client.close() }
        let job = try farmCall(client, .submitJob(submit), timeout: .seconds(60)).submitJob
        printWarnings(job)
        print(job.jobID)
        if wait, let out { try JobWaiter(client: client, jobID: job.jobID, out: out, quiet: false).run() }
    }
}

/// The coordinator's one-line warnings about an accepted job (e.g. no worker serves its model
/// yet), on stderr so stdout stays the job id alone.
func printWarnings(_ job: Atelier_V1_SubmitJobResponse) {
    for warning in job.warnings {
        FileHandle.standardError.write(Data("warning: \(warning)\n".utf8))
    }
}

/// The bytes of a PNG to send, decoded once locally first (within `limits`, after the declared
/// size was validated): a clear local error beats a remote one.
func readPNGBytes(_ path: String, limits: PNGReadLimits = .inputImage) throws -> Data {
    _ = try PNGCodec.read(path: path, limits: limits)
    guard let data = FileManager.default.contents(atPath: path) else { throw FarmCLIError("cannot read \(CLIError.echo(path))") }
    return data
}

/// `atelier status [JOB]`.
struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Show one job (with its tasks) or the recent jobs.")
    @OptionGroup var farm: CoordinatorOption
    @Argument(help: "Job id (omit to list recent jobs).") var job: String?
    @Flag(help: "With a job id: follow it (watch_job), printing its progress whenever it changes, until it ends.")
    var watch = false

    func run() throws {
        let client = try farm.client()
        defer { client.close() }
        if let job, watch {
            var watcher = JobWatch(client: client, jobID: job)
            var last = ""
            while true {
                let s = try watcher.next()
                let line = "\(s.jobID)  \(JobText.state(s.state))  \(JobProgressText.summary(s))"
                if line != last { print(line); fflush(stdout); last = line }
                if s.state == .succeeded || s.state == .failed || s.state == .cancelled {
                    for e in s.errors { print("  error: \(e)") }
                    return
                }
            }
        }
        if let job {
            let s = try farmCall(client, .jobStatus(.with { $0.jobID = job; $0.includeTasks = true })).jobStatus.job
            print("\(s.jobID)  \(s.kind)  \(JobText.state(s.state))  \(s.doneTasks)/\(s.totalTasks) tasks  priority \(s.priority)")
            print("progress: \(JobProgressText.summary(s))")
            if s.kind == "upscale" && s.seamRatio > 0 { print(String(format: "seam ratio %.3f", s.seamRatio)) }
            for t in s.tasks {
                let progress = t.totalSteps > 0 ? " step \(t.step)/\(t.totalSteps)" : ""
                print("  #\(t.index)  \(JobText.task(t.state))  attempts \(t.attempts)\(t.workerID.isEmpty ? "" : "  worker \(t.workerID)")\(progress)\(t.lastError.isEmpty ? "" : "  error: \(t.lastError)")")
            }
            for e in s.errors { print("  error: \(e)") }
        } else {
            let jobs = try farmCall(client, .listJobs(.with { $0.limit = 50 })).listJobs.jobs
            if jobs.isEmpty { print("no jobs") }
            for s in jobs {
                print("\(s.jobID)  \(s.kind)  \(JobText.state(s.state))  \(s.doneTasks)/\(s.totalTasks)  priority \(s.priority)")
                // Running jobs: the step of each image being rendered.
                if s.state == .running, let full = try? farmCall(client, .jobStatus(.with { $0.jobID = s.jobID; $0.includeTasks = true })).jobStatus.job {
                    for (_, text) in JobProgressText.running(full) { print("    \(text)") }
                }
            }
        }
    }
}

/// `atelier cancel JOB`.
struct CancelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cancel", abstract: "Cancel a job: queued tasks are dropped, running ones stopped.")
    @OptionGroup var farm: CoordinatorOption
    @Argument(help: "Job id.") var job: String

    func run() throws {
        let client = try farm.client()
        defer { client.close() }
        let s = try farmCall(client, .cancelJob(.with { $0.jobID = job })).cancelJob.job
        print("\(s.jobID) \(JobText.state(s.state))")
    }
}

/// `atelier workers`.
struct WorkersCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "workers", abstract: "List the workers the coordinator knows.")
    @OptionGroup var farm: CoordinatorOption

    func run() throws {
        let client = try farm.client()
        defer { client.close() }
        // Page through all of them (the coordinator answers at most 1000 per request).
        var workers = [Atelier_V1_WorkerStatus]()
        var after = ""
        repeat {
            let page = try farmCall(client, .listWorkers(.with { $0.limit = 500; $0.afterWorkerID = after })).listWorkers
            workers += page.workers
            after = page.nextAfterWorkerID
        } while !after.isEmpty
        if workers.isEmpty { print("no workers registered") }
        for w in workers {
            let models = w.capabilities.models.map { "\($0.name)#\($0.contentHash)" }.joined(separator: ",")
            let slots = max(w.capabilities.slots, 1)
            let quarantine = w.quarantinedUntilUnixMs > 0
                ? "  quarantined until \(ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(w.quarantinedUntilUnixMs) / 1000)))"
                : ""
            print("\(w.workerID)  \(w.name)  \(w.alive ? "alive" : "lost")\(w.draining ? "  draining" : "")  models \(models)  done \(w.completed)  failed \(w.failed)  expired \(w.leaseExpiries)  leases \(w.leases)/\(slots)  \(String(format: "%.2f", w.stepsPerSecond)) steps/s  atelier \(w.capabilities.version)\(w.currentTaskID.isEmpty ? "" : "  on \(w.currentTaskID)")\(quarantine)")
        }
        for line in WorkersCommand.groups(workers) { print(line) }
    }

    /// One line per (model, weights digest, numerics) group: a job is pinned to one group at
    /// submit, so workers in different groups never render parts of the same job.
    static func groups(_ workers: [Atelier_V1_WorkerStatus]) -> [String] {
        struct Key: Hashable, Comparable {
            var model: String, digest: String, numerics: String
            static func < (a: Key, b: Key) -> Bool { (a.model, a.digest, a.numerics) < (b.model, b.digest, b.numerics) }
        }
        var counts = [Key: (all: Int, alive: Int)]()
        for w in workers {
            for m in w.capabilities.models {
                let key = Key(model: m.name, digest: m.weightsSha256, numerics: w.capabilities.numerics)
                var c = counts[key] ?? (0, 0)
                c.all += 1
                if w.alive { c.alive += 1 }
                counts[key] = c
            }
        }
        guard !counts.isEmpty else { return [] }
        return ["groups (jobs are pinned to one):"] + counts.keys.sorted().map { key in
            let c = counts[key]!
            let digest = key.digest.isEmpty ? "unknown" : String(key.digest.prefix(16))
            return "  \(key.model)  sha256 \(digest)  \(key.numerics.isEmpty ? "numerics unknown" : key.numerics)  \(c.all) worker(s), \(c.alive) alive"
        }
    }
}

/// `atelier wait JOB --out DIR`.
struct WaitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wait",
        abstract: "Wait for a job, showing progress, and write its results to DIR.",
        discussion: "Batches are written as DIR/0.png … DIR/(N-1).png, upscales as DIR/upscaled.png. Survives coordinator restarts: it keeps asking until the coordinator is back.")
    @OptionGroup var farm: CoordinatorOption
    @Argument(help: "Job id.") var job: String
    @Option(help: "Folder for the results (created if missing).") var out: String
    @Flag(help: "No progress bar.") var quiet = false

    func run() throws {
        let client = try farm.client()
        defer { client.close() }
        try JobWaiter(client: client, jobID: job, out: out, quiet: quiet).run()
    }
}

/// Follows a job (watch_job) until it ends, showing each image's step progress and writing
/// each result as soon as it exists. On a terminal the progress is one redrawn bar line; piped,
/// it is one line per change of an image ("JOB image 3/8: step 12/30"), so logs stay readable.
struct JobWaiter {
    let client: FarmClient
    let jobID: String
    let out: String
    let quiet: Bool

    func run() throws {
        let dir = URL(fileURLWithPath: (out as NSString).expandingTildeInPath)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let bar = ProgressBar(label: jobID, quiet: quiet)
        var written = Set<UInt32>()
        var printed = [UInt32: String]()
        var warned = false
        var watch = JobWatch(client: client, jobID: jobID)
        while true {
            let status: Atelier_V1_JobStatus
            do {
                status = try watch.next()
                warned = false
            } catch let e as FarmCLIError where e.description.hasPrefix("coordinator:") {
                throw e
            } catch {
                if !warned && !quiet { FileHandle.standardError.write(Data("waiting for the coordinator (\(error))\n".utf8)) }
                warned = true
                Thread.sleep(forTimeInterval: 1)
                continue
            }
            let (done, total) = JobProgressText.hundredths(status)
            bar.update(done, total, detail: JobProgressText.running(status).map(\.text).joined(separator: ", "))
            if !bar.enabled && !quiet {
                for (index, text) in JobProgressText.running(status) where printed[index] != text {
                    FileHandle.standardError.write(Data("\(jobID) \(text)\n".utf8))
                    printed[index] = text
                }
            }
            do {
                if status.kind == "batch" {
                    for t in status.tasks where t.state == .done && !written.contains(t.index) {
                        try fetch(index: t.index, to: dir.appendingPathComponent("\(t.index).png"))
                        written.insert(t.index)
                        if !bar.enabled && !quiet {
                            FileHandle.standardError.write(Data("\(jobID) image \(t.index + 1)/\(status.totalTasks): done\n".utf8))
                        }
                    }
                }
                if status.state == .succeeded && status.kind == "upscale" {
                    try fetch(index: 0, to: dir.appendingPathComponent("upscaled.png"))
                }
            } catch let e as FarmCLIError where e.unreachable {
                // The coordinator went away between the status and the download: ask again.
                if !warned && !quiet { FileHandle.standardError.write(Data("waiting for the coordinator (\(e))\n".utf8)) }
                warned = true
                Thread.sleep(forTimeInterval: 1)
                continue
            }
            switch status.state {
            case .succeeded:
                bar.update(1, 1)
                if !quiet { FileHandle.standardError.write(Data("\(jobID) succeeded: results in \(dir.path)\n".utf8)) }
                return
            case .failed:
                bar.finish()
                throw FarmCLIError("job \(jobID) failed: \(status.errors.last ?? "no error recorded")")
            case .cancelled:
                bar.finish()
                throw FarmCLIError("job \(jobID) was cancelled")
            default:
                continue  // watch_job waits for the next change
            }
        }
    }

    func fetch(index: UInt32, to url: URL) throws {
        let r = try farmCall(client, .fetchResult(.with { $0.jobID = jobID; $0.index = index }), timeout: .seconds(60)).fetchResult
        let tmp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp")
        try r.png.write(to: tmp)
        guard rename(tmp.path, url.path) == 0 else { throw FarmCLIError("cannot write \(url.path): \(String(cString: strerror(errno)))") }
    }
}

enum JobText {
    static func state(_ s: Atelier_V1_JobState) -> String {
        switch s {
        case .queued: return "queued"
        case .running: return "running"
        case .succeeded: return "succeeded"
        case .failed: return "failed"
        case .cancelled: return "cancelled"
        default: return "unknown"
        }
    }

    static func task(_ s: Atelier_V1_TaskState) -> String {
        switch s {
        case .queued: return "queued"
        case .leased: return "running"
        case .done: return "done"
        case .failed: return "failed"
        case .cancelled: return "cancelled"
        default: return "unknown"
        }
    }
}
