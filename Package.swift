// swift-tools-version:5.10
import PackageDescription

// Layers, bottom to top: system libraries → AtelierKernels (tensors, BLAS) → AtelierModels
// (safetensors, configs, networks) → AtelierDiffusion (tokenizer, RNG, schedulers, pipelines, PNG)
// → atelier (CLI). Nothing below the CLI knows about the farm.
let package = Package(
    name: "Atelier",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "atelier", targets: ["atelier"]),
        .library(name: "AtelierKernels", targets: ["AtelierKernels"]),
        .library(name: "AtelierModels", targets: ["AtelierModels"]),
        .library(name: "AtelierDiffusion", targets: ["AtelierDiffusion"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng",
                       providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CNNG", providers: [.apt(["libnng-dev"])]),
        .target(name: "AtelierKernels", dependencies: ["CBLAS"],
                swiftSettings: [.unsafeFlags(["-Ounchecked"])]),
        .target(name: "AtelierModels", dependencies: ["AtelierKernels"]),
        .target(name: "AtelierDiffusion", dependencies: ["AtelierModels", "AtelierKernels", "CPNG"]),
        .executableTarget(name: "atelier", dependencies: [
            "AtelierDiffusion", "AtelierModels", "AtelierKernels",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .testTarget(name: "AtelierKernelsTests", dependencies: ["AtelierKernels"]),
        .testTarget(name: "AtelierModelsTests", dependencies: ["AtelierModels", "AtelierKernels"]),
        .testTarget(name: "AtelierDiffusionTests", dependencies: ["AtelierDiffusion", "AtelierModels", "AtelierKernels"]),
    ]
)
