#!/usr/bin/env bash
# The fuzz suite: libFuzzer (Swift's -sanitize=fuzzer) on four input paths — protobuf requests
# into a live coordinator, safetensors headers and single-file checkpoints, PNG decoding, the
# tokenizer. Usage: scripts/fuzz.sh [TARGET ...]  (default: all four). Executions per target:
# FUZZ_RUNS_PROTOBUF / _SAFETENSORS (default 1,000,000), FUZZ_RUNS_PNG / _TOKENIZER (100,000).
# A crash or hang is saved under Tests/Fuzz/crashes/TARGET/ and fuzzing resumes (at most
# FUZZ_MAX_FINDINGS per target, default 10). Prints executions, crashes and hangs per target and
# exits 1 if any was found. FUZZ_BIN=PATH uses an atelier-fuzz built before. Reproduce one with:
#   ATELIER_FUZZ_TARGET=TARGET .build/fuzz/x86_64-unknown-linux-gnu/release/atelier-fuzz Tests/Fuzz/crashes/TARGET/crash-…
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(png tokenizer protobuf safetensors)
if [ -n "${FUZZ_BIN:-}" ]; then
  BIN=$FUZZ_BIN        # a binary built before (skips the build)
else
  build=(swift build -c release --scratch-path .build/fuzz --product atelier-fuzz
         -Xswiftc -sanitize=fuzzer -Xswiftc -parse-as-library -Xswiftc -DATELIER_LIBFUZZER)
  # SwiftPM links executables with `--defsym main=atelier_fuzz_main`, which collides with libFuzzer's
  # own main; when its link fails, rerun SwiftPM's link command without that flag. (The binary's
  # path is taken from that command: `--show-bin-path` with these flags makes the next build
  # start from scratch.)
  buildlog=$(mktemp /tmp/atelier-fuzz-build.XXXXXX.log)
  echo "fuzz: building atelier-fuzz with -sanitize=fuzzer in .build/fuzz (the first build takes a while)"
  if ! "${build[@]}" -v >"$buildlog" 2>&1; then
    link=$(grep -E 'swiftc .*-emit-executable .*atelier-fuzz' "$buildlog" | tail -1 || true)
    if [ -z "$link" ]; then tail -30 "$buildlog"; echo "fuzz: the build failed (log: $buildlog)"; exit 2; fi
    eval "${link/-Xlinker --defsym -Xlinker main=atelier_fuzz_main/}" >>"$buildlog" 2>&1 \
      || { tail -20 "$buildlog"; echo "fuzz: the link failed (log: $buildlog)"; exit 2; }
  fi
  BIN=$(find .build/fuzz -path '*/release/atelier-fuzz' -type f -perm -u+x | head -1)
  [ -n "$BIN" ] || { echo "fuzz: no atelier-fuzz was built (log: $buildlog)"; exit 2; }
  rm -f "$buildlog"
fi
max_findings=${FUZZ_MAX_FINDINGS:-10}
summary=()
status=0
for t in "${targets[@]}"; do
  case "$t" in
    protobuf)    runs=${FUZZ_RUNS_PROTOBUF:-1000000};    max_len=4096 ;;
    safetensors) runs=${FUZZ_RUNS_SAFETENSORS:-1000000}; max_len=16384 ;;
    png)         runs=${FUZZ_RUNS_PNG:-100000};          max_len=16384 ;;
    tokenizer)   runs=${FUZZ_RUNS_TOKENIZER:-100000};    max_len=2048 ;;
    *) echo "fuzz: unknown target '$t' (protobuf, safetensors, png, tokenizer)"; exit 2 ;;
  esac
  work=$(mktemp -d /tmp/atelier-fuzz-corpus-$t.XXXXXX)     # the committed corpus is only read
  cp Tests/Fuzz/corpus/$t/* "$work/"
  crashes=Tests/Fuzz/crashes/$t
  mkdir -p "$crashes"
  ls "$crashes" | sort >"$work.before"     # findings of earlier runs (kept, replayed by CI)
  done_runs=0; findings=0; started=$(date +%s)
  while [ "$done_runs" -lt "$runs" ] && [ "$findings" -lt "$max_findings" ]; do
    log=$(mktemp /tmp/atelier-fuzz-$t.XXXXXX.log)
    set +e
    # The Swift runtime's own crash reporter would catch the trap first and libFuzzer would
    # write no reproducer: leave signals to libFuzzer.
    SWIFT_BACKTRACE=enable=no ATELIER_FUZZ_TARGET=$t "$BIN" "$work" -runs=$((runs - done_runs)) -max_len=$max_len -timeout=10 \
      -rss_limit_mb=3072 -artifact_prefix="$crashes/" -print_final_stats=1 >"$log" 2>&1
    rc=$?
    set -e
    n=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
    [ -z "$n" ] && n=$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#' || true)
    done_runs=$((done_runs + ${n:-0}))
    if [ $rc -ne 0 ]; then
      findings=$((findings + 1))
      echo "fuzz: $t: finding after $done_runs executions:"; grep -m4 -E 'ERROR|Fatal error|Test unit written' "$log" || tail -5 "$log"
      cp "$log" "$crashes/finding-$(date +%s).log"     # the libFuzzer report next to the reproducer
      [ "${n:-0}" -eq 0 ] && [ "$findings" -ge 3 ] && break    # it cannot start: stop retrying
    fi
    rm -f "$log"
  done
  seconds=$(( $(date +%s) - started ))
  added=$(ls "$crashes" | sort | comm -13 "$work.before" -)
  new_crashes=$(grep -c -E '^(crash|oom|leak)-' <<<"$added" || true)
  hangs=$(grep -c -E '^(timeout|slow-unit)-' <<<"$added" || true)
  rm -f "$work.before"
  summary+=("$(printf '%-12s %12s %8s %6s %7s' "$t" "$done_runs" "$((new_crashes))" "$hangs" "${seconds}s")")
  [ "$findings" -gt 0 ] && status=1
  rm -rf "$work"
  # libFuzzer exits without running deinitializers: remove the targets' scratch folders
  # (/dev/shm/atelier-fuzz-NAME-PID) of fuzzer processes that are gone.
  for d in /dev/shm/atelier-fuzz-* /tmp/atelier-fuzz-*-[0-9]*; do
    [ -e "$d" ] || continue
    pid=${d##*-}; kill -0 "$pid" 2>/dev/null || rm -rf "$d"
  done
done
echo
printf '%-12s %12s %8s %6s %7s\n' target executions crashes hangs time
printf '%s\n' "${summary[@]}"
echo "(crashes and hangs: reproducers this run added to Tests/Fuzz/crashes/TARGET/)"
exit $status
