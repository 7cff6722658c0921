#!/usr/bin/env bash
# The AVX-512 kernels' bits, checked where there is no AVX-512 CPU (the unit tests check them on
# machines that have one): builds AtelierKernelsC with the AVX-512 micro-kernel's intrinsics
# emulated by SIMDe on AVX2+FMA (exact FMAs, so the chain is the same), forces the AVX-512 family
# and compares random GEMMs with a scalar fmaf chain. Needs gcc and libsimde-dev (installed here).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f /usr/include/simde/x86/avx512.h ] || bash scripts/setup.sh --test
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
src=Sources/AtelierKernelsC
cp "$src"/*.c "$src"/*.h "$src"/include/*.h "$work"/
sed -e 's|#include <immintrin.h>|#define SIMDE_ENABLE_NATIVE_ALIASES\n#include <simde/x86/avx512.h>|' \
    -e 's|#define AK_TARGET __attribute__((target("avx512f")))|#define AK_TARGET|' \
    "$src/MicroKernelAVX512.c" > "$work/MicroKernelAVX512.c"
sed -i 's|if (avx512f \&\& (xcr0 \& 0xe6) == 0xe6) return AK_ISA_AVX512;|return AK_ISA_AVX512;|' "$work/CPUDispatch.c"
grep -q 'return AK_ISA_AVX512;  //' "$work/CPUDispatch.c" || { echo "could not force the AVX-512 family" >&2; exit 1; }
gcc -O1 -mavx2 -mfma -ffp-contract=off -w -Wno-psabi -I"$work" Tests/KernelEmulation/avx512_gemm_check.c \
    $(ls "$work"/*.c) -lm -o "$work/check"
if objdump -d "$work/check" | grep -q zmm; then echo "binary uses real AVX-512 instructions" >&2; exit 1; fi
"$work/check"
