import Foundation
import AtelierKernels

/// OpenBLAS chooses its kernels once, when the library loads, from the CPU model it recognises.
/// Debian 12's OpenBLAS 0.3.21 does not know recent Xeons and falls back to SSE kernels, 5×
/// slower here (measured: UNet forward 15.7 s → 3.0 s). The only way to change that choice is the
/// OPENBLAS_CORETYPE environment variable before the library loads, so the CLI re-executes itself
/// once with it set. A value the user (or the machine) already set is always respected, and
/// ATELIER_KEEP_BLAS_CORE=1 turns this off.
enum BLASCoreSelection {
    static func reexecIfBeneficial() {
        let env = ProcessInfo.processInfo.environment
        guard env["OPENBLAS_CORETYPE"] == nil, env["ATELIER_KEEP_BLAS_CORE"] == nil else { return }
        guard let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let flagsLine = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return }
        let flags = Set(flagsLine.split(separator: ":").last?.split(separator: " ").map(String.init) ?? [])
        guard let core = BLAS.betterCoreType(cpuFlags: flags, current: BLAS.coreName) else { return }
        setenv("OPENBLAS_CORETYPE", core, 1)
        setenv("ATELIER_KEEP_BLAS_CORE", "1", 1)  // never loop
        let args = CommandLine.arguments
        var cArgs = args.map { strdup($0) } + [nil]
        execv("/proc/self/exe", &cArgs)
        // exec failed: carry on with the kernels we have.
    }
}
