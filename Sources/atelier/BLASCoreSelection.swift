import Foundation
import AtelierKernels

/// Which OpenBLAS kernels the process runs — a choice between portability of results and speed.
///
/// OpenBLAS picks its kernel family once, when the library loads, and different families round
/// differently (FMA or not, other tile shapes), so the same seed gives different pixels on an
/// AVX-512 machine running "SkylakeX" kernels and an AVX2 machine running "Haswell" ones. A farm
/// must give the same image whichever worker renders it, so by default (`portable`) every CPU with
/// AVX2+FMA — practically every x86 server of the last decade — runs the Haswell kernels.
/// `ATELIER_BLAS_CORE=native` takes the fastest kernels instead (2.2× faster UNet on this AVX-512
/// machine; images then match only machines of the same family). Debian 12's OpenBLAS 0.3.21 also
/// fails to recognise recent Xeons and falls back to SSE "Prescott" kernels (5× slower); both
/// policies fix that. An explicit `OPENBLAS_CORETYPE` always wins, and the only way to change the
/// kernels is that variable before the library loads — hence one re-exec at start-up.
enum BLASCoreSelection {
    static func reexecIfBeneficial() {
        let env = ProcessInfo.processInfo.environment
        guard env["OPENBLAS_CORETYPE"] == nil, env["ATELIER_BLAS_REEXEC"] == nil else { return }
        guard let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let flagsLine = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return }
        let flags = Set(flagsLine.split(separator: ":").last?.split(separator: " ").map(String.init) ?? [])
        let current = BLAS.coreName
        let wanted: String?
        switch (env["ATELIER_BLAS_CORE"] ?? "portable").lowercased() {
        case "portable":
            wanted = ["avx2", "fma"].allSatisfy(flags.contains) ? "Haswell" : BLAS.betterCoreType(cpuFlags: flags, current: current)
        case "native":
            wanted = BLAS.betterCoreType(cpuFlags: flags, current: current)
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
