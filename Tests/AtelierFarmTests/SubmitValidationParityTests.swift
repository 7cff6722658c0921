import AtelierDiffusion
@testable import AtelierFarmCoordinator
@testable import AtelierFarmProtocol
@testable import AtelierFarmTransport
@testable import AtelierFarmWorker
import AtelierRequests
import Foundation
import XCTest

/// One validation for every door (issue 9, item 12): for each request, `atelier submit` /
/// `submit-upscale` (the real executable) and the coordinator's `submit_job` give the same answer,
/// refused with the same message or accepted by both.
final class SubmitValidationParityTests: XCTestCase {
    static let inputs = FarmProcessSupport.repoRoot.appendingPathComponent("Tests/Fixtures/pipelines/inputs")

    /// An in-process coordinator behind a real listening socket, with workers registered for
    /// every image mode and the upscaler.
    final class ServedCoordinator {
        let harness: CoordinatorHarness
        let server: RequestServer
        let address: String

        init() throws {
            harness = try CoordinatorHarness()
            _ = harness.register("txt", models: [("sd2", 4)])
            _ = harness.register("inpaint", models: [("sd2-inpaint", 9)])
            _ = harness.register("depth", models: [("sd2-depth", 5)])
            _ = harness.register("x4", models: [("x4", 7)])
            var lastError: Error?
            for _ in 0..<20 {
                let address = "tcp://127.0.0.1:\(Int.random(in: 20_000...60_000))"
                do {
                    let server = try RequestServer(listeningOn: address)
                    let coordinator = harness.coordinator
                    try server.serve { request, peer in coordinator.handle(request, peer: peer.description) }
                    self.server = server
                    self.address = address
                    return
                } catch { lastError = error }
            }
            throw lastError ?? FarmTestError("no free port")
        }

        deinit { server.close() }
    }

    struct Case {
        let name: String
        let cli: [String]
        let proto: Atelier_V1_SubmitJobRequest
        /// nil: both accept.
        let refusal: Atelier_V1_ErrorCode?
    }

    static func batch(_ edit: (inout Atelier_V1_SubmitJobRequest) -> Void = { _ in }) -> Atelier_V1_SubmitJobRequest {
        var s = Atelier_V1_SubmitJobRequest()
        s.batch.prompts = ["a lighthouse"]
        s.batch.count = 1
        s.batch.params.model = "sd2"
        s.batch.params.seed = 1
        edit(&s)
        return s
    }

    static func upscale(_ png: Data, _ edit: (inout Atelier_V1_SubmitJobRequest) -> Void = { _ in }) -> Atelier_V1_SubmitJobRequest {
        var s = Atelier_V1_SubmitJobRequest()
        s.upscale.imagePng = png
        s.upscale.params.model = "x4"
        s.upscale.params.prompt = "a cat"
        s.upscale.params.seed = 1
        s.upscale.tile = 128
        s.upscale.overlap = 32
        edit(&s)
        return s
    }

    func testCLIAndCoordinatorRefuseAndAcceptTheSameRequestsWithTheSameMessage() throws {
        let farm = try ServedCoordinator()
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("atelier-parity-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }

        let initPath = Self.inputs.appendingPathComponent("init_32x32.png").path
        let maskPath = Self.inputs.appendingPathComponent("mask_32x32.png").path
        let wrongMask = Self.inputs.appendingPathComponent("init_40x24.png").path
        let depthPath = Self.inputs.appendingPathComponent("depth8_24x24.png").path
        let lowres = Self.inputs.appendingPathComponent("lowres_16x16.png").path
        let initPNG = try Data(contentsOf: URL(fileURLWithPath: initPath))
        let hugePath = scratch.appendingPathComponent("huge.png").path
        let hugePNG = PNGFixtures.declaring(width: 16384, height: 16384)
        try hugePNG.write(to: URL(fileURLWithPath: hugePath))
        let longNegative = String(repeating: "n", count: RequestLimits.promptBytes + 1)
        let longModel = String(repeating: "m", count: RequestLimits.modelNameBytes + 1)
        let base = ["submit", "--coordinator", farm.address, "--model", "sd2", "--seed", "1"]
        let up = ["submit-upscale", "--coordinator", farm.address, "--model", "x4", "--prompt", "a cat", "--seed", "1"]

        let cases: [Case] = [
            // Refused by both.
            Case(name: "strength 0", cli: base + ["--init-image", initPath, "--strength", "0", "a lighthouse"],
                 proto: Self.batch { $0.batch.params.initImagePng = initPNG; $0.batch.params.strength = 0 }, refusal: .invalidArgument),
            Case(name: "strength too small for the steps", cli: base + ["--init-image", initPath, "--strength", "0.05", "--steps", "10", "a lighthouse"],
                 proto: Self.batch { $0.batch.params.initImagePng = initPNG; $0.batch.params.strength = 0.05; $0.batch.params.steps = 10 }, refusal: .invalidArgument),
            Case(name: "scheduler ddpm", cli: base + ["--scheduler", "ddpm", "a lighthouse"],
                 proto: Self.batch { $0.batch.params.scheduler = "ddpm" }, refusal: .invalidArgument),
            Case(name: "mask of the wrong size", cli: base + ["--model", "sd2-inpaint", "--init-image", initPath, "--mask", wrongMask, "a lighthouse"],
                 proto: Self.batch { $0.batch.params.model = "sd2-inpaint"; $0.batch.params.initImagePng = initPNG
                     $0.batch.params.maskPng = (try? Data(contentsOf: URL(fileURLWithPath: wrongMask))) ?? Data() }, refusal: .invalidArgument),
            Case(name: "width 8", cli: base + ["--width", "8", "a lighthouse"],
                 proto: Self.batch { $0.batch.params.width = 8 }, refusal: .invalidArgument),
            Case(name: "steps 1001", cli: base + ["--steps", "1001", "a lighthouse"],
                 proto: Self.batch { $0.batch.params.steps = 1001 }, refusal: .invalidArgument),
            Case(name: "guidance 101", cli: base + ["--guidance", "101", "a lighthouse"],
                 proto: Self.batch { $0.batch.params.guidance = 101 }, refusal: .invalidArgument),
            Case(name: "rescale 2", cli: base + ["--guidance-rescale", "2", "a lighthouse"],
                 proto: Self.batch { $0.batch.params.guidanceRescale = 2 }, refusal: .invalidArgument),
            Case(name: "count 1001", cli: base + ["--count", "1001", "a lighthouse"],
                 proto: Self.batch { $0.batch.count = 1001 }, refusal: .invalidArgument),
            Case(name: "negative prompt too long", cli: base + ["--negative-prompt", longNegative, "a lighthouse"],
                 proto: Self.batch { $0.batch.params.negativePrompt = longNegative }, refusal: .tooLarge),
            Case(name: "model name too long", cli: base + ["--model", longModel, "a lighthouse"],
                 proto: Self.batch { $0.batch.params.model = longModel }, refusal: .tooLarge),
            Case(name: "init image declaring 16384²", cli: base + ["--init-image", hugePath, "a lighthouse"],
                 proto: Self.batch { $0.batch.params.initImagePng = hugePNG }, refusal: .tooLarge),
            Case(name: "upscale tile not a multiple of 8", cli: up + ["--image", lowres, "--tile", "36", "--overlap", "8"],
                 proto: Self.upscale((try? Data(contentsOf: URL(fileURLWithPath: lowres))) ?? Data()) { $0.upscale.tile = 36; $0.upscale.overlap = 8 },
                 refusal: .invalidArgument),
            Case(name: "upscale noise level 351", cli: up + ["--image", lowres, "--noise-level", "351"],
                 proto: Self.upscale((try? Data(contentsOf: URL(fileURLWithPath: lowres))) ?? Data()) { $0.upscale.params.noiseLevel = 351 },
                 refusal: .invalidArgument),
            Case(name: "upscale of a 16384² image", cli: up + ["--image", hugePath],
                 proto: Self.upscale(hugePNG), refusal: .tooLarge),
            // Accepted by both.
            Case(name: "txt2img 64²", cli: base + ["--width", "64", "--height", "64", "--steps", "1", "a lighthouse"],
                 proto: Self.batch { $0.batch.params.width = 64; $0.batch.params.height = 64; $0.batch.params.steps = 1 }, refusal: nil),
            Case(name: "img2img strength 0.5", cli: base + ["--init-image", initPath, "--strength", "0.5", "a lighthouse"],
                 proto: Self.batch { $0.batch.params.initImagePng = initPNG; $0.batch.params.strength = 0.5 }, refusal: nil),
            Case(name: "inpaint with a matching mask", cli: base + ["--model", "sd2-inpaint", "--init-image", initPath, "--mask", maskPath, "a lighthouse"],
                 proto: Self.batch { $0.batch.params.model = "sd2-inpaint"; $0.batch.params.initImagePng = initPNG
                     $0.batch.params.maskPng = (try? Data(contentsOf: URL(fileURLWithPath: maskPath))) ?? Data() }, refusal: nil),
            Case(name: "depth2img with a map", cli: base + ["--model", "sd2-depth", "--init-image", initPath, "--depth-map", depthPath, "a lighthouse"],
                 proto: Self.batch { $0.batch.params.model = "sd2-depth"; $0.batch.params.initImagePng = initPNG
                     $0.batch.params.depthMapPng = (try? Data(contentsOf: URL(fileURLWithPath: depthPath))) ?? Data() }, refusal: nil),
            Case(name: "upscale tile 32 overlap 8", cli: up + ["--image", lowres, "--tile", "32", "--overlap", "8"],
                 proto: Self.upscale((try? Data(contentsOf: URL(fileURLWithPath: lowres))) ?? Data()) { $0.upscale.tile = 32; $0.upscale.overlap = 8 },
                 refusal: nil),
        ]

        let binary = try FarmProcessSupport.atelierBinary()
        for c in cases {
            let response = farm.harness.send(.submitJob(c.proto))
            let cli = try Self.run(binary, c.cli)
            if let refusal = c.refusal {
                XCTAssertEqual(response.error.code, refusal, "\(c.name): coordinator: \(response.error.message)")
                XCTAssertNotEqual(cli.status, 0, "\(c.name): the CLI accepted it")
                XCTAssertEqual(cli.stderr, "Error: \(response.error.message)\n", "\(c.name): messages differ")
                XCTAssertFalse(cli.stderr.contains("Usage:"), "\(c.name): one line, no usage footer")
            } else {
                XCTAssertFalse(response.hasError, "\(c.name): coordinator refused: \(response.error.message)")
                XCTAssertEqual(cli.status, 0, "\(c.name): the CLI refused: \(cli.stderr)")
                XCTAssertEqual(cli.stdout.trimmingCharacters(in: .whitespacesAndNewlines).count, 12, "\(c.name): prints the job id")
            }
        }
    }

    /// `submit --prompt` is accepted (repeatable) like `render --prompt`, alongside positional
    /// prompts (item 20): P prompts × count tasks.
    func testSubmitAcceptsRepeatedPromptOptionsAlongsidePositionalPrompts() throws {
        let farm = try ServedCoordinator()
        let cli = try Self.run(try FarmProcessSupport.atelierBinary(),
                               ["submit", "--coordinator", farm.address, "--model", "sd2", "--prompt", "a red fox",
                                "--prompt", "a blue heron", "a lighthouse", "--count", "2", "--width", "64", "--height", "64"])
        XCTAssertEqual(cli.status, 0, cli.stderr)
        let jobID = cli.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let status = farm.harness.send(.jobStatus(.with { $0.jobID = jobID; $0.includeTasks = true })).jobStatus.job
        XCTAssertEqual(status.totalTasks, 6)
        var prompts = [UInt32: String]()
        for i in 0..<6 {
            // A fresh worker per lease, so a per-worker lease bound cannot interfere.
            let worker = farm.harness.register("w\(i)", models: [("sd2", 4)])
            let lease = farm.harness.send(.leaseTask(.with { $0.workerID = worker })).leaseTask.lease
            prompts[lease.task.image.index] = lease.task.image.params.prompt
        }
        XCTAssertEqual(prompts[0], "a red fox")
        XCTAssertEqual(prompts[2], "a blue heron")
        XCTAssertEqual(prompts[5], "a lighthouse")
    }

    struct Output { let status: Int32; let stdout: String; let stderr: String }

    static func run(_ binary: URL, _ args: [String]) throws -> Output {
        let p = Process()
        p.executableURL = binary
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Output(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }
}

/// Tiny PNGs that only declare a size: a signature, an IHDR and an IEND, no pixel data. Any door
/// that decoded before checking the declared size would fail differently (truncated/corrupt).
enum PNGFixtures {
    static func declaring(width: Int, height: Int) -> Data {
        func chunk(_ type: String, _ body: [UInt8]) -> [UInt8] {
            let typed = Array(type.utf8) + body
            return be32(body.count) + typed + be32(Int(crc32(typed)))
        }
        func be32(_ v: Int) -> [UInt8] { [UInt8(v >> 24 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
        let ihdr = be32(width) + be32(height) + [8, 2, 0, 0, 0]
        return Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", ihdr) + chunk("IEND", []))
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            c ^= UInt32(b)
            for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        }
        return ~c
    }
}
