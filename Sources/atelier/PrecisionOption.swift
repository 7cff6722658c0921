import ArgumentParser
import AtelierKernels

/// `--precision fp32|bf16` on render, upscale, worker and bench.
extension OwnGEMM.Precision: ExpressibleByArgument {
    /// The option's help, the same on every command.
    static let help: ArgumentHelp = """
        UNet arithmetic: fp32 (default) or bf16 (weights held in bf16, half the memory; products \
        rounded to bf16 and summed in fp32 exactly as AVX512_BF16's vdpbf16ps does, emulated \
        bit-for-bit on CPUs without it; on AMX CPUs the tiles' own sums; large 3×3 convolutions \
        run fp32 Winograd on the bf16 weights, except on AMX). bf16 images differ slightly from \
        fp32 ones and form their own numerics class. Without AVX512_BF16 or AMX, bf16 saves \
        memory at about the fp32 speed.
        """
}
