#!/usr/bin/env bash
# Builds the fuzz harnesses and runs each for SECONDS (default 60) on a scratch copy of its
# seed corpus, so the corpus in tests/ changes only when someone adds a seed on purpose.
#
# Usage: tests/fuzz/run.sh [SECONDS]
#
# Prints a line per fuzzer and, last, "fuzz: P passed, F failed" (which .ci/run reads).
# Exits non-zero when any fuzzer failed. A crashing input is kept in
# build-fuzz/artifacts/NAME/ and its path printed; replay it with `build-fuzz/NAME FILE`,
# then add it to tests/fuzz/corpus/NAME/ as a regression seed once fixed.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
seconds=${1:-60}
out=$root/build-fuzz
fuzzers=(fuzz_links fuzz_url fuzz_input fuzz_robots fuzz_savepath fuzz_targets)

if ! bash "$root/tests/fuzz/build.sh" "$out"; then
    echo "fuzz: build failed"
    echo "fuzz: 0 passed, ${#fuzzers[@]} failed"
    exit 1
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

passed=0
failed=0
for name in "${fuzzers[@]}"; do
    corpus=$scratch/$name
    artifacts=$out/artifacts/$name
    log=$out/$name.log
    mkdir -p "$corpus" "$artifacts"
    cp "$root/tests/fuzz/corpus/${name#fuzz_}/"* "$corpus/"
    rm -f "$artifacts"/*

    echo "== $name for ${seconds}s (log: $log)"
    rc=0
    "$out/$name" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus" >"$log" 2>&1 || rc=$?

    # The last status line says how far it got: executions, coverage, corpus.
    grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$log" | tail -n 1 || true
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" || true
    if [ "$rc" -eq 0 ]; then
        echo "PASS $name"
        passed=$((passed + 1))
    else
        # The report: the sanitizer's or the harness's message and the stack.
        grep -n -E 'ERROR: |runtime error|invariant broken|SUMMARY' "$log" | head -n 20 || true
        tail -n 40 "$log"
        crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
        echo "FAIL $name (exit $rc)${crash:+: input saved as $crash}"
        failed=$((failed + 1))
    fi
done

echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
