#!/usr/bin/env bash
# check_fuzz.sh BUILD_DIR - a short libFuzzer run of fuzz/fuzz_request (fuzz/README.md).
#
# Independent of how BUILD_DIR was configured: it configures its own build in
# BUILD_DIR/fuzz-build with CC=clang -DRX_FUZZ=ON (AddressSanitizer, LeakSanitizer, UBSan),
# builds only fuzz_request, and runs it for $RX_CHECK_FUZZ_SECONDS (default 30) seconds on a
# scratch copy of fuzz/corpus/request (the seeds are never modified), with the dictionary
# fuzz/protocol.dict. Without clang the check
# fails: CI installs it with scripts/install-deps.sh.
#
# Checks: clang found, the harness built, every seed runs clean, the timed run ends without a
# crash, leak or timeout (libFuzzer's exit status 0 and no artifact written). A failure prints
# the tail of libFuzzer's log and the artifact's path (kept, for fuzz/corpus/request/regress-*).
# Ends with "check_fuzz: N passed, M failed" and the executions libFuzzer reports.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"
rx_test_init check_fuzz "${1:-}"
src_dir=$(cd "$here/.." && pwd)
fuzz_build=$build/fuzz-build
seconds=${RX_CHECK_FUZZ_SECONDS:-30}
work=$tmp

finish() {
    rx_test_end
    exit
}

# The work directory goes unless an artifact (a crashing input) is worth keeping.
rx_test_on_exit() {
    if compgen -G "$work/artifacts/*" >/dev/null; then
        rx_test_keep_tmp=1
    fi
}

cc=$(command -v clang || true)
if [ -z "$cc" ]; then
    fail "clang not found (scripts/install-deps.sh installs it)"
    finish
fi
pass

if ! CC=$cc cmake -S "$src_dir" -B "$fuzz_build" -DRX_FUZZ=ON -DRX_BUILD_TESTS=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$work/configure.log" 2>&1 ||
    ! cmake --build "$fuzz_build" --target fuzz_request -j "$(nproc)" >"$work/build.log" 2>&1; then
    { cat "$work/configure.log" "$work/build.log" 2>/dev/null || true; } | tail -40 >&2
    fail "building fuzz_request"
    finish
fi
pass
harness=$fuzz_build/fuzz/fuzz_request

mkdir -p "$work/corpus" "$work/artifacts"
cp "$src_dir"/fuzz/corpus/request/* "$work/corpus/"
n_seeds=$(find "$work/corpus" -type f | wc -l)

# Every seed alone (regress-* inputs included): a fixed bug that comes back fails here first.
if "$harness" -runs=0 -timeout=5 -rss_limit_mb=2048 -artifact_prefix="$work/artifacts/" \
    "$work/corpus" >"$work/seeds.log" 2>&1; then
    pass
else
    tail -40 "$work/seeds.log" >&2
    fail "a seed of fuzz/corpus/request fails"
fi

# The dictionary of protocol.md's names (fuzz/protocol.dict) steers the mutations to real fields.
status=0
"$harness" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 -print_final_stats=1 \
    -dict="$src_dir/fuzz/protocol.dict" \
    -artifact_prefix="$work/artifacts/" "$work/corpus" >"$work/fuzz.log" 2>&1 || status=$?
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/fuzz.log" | tail -1)
rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/fuzz.log" | tail -1)
if [ "$status" -eq 0 ] && ! compgen -G "$work/artifacts/*" >/dev/null; then
    pass
else
    tail -60 "$work/fuzz.log" >&2
    fail "fuzz_request exited $status; artifacts kept in $work/artifacts:" \
        "$(ls "$work/artifacts" 2>/dev/null | tr '\n' ' ')"
fi
echo "check_fuzz: $n_seeds seeds, ${execs:-?} executions in ${seconds} s (${rate:-?}/s)," \
    "corpus grew to $(find "$work/corpus" -type f | wc -l) inputs"
finish
