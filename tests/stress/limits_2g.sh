#!/usr/bin/env bash
# limits_2g.sh - a task writing 2 GiB to stdout, against a real daemon (not in ctest: it writes
# 2 GiB to disk and takes tens of seconds on a loaded machine).
#
#  1. No output cap: the task writes straight to t0.out; rxjobd's VmRSS must grow less than
#     50 MB, and `rxjob output` of another small job must keep answering meanwhile (its times
#     are printed; each must be under 2 s).
#  2. With `--limit output_bytes=1M` (when rxjobd has --limit): the output is cut at 1 MiB with
#     the marker line, the task FINISHED.
#
# Usage: bash tests/stress/limits_2g.sh BUILD_DIR
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/../lib.sh"
rx_test_init limits_2g "${1:-}"
ms() { echo $(($(date +%s%N) / 1000000)); }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$daemon_pid/status"; }

start_daemon() { # NAME [OPTIONS...]
    sock="$tmp/$1.sock"
    state="$tmp/$1-state"
    shift
    "$rxjobd" --foreground --socket "$sock" --state-dir "$state" --slots 2 "$@" \
        2>>"$tmp/rxjobd.log" &
    daemon_pid=$!
    for _ in $(seq 1 200); do
        rx jobs >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "rxjobd did not answer"
    cat "$tmp/rxjobd.log"
    exit 1
}

stop_daemon() {
    kill -TERM "$daemon_pid"
    wait "$daemon_pid" || true
    daemon_pid=""
}

# 1. No cap.
start_daemon nocap
small=$(rx exec --no-auto-cleanup -- echo small)
rx wait "$small" --timeout 60 >/dev/null
rss0=$(rss_kb)
t0=$(ms)
big=$(rx exec --no-auto-cleanup -- head -c 2G /dev/zero)
rss_max=$rss0
lat=()
while :; do
    st=$(rx status "$big")
    a=$(ms)
    got=$(rx output "$small" 2>/dev/null || true)
    b=$(ms)
    lat+=($((b - a)))
    [[ $got == *small* ]] || bad "rxjob output of the small job said: $got"
    r=$(rss_kb)
    ((r > rss_max)) && rss_max=$r
    [[ $st == RUNNING || $st == QUEUED ]] || break
    sleep 0.2
done
t1=$(ms)
size=$(stat -c %s "$state/spool/$big/t0.out")
sorted=$(printf '%s\n' "${lat[@]}" | sort -n)
n=${#lat[@]}
p50=$(sed -n "$(((n + 1) / 2))p" <<<"$sorted")
max=$(tail -1 <<<"$sorted")
echo "no cap: 2 GiB task $st in $((t1 - t0)) ms; t0.out $size bytes"
echo "no cap: rxjobd VmRSS $rss0 kB before, $rss_max kB at most (+$(((rss_max - rss0) / 1024)) MB)"
echo "no cap: rxjob output of a small job meanwhile: $n calls, p50 $p50 ms, max $max ms"
[ "$st" = FINISHED ] || bad "the 2 GiB task ended $st"
[ "$size" -eq $((2 * 1024 * 1024 * 1024)) ] || bad "t0.out is $size bytes, want 2 GiB"
((rss_max - rss0 < 50 * 1024)) || bad "rxjobd grew by $(((rss_max - rss0) / 1024)) MB"
((max < 2000)) || bad "rxjob output took $max ms"
rx cleanup "$big" >/dev/null 2>&1 || true
stop_daemon

# 2. Cap of 1 MiB.
if "$rxjobd" --help 2>&1 | grep -q -- '--limit'; then
    start_daemon cap --limit output_bytes=1M
    t0=$(ms)
    big=$(rx exec --no-auto-cleanup -- head -c 2G /dev/zero)
    st=$(rx wait "$big" --timeout 600 || true)
    t1=$(ms)
    out="$state/spool/$big/t0.out"
    size=$(stat -c %s "$out")
    marker="[rxjob: output cut at 1048576 bytes: output_bytes limit; 2146435072 bytes discarded]"
    echo "cap 1 MiB: 2 GiB task $st in $((t1 - t0)) ms; t0.out $size bytes"
    [ "$st" = FINISHED ] || bad "the capped 2 GiB task ended $st"
    tail -c $((${#marker} + 1)) "$out" | grep -qxF "$marker" || bad "no marker in the capped t0.out"
    [ "$size" -eq $((1048576 + ${#marker} + 2)) ] || bad "capped t0.out is $size bytes"
    stop_daemon
else
    echo "cap: skipped (this rxjobd has no --limit option)"
fi
echo "limits_2g: $failed failed"
[ "$failed" -eq 0 ]
