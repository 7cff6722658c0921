// swift-tools-version:5.10
import PackageDescription

// Layers, bottom to top: system libraries → AtelierKernels (tensors, BLAS) → AtelierModels
// (safetensors, configs, networks) → AtelierDiffusion (tokenizer, RNG, schedulers, pipelines, PNG)
// → AtelierFarm (protocol, nng transport, coordinator, worker; sees the engine only through
// `RenderEngine`) → atelier (the CLI, which plugs the pipelines into the farm). AtelierRequests
// (request limits and validation, no dependencies) sits beside them all: every door checks a
// request with it.
let package = Package(
    name: "Atelier",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "atelier", targets: ["atelier"]),
        .library(name: "AtelierKernels", targets: ["AtelierKernels"]),
        .library(name: "AtelierModels", targets: ["AtelierModels"]),
        .library(name: "AtelierRequests", targets: ["AtelierRequests"]),
        .library(name: "AtelierDiffusion", targets: ["AtelierDiffusion"]),
        .library(name: "AtelierFarm", targets: ["AtelierFarm"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
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
        .target(name: "AtelierKernels", dependencies: ["CBLAS", "AtelierKernelsC"],
                swiftSettings: [.unsafeFlags(["-Ounchecked"])]),
        .target(name: "AtelierModels", dependencies: ["AtelierKernels"]),
        // The one validation of a generation request (limits, per-mode rules, scheduler names),
        // pure Swift with no dependencies, so the CLI, the coordinator, the worker and the engine
        // all check a request the same way.
        .target(name: "AtelierRequests"),
        // libpng behind a C setjmp boundary, so its longjmp error handling never crosses Swift frames.
        .target(name: "CAtelierPNG", dependencies: ["CPNG"]),
        .target(name: "AtelierDiffusion", dependencies: ["AtelierRequests", "AtelierModels", "AtelierKernels", "CPNG", "CAtelierPNG"],
                exclude: ["Resources/CLIP-VOCAB-LICENSE.txt"]),
        // The farm: protocol (generated from Protocols/), nng transport, coordinator, worker. It
        // reaches the engine only through the `RenderEngine` protocol.
        .target(name: "AtelierFarm", dependencies: [
            "CNNG", "AtelierRequests", "AtelierDiffusion",
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            .product(name: "GRDB", package: "GRDB.swift"),
        ]),
        .executableTarget(name: "atelier", dependencies: [
            "AtelierFarm", "AtelierRequests", "AtelierDiffusion", "AtelierModels", "AtelierKernels",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
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
        .testTarget(name: "AtelierDiffusionTests", dependencies: ["AtelierRequests", "AtelierDiffusion", "AtelierModels", "AtelierKernels"],
                    exclude: ["Fixtures"]),
        .testTarget(name: "AtelierFarmTests", dependencies: ["AtelierFarm", "AtelierRequests", "AtelierDiffusion",
                                                        .product(name: "GRDB", package: "GRDB.swift")]),
        // Runs the built `atelier` executable as a user would (exit codes, messages, files).
        .testTarget(name: "AtelierCLITests", dependencies: ["AtelierDiffusion", "atelier"]),
        // CI's fast lanes of the suites: the committed fuzz corpora plus seeded mutations in-process,
        // and `atelier-chaos chaos --quick` run as a process.
        .testTarget(name: "AtelierFuzzTests", dependencies: ["AtelierFuzzTargets"]),
        .testTarget(name: "AtelierChaosTests", dependencies: []),
    ]
)
