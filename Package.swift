// swift-tools-version:6.1
import PackageDescription

// Layers, bottom to top (each target imports only what is listed for it; LayeringTests checks):
// - system libraries (CBLAS, CPNG, CNNG) and C shims (AtelierKernelsC, CAtelierPNG);
// - AtelierRequests: request limits and validation, no dependencies: every door checks a request
//   with it;
// - AtelierImaging (AtelierRequests, libpng): PNG read/write, PIL-exact resampling, A1111
//   parameters, and the one `TilePlan` that cuts an image into overlapping tiles and stitches them
//   back, shared by the local tiled upscale, the coordinator's planner and its stitcher;
// - the engine: AtelierKernels (tensors, BLAS) → AtelierModels (safetensors, configs, networks) →
//   AtelierDiffusion (tokenizer, RNG, schedulers, pipelines; re-exports AtelierImaging);
// - the farm, which links no engine: AtelierFarmProtocol (generated `atelier.v1` messages and their
//   validation) → AtelierFarmTransport (nng REQ/REP, the only target that touches sockets, so TLS
//   changes only it) → AtelierFarmCoordinator (the queue behind `CoordinatorStore`: SQLite via GRDB,
//   the embedded default, or PostgreSQL via postgres-nio; planner, stitcher) and
//   AtelierFarmWorker (the worker loop; sees the engine only through `RenderEngine`). AtelierFarm
//   re-exports the four for tools that use them all;
// - AtelierRenderEngine: the adapter that plugs the diffusion pipelines into a worker (`RenderEngine`);
// - atelier (the CLI), atelier-chaos and the fuzz targets on top.
//
// Traits (both on by default): `PostgreSQL` (the coordinator's PostgreSQL store, postgres-nio) and
// `StatusPage` (`coordinator --http`: Prometheus metrics and the status page, Hummingbird). Off
// (`swift build --disable-default-traits`), the same CLI builds without SwiftNIO, its TLS stack,
// PostgresNIO and Hummingbird — what the demo (scripts/demo.sh) builds, for a first command that
// fits in minutes; `--store postgres://…` and `--http` then say how to get a build that has them.
// The tests need the default traits.
let package = Package(
    name: "Atelier",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "atelier", targets: ["atelier"]),
        .library(name: "AtelierKernels", targets: ["AtelierKernels"]),
        .library(name: "AtelierModels", targets: ["AtelierModels"]),
        .library(name: "AtelierRequests", targets: ["AtelierRequests"]),
        .library(name: "AtelierDiffusion", targets: ["AtelierDiffusion"]),
        .library(name: "AtelierImaging", targets: ["AtelierImaging"]),
        .library(name: "AtelierFarmProtocol", targets: ["AtelierFarmProtocol"]),
        .library(name: "AtelierFarmTransport", targets: ["AtelierFarmTransport"]),
        .library(name: "AtelierFarmCoordinator", targets: ["AtelierFarmCoordinator"]),
        .library(name: "AtelierFarmWorker", targets: ["AtelierFarmWorker"]),
        .library(name: "AtelierFarm", targets: ["AtelierFarm"]),
        .library(name: "AtelierRenderEngine", targets: ["AtelierRenderEngine"]),
    ],
    traits: [
        .trait(name: "PostgreSQL", description: "The coordinator's PostgreSQL store (--store postgres://…), on postgres-nio."),
        .trait(name: "StatusPage", description: "coordinator --http: Prometheus metrics and the status page, on Hummingbird."),
        .default(enabledTraits: ["PostgreSQL", "StatusPage"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        // Already in the graph through postgres-nio; the coordinator hashes access tokens with it.
        .package(url: "https://github.com/apple/swift-crypto", "3.0.0"..<"5.0.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
    ],
    targets: [
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng",
                       providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CNNG", providers: [.apt(["libnng-dev"])]),
        // Atelier's own deterministic GEMM micro-kernels (scalar, AVX2, AVX-512; runtime dispatch).
        // -ffp-contract=off: the scalar reference and the epilogues must not be fused behind our
        // back, or paths would round differently. -O2 even in debug builds: tests run them hot.
        .target(name: "AtelierKernelsC",
                cSettings: [.unsafeFlags(["-O2", "-ffp-contract=off"])]),
        // -O, not -Ounchecked: the hot loops live in AtelierKernelsC, and the Swift kernels' bounds
        // preconditions must fire (a release A/B of a full SD2 UNet pass: 10.86 s checked vs 11.7 s
        // unchecked). -O even in debug builds, as before: tests run these loops hot.
        .target(name: "AtelierKernels", dependencies: ["CBLAS", "AtelierKernelsC"],
                swiftSettings: [.unsafeFlags(["-O"])]),
        .target(name: "AtelierModels", dependencies: ["AtelierKernels"]),
        // The one validation of a generation request (limits, per-mode rules, scheduler names),
        // pure Swift with no dependencies, so the CLI, the coordinator, the worker and the engine
        // all check a request the same way.
        .target(name: "AtelierRequests"),
        // libpng behind a C setjmp boundary, so its longjmp error handling never crosses Swift frames.
        .target(name: "CAtelierPNG", dependencies: ["CPNG"]),
        // Images without the engine: what a coordinator needs to check, cut and stitch PNGs.
        .target(name: "AtelierImaging", dependencies: ["AtelierRequests", "CAtelierPNG"]),
        .target(name: "AtelierDiffusion", dependencies: ["AtelierRequests", "AtelierImaging", "AtelierModels", "AtelierKernels"],
                exclude: ["Resources/CLIP-VOCAB-LICENSE.txt"]),
        // The farm. None of its targets may depend on AtelierDiffusion, AtelierModels or
        // AtelierKernels (LayeringTests fails if one does): a coordinator links no engine.
        // Generated from Protocols/atelier/v1/farm.proto, plus the validation of its messages.
        .target(name: "AtelierFarmProtocol", dependencies: [
            "AtelierRequests", "AtelierImaging",
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ]),
        // nng REQ/REP and the protobuf framing on it; the only farm target that sees sockets.
        .target(name: "AtelierFarmTransport", dependencies: [
            "CNNG", "AtelierFarmProtocol",
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "AtelierFarmCoordinator", dependencies: [
            "AtelierFarmProtocol", "AtelierFarmTransport", "AtelierImaging", "AtelierRequests",
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "PostgresNIO", package: "postgres-nio", condition: .when(traits: ["PostgreSQL"])),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        // The worker loop; it reaches an engine only through the `RenderEngine` protocol.
        .target(name: "AtelierFarmWorker", dependencies: [
            "AtelierFarmProtocol", "AtelierFarmTransport", "AtelierRequests", .product(name: "Logging", package: "swift-log"),
        ]),
        // The coordinator's HTTP side: Prometheus metrics (swift-prometheus) and the read-only
        // status page with thumbnails, on Hummingbird beside the nng server. It reads the farm
        // only through the coordinator and its store, and links no engine.
        .target(name: "AtelierFarmObservability", dependencies: [
            "AtelierFarmProtocol", "AtelierFarmCoordinator", "AtelierImaging",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Re-exports the four farm targets, for tools that use them all (the CLI, atelier-chaos).
        .target(name: "AtelierFarm", dependencies: [
            "AtelierFarmProtocol", "AtelierFarmTransport", "AtelierFarmCoordinator", "AtelierFarmWorker",
        ]),
        // The diffusion pipelines as a worker's `RenderEngine`.
        .target(name: "AtelierRenderEngine", dependencies: [
            "AtelierFarmWorker", "AtelierFarmProtocol", "AtelierDiffusion", "AtelierImaging", "AtelierModels", "AtelierKernels",
        ]),
        .executableTarget(name: "atelier", dependencies: [
            "AtelierFarm", .target(name: "AtelierFarmObservability", condition: .when(traits: ["StatusPage"])),
            "AtelierRenderEngine", "AtelierRequests", "AtelierImaging", "AtelierDiffusion", "AtelierModels", "AtelierKernels",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The fault and load suites (scripts/chaos.sh, scripts/load.sh): real coordinator and worker
        // processes under kill -9, SIGSTOP, a straggler, a full disk; or 10k tasks on no-op workers.
        .executableTarget(name: "atelier-chaos", dependencies: [
            "AtelierFarm", "AtelierDiffusion",
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // Fuzz targets (protobuf requests into the coordinator, safetensors, PNG, tokenizer), shared
        // by libFuzzer (atelier-fuzz built by scripts/fuzz.sh with -sanitize=fuzzer) and the CI replay.
        .target(name: "AtelierFuzzTargets", dependencies: [
            "AtelierFarm", "AtelierDiffusion", "AtelierModels",
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ]),
        .executableTarget(name: "atelier-fuzz", dependencies: ["AtelierFuzzTargets"]),
        .testTarget(name: "AtelierKernelsTests", dependencies: ["AtelierKernels"]),
        .testTarget(name: "AtelierModelsTests", dependencies: ["AtelierModels", "AtelierKernels"]),
        .testTarget(name: "AtelierDiffusionTests", dependencies: ["AtelierRequests", "AtelierImaging", "AtelierDiffusion", "AtelierModels", "AtelierKernels"],
                    exclude: ["Fixtures"]),
        .testTarget(name: "AtelierFarmTests", dependencies: [
            "AtelierFarmProtocol", "AtelierFarmTransport", "AtelierFarmCoordinator", "AtelierFarmWorker", "AtelierFarm",
            "AtelierRenderEngine", "AtelierRequests", "AtelierImaging", "AtelierDiffusion", "AtelierFarmObservability",
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "PostgresNIO", package: "postgres-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Runs the built `atelier` executable as a user would (exit codes, messages, files).
        .testTarget(name: "AtelierCLITests", dependencies: ["AtelierDiffusion", "atelier"]),
        // CI's fast lanes of the suites: the committed fuzz corpora plus seeded mutations in-process,
        // and `atelier-chaos chaos --quick` run as a process.
        .testTarget(name: "AtelierFuzzTests", dependencies: ["AtelierFuzzTargets"]),
        .testTarget(name: "AtelierChaosTests", dependencies: []),
        // Package.swift's layers, checked against the manifest and every target's imports.
        .testTarget(name: "AtelierLayeringTests", dependencies: []),
        // Deploy/ read by the tools that consume it (PyYAML, systemd-analyze).
        .testTarget(name: "AtelierDeployTests", dependencies: []),
    ],
    // Tools 6.1 for traits; the language stays Swift 5 mode, as under tools 5.10.
    swiftLanguageModes: [.v5]
)
