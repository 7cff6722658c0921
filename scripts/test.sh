#!/usr/bin/env bash
# The test command: set everything up, build, run every test. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The AVX-512 GEMM path, bit for bit, even where the CPU has no AVX-512 (seconds). Its test-only
# packages (SIMDe, gcc) are optional: without them the check is skipped with a warning, and the
# unit tests still check AVX-512 bit for bit on machines that have it.
if bash scripts/setup.sh --test && [ -f /usr/include/simde/x86/avx512.h ]; then
  bash scripts/avx512-emulation-check.sh
else
  echo "warning: SIMDe (libsimde-dev) is not installable here; the AVX-512 emulation check was skipped" >&2
fi
# A throwaway PostgreSQL server for the PostgreSQL store's conformance tests (they fail without
# it; ATELIER_SKIP_POSTGRES_TESTS=1 skips them on a machine without PostgreSQL, never in CI).
if [ "${ATELIER_SKIP_POSTGRES_TESTS:-}" != "1" ] && [ -z "${ATELIER_TEST_POSTGRES_URL:-}" ]; then
  bash scripts/setup.sh --test >/dev/null || true
  eval "$(bash scripts/postgres-test-server.sh start)"
  trap 'bash scripts/postgres-test-server.sh stop "$ATELIER_TEST_POSTGRES_DIR"' EXIT
fi
swift build --build-tests
swift test --skip-build 2>&1 | tee /tmp/atelier-test.log
# The main job, as README's first command runs it (scripts/demo.sh: the build without the default
# traits, a coordinator and two workers on loopback, a batch, a tiled upscale, the contact sheet),
# so the configuration that leaves PostgreSQL and the status page out keeps compiling and working.
demo_out=$(mktemp -d /tmp/atelier-demo-out.XXXXXX)
bash scripts/demo.sh "$demo_out"
test -s "$demo_out/contact-sheet.png"
rm -rf "$demo_out"
