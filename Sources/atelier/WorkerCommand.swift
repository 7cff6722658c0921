import ArgumentParser
import Foundation
import AtelierFarm
import Logging
import AtelierKernels

/// `atelier worker`: loads its models once and renders whatever the coordinator hands it.
struct WorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run a render worker that pulls tasks from a coordinator.",
        discussion: """
            Workers dial out to the coordinator (so they work from behind NAT), reconnect by themselves \
            and carry on across coordinator restarts. Add as many as you like, on any machine; each \
            serves the models it is given, by NAME (the name jobs ask for).

            Examples:
              atelier worker --model sd21=~/models/stable-diffusion-2-1-base
              atelier worker --coordinator tcp://farm.lan:7733 --model sd21=sd21.safetensors --model x4=~/models/x4-upscaler
            """)

    @Option(help: "Coordinator address (default: $ATELIER_COORDINATOR, else tcp://127.0.0.1:7733).")
    var coordinator: String?

    @Option(help: "NAME=PATH of a model to serve (repeatable; default: the embedded demo models, Models/demo, as 'default' and 'x4').")
    var model: [String] = []

    @Option(help: OwnGEMM.Precision.help)
    var precision: OwnGEMM.Precision = .fp32

    @Option(help: "Worker name shown by `atelier workers` (default: host name and process id).")
    var name: String?

    @Option(name: .customLong("engine"), help: "Render engine: 'pipeline' (the models), or 'noop' for load tests only (solid images, announced as engine=noop).")
    var engineKind: WorkerEngineKind = .pipeline

    @Option(help: "Testing only: sleep this many milliseconds after every step (a slow straggler for chaos runs).")
    var stragglerStepDelayMs: Int = 0

    @OptionGroup var tls: TLSOptions
    @OptionGroup var token: TokenOptions
    @OptionGroup var logging: LogOptions

    func run() throws {
        logging.bootstrap()
        var models: [(name: String, path: URL)] = []
        for spec in model {
            guard let eq = spec.firstIndex(of: "="), eq != spec.startIndex, spec.index(after: eq) != spec.endIndex else {
                throw ValidationError("--model takes NAME=PATH, got '\(spec)'")
            }
            let path = (String(spec[spec.index(after: eq)...]) as NSString).expandingTildeInPath
            models.append((String(spec[..<eq]), URL(fileURLWithPath: path)))
        }
        if models.isEmpty && engineKind == .noop {  // loads nothing: only the default names matter
            models = [(DefaultModel.Kind.generator.farmName, URL(fileURLWithPath: "/dev/null")),
                      (DefaultModel.Kind.upscaler.farmName, URL(fileURLWithPath: "/dev/null"))]
        }
        if models.isEmpty {
            // The embedded demo models (Models/demo), under the names submit and submit-upscale default to.
            models = [(DefaultModel.Kind.generator.farmName, try DefaultModel.resolve(nil, kind: .generator)),
                      (DefaultModel.Kind.upscaler.farmName, try DefaultModel.resolve(nil, kind: .upscaler))]
        }
        let tlsConfiguration = try tls.configuration()
        let authToken = try token.resolve()
        let address = FarmAddress.resolve(flag: coordinator)
        for part in address.split(separator: ",") {
            try TLSConfiguration.check(address: String(part).trimmingCharacters(in: .whitespaces), tls: tlsConfiguration)
        }
        _ = try tlsConfiguration?.load()  // before the models load: a bad file fails in a second
        let engine = try engineKind.make(models: models, precision: precision, stragglerStepDelayMs: stragglerStepDelayMs)
        let client = try FarmClient(address: address, options: RequestClientOptions(tls: tlsConfiguration), authToken: authToken)
        let workerName = name ?? "\(ProcessInfo.processInfo.hostName)-\(getpid())"
        let worker = FarmWorker(client: client, engine: engine,
                                options: .init(name: workerName, version: "\(atelierVersion) kernels=\(BLAS.kernelDescription)\(engineKind.versionSuffix)",
                                               numerics: engineKind == .noop ? "noop" : WorkerCommand.numerics(precision)),
                                logger: Logger(label: "atelier.worker"))
        log("worker \(workerName) (\(BLAS.kernelDescription) kernels, \(precision.rawValue)) serving \(models.map(\.name).joined(separator: ", ")) for \(address)")
        // SIGTERM/SIGINT (DispatchSource, in SignalWaiter): stop at the next step and hand the
        // current lease back (release_task), so the task is requeued at once and not charged. A
        // second signal, or a stop that takes longer than 20 s, exits at once.
        let stop = SignalWaiter()
        Thread {
            stop.waitForever()
            log("stopping: releasing the current task")
            worker.stop()
            if stop.wait(seconds: 20) { log("second signal: exiting now") } else { log("stop took too long: exiting") }
            Foundation.exit(1)
        }.start()
        worker.run()
        client.close()
        switch worker.exitReason {
        case .drained?:
            log("worker drained: exiting")
        case .refused(let why)?:
            throw CLIError("the coordinator refused this worker: \(why)")
        case nil:
            log("worker stopped")
        }
    }
}

extension WorkerCommand {
    /// What the worker's pixels depend on besides the weights: the precision and the kernel
    /// numerics class (`BLAS.numericsClass`: one class for every CPU running the own kernels,
    /// whatever its instruction set; per kernel family with ATELIER_KERNELS=openblas). Workers with
    /// the same weights and numerics give bit-identical images, so the coordinator pins each job
    /// to one.
    static func numerics(_ precision: OwnGEMM.Precision) -> String { "\(precision.rawValue)/\(BLAS.numericsClass(precision))" }
}

let atelierVersion = "0.1.0"
