import Foundation
import AtelierKernels

/// Which OpenBLAS kernels the process runs, when OpenBLAS is the GEMM backend
/// (`ATELIER_KERNELS=openblas`; the default own kernels never call it).
///
/// OpenBLAS picks its kernel family once, when the library loads, and different families round
/// differently, so the same seed gives different pixels on an AVX-512 machine running "SkylakeX"
/// kernels and an AVX2 machine running "Haswell" ones. So every CPU with AVX2+FMA runs the Haswell
/// kernels (`portable`). The former `native` mode is gone: it was a trap (2.5× slower UNet on a
/// Zen 4, where OpenBLAS picks "Cooperlake"), and the own kernels are the fast, portable mode.
/// Debian 12's OpenBLAS 0.3.21 also fails to recognise recent Xeons and falls back to SSE
/// "Prescott" kernels (5× slower); `portable` fixes that. `ATELIER_BLAS_CORE=<family>` or an
/// explicit `OPENBLAS_CORETYPE` picks a family by name, and the only way to change the kernels is
/// that variable before the library loads — hence one re-exec at start-up.
enum BLASCoreSelection {
    static func reexecIfBeneficial() {
        let env = ProcessInfo.processInfo.environment
        guard BLAS.backend == .openblas else { return }
        guard env["OPENBLAS_CORETYPE"] == nil, env["ATELIER_BLAS_REEXEC"] == nil else { return }
        guard let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let flagsLine = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return }
        let flags = Set(flagsLine.split(separator: ":").last?.split(separator: " ").map(String.init) ?? [])
        let current = BLAS.coreName
        let wanted: String?
        switch (env["ATELIER_BLAS_CORE"] ?? "portable").lowercased() {
        case "portable":
            wanted = ["avx2", "fma"].allSatisfy(flags.contains) ? "Haswell" : BLAS.betterCoreType(cpuFlags: flags, current: current)
        default:
            wanted = env["ATELIER_BLAS_CORE"]
        }
        guard let core = wanted, core.lowercased() != current.lowercased() else { return }
        setenv("OPENBLAS_CORETYPE", core, 1)
        setenv("ATELIER_BLAS_REEXEC", "1", 1)  // never loop
        var cArgs = CommandLine.arguments.map { strdup($0) } + [nil]
        execv("/proc/self/exe", &cArgs)
        // exec failed: carry on with the kernels we have.
    }
}
