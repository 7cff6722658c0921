// Which micro-kernel family runs: detected once from CPUID (and the OS's saved register state,
// XCR0, without which AVX registers are not preserved across context switches), changeable for
// tests and for the ATELIER_KERNEL_ISA override. All families give the same fp32 bits; this only
// decides speed. (amxbf16 is a bf16 numerics class of its own; see AtelierKernelsC.h.)

#include <stdlib.h>
#include <string.h>
#include "AtelierKernelsC.h"
#include "MicroKernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

static uint64_t xgetbv0(void) {
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
}

/// AMX-BF16 usable (before the arithmetic check, ak_amx_matches_sdm): the CPU has AMX-TILE and
/// AMX-BF16, the OS saves tile state (XCR0 bits 17, 18), and Linux granted this process the tile
/// data state (ARCH_REQ_XCOMP_PERM, needed once before the first tile instruction since Linux
/// 5.16; an older kernel refuses, and the bf16 GEMM stays on `vdpbf16ps`).
static int amx_usable(uint64_t xcr0) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    int amx_bf16 = (d >> 22) & 1, amx_tile = (d >> 24) & 1;
    if (!amx_bf16 || !amx_tile || (xcr0 & 0x60000) != 0x60000) return 0;
#if defined(__linux__) && defined(SYS_arch_prctl)
    const long ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18;
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
#else
    return 0;
#endif
}

#if defined(__x86_64__)
/// vdpbf16ps multiply-adds per second over 512-bit fp32 FMA multiply-adds per second on this
/// core: one instruction does 32 bf16 products, an FMA 16. Best of 5 interleaved runs of 10–40 µs
/// each (0.3 ms in all), so a preempted run does not decide; a wrong call would cost speed only.
/// About 2 on a Zen 4 (both issue once per cycle); 0.5 on the Xeon model 0xCF this project met
/// (vdpbf16ps every other cycle, two FMAs per cycle).
static double measure_bf16_rate_ratio(void) {
    const long n = 4096;
    double bf = 1e9, fp = 1e9;
    ak_time_vdpbf16ps(n / 4);
    ak_time_fma512(n / 4);
    for (int r = 0; r < 5; r++) {
        double t = ak_time_vdpbf16ps(n);
        if (t < bf) bf = t;
        t = ak_time_fma512(n);
        if (t < fp) fp = t;
    }
    if (bf <= 0 || fp <= 0) return 1;
    return (32.0 / bf) / (16.0 / fp);
}
#endif

static int detect(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return AK_ISA_SCALAR;
    int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    if (!osxsave || !avx || !fma) return AK_ISA_SCALAR;
    uint64_t xcr0 = xgetbv0();
    if ((xcr0 & 0x6) != 0x6) return AK_ISA_SCALAR;  // XMM and YMM state
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return AK_ISA_SCALAR;
    int avx2 = (b >> 5) & 1, avx512f = (b >> 16) & 1;
    if (!avx2) return AK_ISA_SCALAR;
    if (avx512f && (xcr0 & 0xe6) == 0xe6) {  // opmask, ZMM_Hi256, Hi16_ZMM
        unsigned a1 = 0, b1 = 0, c1 = 0, d1 = 0;
        if (__get_cpuid_count(7, 1, &a1, &b1, &c1, &d1) && ((a1 >> 5) & 1))
            return amx_usable(xcr0) && ak_amx_matches_sdm() ? AK_ISA_AMXBF16 : AK_ISA_AVX512BF16;
        return AK_ISA_AVX512;
    }
    return AK_ISA_AVX2;
}
#else
static int detect(void) { return AK_ISA_SCALAR; }
#endif

static double bf16_rate_ratio = -1;

double ak_vdpbf16ps_rate_ratio(void) {
    if (bf16_rate_ratio < 0) {
#if defined(__x86_64__)
        bf16_rate_ratio = ak_isa_detected() >= AK_ISA_AVX512BF16 ? measure_bf16_rate_ratio() : 0;
#else
        bf16_rate_ratio = 0;
#endif
    }
    return bf16_rate_ratio;
}

static int detected = -1;
static int current = -1;

int ak_isa_detected(void) {
    if (detected < 0) detected = detect();
    return detected;
}

int ak_isa_default(void) {
    int isa = ak_isa_detected();
    // Where `vdpbf16ps` multiplies bf16 slower than the fp32 FMAs multiply their widened values,
    // the bf16 GEMM runs on the fp32 kernels (the emulated layout: the same bits, see
    // PackingBF16.c). Measured, not looked up by model: the same instruction issues at rates 4 ×
    // apart on this project's machines (a Zen 4, a Xeon model 0xCF).
    if (isa == AK_ISA_AVX512BF16 && ak_vdpbf16ps_rate_ratio() < 1.0) isa = AK_ISA_AVX512;
    return isa;
}

int ak_isa_current(void) {
    if (current < 0) {
        current = ak_isa_default();
        // ATELIER_KERNEL_ISA=scalar|avx2|avx512|avx512bf16|amxbf16 forces a family the CPU supports
        // (checks, and a bf16 worker that must stay in the vdpbf16ps class on an AMX machine); an
        // unknown or unsupported name is ignored.
        const char *forced = getenv("ATELIER_KERNEL_ISA");
        if (forced) {
            for (int isa = AK_ISA_SCALAR; isa <= ak_isa_detected(); isa++)
                if (strcmp(forced, ak_isa_name(isa)) == 0) current = isa;
        }
    }
    return current;
}

int ak_set_isa(int isa) {
    if (isa < AK_ISA_SCALAR || isa > ak_isa_detected()) return -1;
    current = isa;
    return 0;
}

const char *ak_isa_name(int isa) {
    switch (isa) {
    case AK_ISA_AVX2: return "avx2";
    case AK_ISA_AVX512: return "avx512";
    case AK_ISA_AVX512BF16: return "avx512bf16";
    case AK_ISA_AMXBF16: return "amxbf16";
    default: return "scalar";
    }
}

int ak_mr(void) { return AK_MR; }

int ak_nr(void) {
    switch (ak_isa_current()) {
    case AK_ISA_AVX512:
    case AK_ISA_AVX512BF16:
    case AK_ISA_AMXBF16: return 32;
    default: return 16;
    }
}

ak_micro_kernel ak_current_micro_kernel(void) {
    switch (ak_isa_current()) {
#if defined(__x86_64__)
    case AK_ISA_AVX512:
    case AK_ISA_AVX512BF16:
    case AK_ISA_AMXBF16: return ak_ukr_avx512_6x32;
    case AK_ISA_AVX2: return ak_ukr_avx2_6x16;
#endif
    default: return ak_ukr_scalar_6x16;
    }
}
