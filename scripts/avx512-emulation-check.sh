#!/usr/bin/env bash
# The AVX-512 kernels' bits, checked where there is no AVX-512 CPU (the unit tests check them on
# machines that have one): builds AtelierKernelsC with the AVX-512 micro-kernels' intrinsics
# emulated by SIMDe on AVX2+FMA (exact FMAs, so the chain is the same) and `vdpbf16ps` emulated by
# its Intel SDM definition, the AMX tiles by theirs (Tests/KernelEmulation/amx_sdm.h), forces the
# dispatch up to the amxbf16 family and compares random fp32 and bf16 GEMMs with scalar chains.
# Needs gcc and libsimde-dev (scripts/setup.sh --test).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f /usr/include/simde/x86/avx512.h ] || bash scripts/setup.sh --test
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
src=Sources/AtelierKernelsC
cp "$src"/*.c "$src"/*.h "$src"/include/*.h "$work"/
simde='#define SIMDE_ENABLE_NATIVE_ALIASES\n#include <simde/x86/avx512.h>'
for f in MicroKernelAVX512.c RowKernelsAVX512.c Winograd4.c; do
  sed -e "s|#include <immintrin.h>|$simde|" \
      -e 's|#define AK_TARGET __attribute__((target("avx512f")))|#define AK_TARGET|' \
      "$src/$f" > "$work/$f"
  grep -q '#define AK_TARGET$' "$work/$f" || { echo "could not emulate $f" >&2; exit 1; }
done
# vdpbf16ps per the SDM: for each lane, acc += odd pair product, then += even pair product, each an
# FMA rounded to nearest even, denormal inputs read as zero and denormal results flushed.
cat > "$work/dpbf16_sdm.h" <<'SDM'
#include <math.h>
#include <string.h>
static inline float ak_sdm_wide(uint32_t h) { uint32_t u = h << 16; float f; if ((u & 0x7f800000u) == 0) u &= 0x80000000u; memcpy(&f, &u, 4); return f; }
static inline float ak_sdm_ftz(float x) { return fpclassify(x) == FP_SUBNORMAL ? copysignf(0.0f, x) : x; }
static inline simde__m512 ak_sdm_dpbf16_ps(simde__m512 src, simde__m512i a, simde__m512i b) {
    float s[16]; uint32_t ua[16], ub[16];
    memcpy(s, &src, 64); memcpy(ua, &a, 64); memcpy(ub, &b, 64);
    for (int i = 0; i < 16; i++) {
        float acc = ak_sdm_ftz(s[i]);
        acc = ak_sdm_ftz(fmaf(ak_sdm_wide(ua[i] >> 16), ak_sdm_wide(ub[i] >> 16), acc));
        acc = ak_sdm_ftz(fmaf(ak_sdm_wide(ua[i] & 0xffffu), ak_sdm_wide(ub[i] & 0xffffu), acc));
        s[i] = acc;
    }
    simde__m512 r; memcpy(&r, s, 64); return r;
}
#undef _mm512_dpbf16_ps
#define _mm512_dpbf16_ps(src, a, b) ak_sdm_dpbf16_ps(src, a, b)
/* vcvtne2ps2bf16 per the SDM: low 16 bf16 from b, high 16 from a; NaN quieted, zero and denormals to
   signed zero, the rest rounded to nearest even (an integer add of 0x7fff + lsb). */
static inline uint16_t ak_sdm_bf16(float f) {
    uint32_t u; memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    if ((u & 0x7f800000u) == 0) return (uint16_t)((u >> 16) & 0x8000u);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
static inline simde__m512i ak_sdm_cvtne2ps_pbh(simde__m512 a, simde__m512 b) {
    float fa[16], fb[16]; uint16_t r[32];
    memcpy(fa, &a, 64); memcpy(fb, &b, 64);
    for (int i = 0; i < 16; i++) { r[i] = ak_sdm_bf16(fb[i]); r[16 + i] = ak_sdm_bf16(fa[i]); }
    simde__m512i v; memcpy(&v, r, 64); return v;
}
#undef _mm512_cvtne2ps_pbh
#define _mm512_cvtne2ps_pbh(a, b) ak_sdm_cvtne2ps_pbh(a, b)
SDM
sed -e "s|#include <immintrin.h>|$simde\n#include \"dpbf16_sdm.h\"|" \
    -e 's|#define AK_TARGET __attribute__((target("avx512f,avx512bf16")))|#define AK_TARGET|' \
    -e 's|#define AK_BH(v) ((__m512bh)(v))|#define AK_BH(v) (v)|' \
    -e 's|#define AK_BI(v) ((__m512i)(v))|#define AK_BI(v) (v)|' \
    -e 's|__m512bh |__m512i |g' \
    "$src/MicroKernelAVX512BF16.c" > "$work/MicroKernelAVX512BF16.c"
# AMX tiles per the SDM (Tests/KernelEmulation/amx_sdm.h) for the amxbf16 family's macro-kernel.
cp Tests/KernelEmulation/amx_sdm.h "$work/"
sed -e 's|#include <immintrin.h>|#include "amx_sdm.h"|' \
    -e 's|#define AK_AMX __attribute__((target("amx-tile,amx-bf16")))|#define AK_AMX|' \
    "$src/MacroKernelAMX.c" > "$work/MacroKernelAMX.c"
grep -q '#define AK_AMX$' "$work/MacroKernelAMX.c" || { echo "could not emulate the AMX macro-kernel" >&2; exit 1; }
sed -i 's|    if (detected < 0) detected = detect();|    if (detected < 0) detected = AK_ISA_AMXBF16;|' "$work/CPUDispatch.c"
grep -q 'detected = AK_ISA_AMXBF16;' "$work/CPUDispatch.c" || { echo "could not force the AVX-512 and AMX families" >&2; exit 1; }
for check in avx512_gemm_check avx512bf16_gemm_check; do
  gcc -O1 -mavx2 -mfma -ffp-contract=off -w -Wno-psabi -I"$work" Tests/KernelEmulation/$check.c \
      $(ls "$work"/*.c) -lm -o "$work/$check"
  # grep reads all of objdump's output (-q would quit early, and pipefail would then see objdump's
  # SIGPIPE and hide a match), and matches registers and mnemonics, not symbol names such as
  # ak_tdpbf16ps_hardware.
  if objdump -d "$work/$check" | grep -E '%zmm|%tmm|[[:space:]](tdpbf16ps|ldtilecfg)[[:space:]]' > /dev/null; then
    echo "$check uses real AVX-512 or AMX instructions" >&2; exit 1
  fi
  "$work/$check"
done

# The same emulated kernels under the Swift driver and the Swift tests (AtelierKernelsTests: every
# family it can select, 1, 2 and 3 threads, the references written in Swift): a package of just
# CBLAS, the emulated AtelierKernelsC, AtelierKernels and its tests, so the driver's blocking for
# AVX-512 and AMX runs too. ATELIER_EMULATION_SWIFT=0 skips it.
if [ "${ATELIER_EMULATION_SWIFT:-1}" != "0" ]; then
  pkg="$work/package"
  mkdir -p "$pkg/Sources/AtelierKernelsC/include" "$pkg/Tests"
  cp -r Sources/CBLAS "$pkg/Sources/"
  cp -r Sources/AtelierKernels "$pkg/Sources/"
  cp -r Tests/AtelierKernelsTests "$pkg/Tests/"
  for f in "$work"/*.c "$work"/*.h; do
    case "$(basename "$f")" in
      *_check.c|AtelierKernelsC.h) ;;
      *) cp "$f" "$pkg/Sources/AtelierKernelsC/" ;;
    esac
  done
  cp "$work/AtelierKernelsC.h" "$pkg/Sources/AtelierKernelsC/include/"
  cat > "$pkg/Package.swift" <<'MANIFEST'
// swift-tools-version:5.9
import PackageDescription
let package = Package(
    name: "AtelierKernelEmulation",
    targets: [
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas"),
        .target(name: "AtelierKernelsC", cSettings: [.unsafeFlags(["-O2", "-ffp-contract=off", "-mavx2", "-mfma", "-w"])]),
        .target(name: "AtelierKernels", dependencies: ["CBLAS", "AtelierKernelsC"], swiftSettings: [.unsafeFlags(["-O"])]),
        .testTarget(name: "AtelierKernelsTests", dependencies: ["AtelierKernels"]),
    ]
)
MANIFEST
  (cd "$pkg" && swift build --build-tests -q 2>&1 | grep -v -E '^(\[|Building|Build complete)' || true)
  # InterpolationTests reads fixtures of another test target; it has no kernel family in it.
  (cd "$pkg" && swift test --skip-build --skip InterpolationTests 2>&1 | tee "$work/swift-test.log" | grep -E "error:" | head -20) || true
  summary=$(grep -E "Executed [0-9]+ tests?," "$work/swift-test.log" | tail -1 || true)
  echo "emulated Swift kernel tests (every family up to amxbf16):$summary"
  case "$summary" in
    *" 0 failures"*) ;;
    *) echo "emulated Swift kernel tests failed (see above)" >&2; exit 1 ;;
  esac
fi
