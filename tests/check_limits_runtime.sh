#!/usr/bin/env bash
# check_limits_runtime.sh - the run-time limits enforced by the task supervisor (rxjob-shim),
# against a real daemon started with `--limit output_bytes=1M --limit result_bytes=1K`:
#
#  1. a task writing 50 MB keeps 1 MiB of it plus one marker line; it FINISHED (the cut does not
#     fail it), and `rxjob output` shows the marker;
#  2. a task stuck writing past the cap is still stopped by its time limit (TIMEOUT);
#  3. a result over result_bytes fails its task with a message naming the limit;
#  4. a task that exits leaving a writer of its output in a session of its own (out of reach of
#     the supervisor's group kill) still ends: the supervisor stops draining the pipe a bounded
#     time after the task ended, so the job is not held RUNNING (and uncancelable) forever;
#  5. a task that kills its supervisor and leaves an exit record saying it was never started
#     ("go 0") is not believed (the daemon told it to start): the task is LOST and runs once,
#     not again and again, hundreds of times a second, past its time limit.
#
# Usage: bash tests/check_limits_runtime.sh BUILD_DIR
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"
rx_test_init check_limits_runtime "${1:-}"
# A writer that escaped its task (test 4) is ended here whatever happens.
rx_test_on_exit() {
    [ -s "$tmp/writer.pid" ] && kill -KILL "$(cat "$tmp/writer.pid")" 2>/dev/null || true
}

rx_start_daemon --slots 2 --limit output_bytes=1M --limit result_bytes=1K

# 1. 50 MB of output, cap 1 MiB.
marker="[rxjob: output cut at 1048576 bytes: output_bytes limit; 48951424 bytes discarded]"
id=$(rx exec --no-auto-cleanup -- head -c 50000000 /dev/zero)
st=$(rx wait "$id" --timeout 120 || true)
if [ "$st" = FINISHED ]; then ok "50 MB of output under a 1 MiB cap: FINISHED"; else bad "50 MB job ended $st"; fi
out="$state/spool/$id/t0.out"
size=$(stat -c %s "$out" 2>/dev/null || echo 0)
want=$((1048576 + ${#marker} + 2))
if [ "$size" -eq "$want" ]; then
    ok "t0.out is 1 MiB plus the marker line ($size bytes)"
else
    bad "t0.out is $size bytes, want $want"
fi
if tail -c $((${#marker} + 1)) "$out" | grep -qxF "$marker"; then
    ok "t0.out ends with the marker"
else
    bad "no marker at the end of t0.out: $(tail -c 120 "$out" | tr '\0' '.')"
fi
if rx output "$id" 2>/dev/null | tail -c 200 | tr -d '\0' | grep -qF "$marker"; then
    ok "rxjob output shows the marker"
else
    bad "rxjob output does not show the marker"
fi

# 2. A task writing without end past the cap: its time limit still fires.
start=$(date +%s)
id=$(rx exec --no-auto-cleanup --timeout 1 -- yes rxjob)
st=$(rx wait "$id" --timeout 60 || true)
took=$(($(date +%s) - start))
msg=$(rx --json results "$id" 2>/dev/null || true)
if [ "$st" = FAILED ] && grep -q 'TIMEOUT' <<<"$msg" && [ "$took" -lt 30 ]; then
    ok "a task stuck writing past the cap times out ($took s)"
else
    bad "stuck writer: status $st after $took s; results: ${msg:0:300}"
fi

# 3. A result over result_bytes (1 KiB).
id=$(rx exec -- sh -c 'head -c 2000 /dev/zero > "$RXJOB_RESULT"')
st=$(rx wait "$id" --timeout 60 || true)
msg=$(rx --json results "$id" 2>/dev/null || true)
if [ "$st" = FAILED ] && grep -qF 'result of 2000 bytes is over the result_bytes limit of 1024 bytes' <<<"$msg"; then
    ok "a result over result_bytes fails its task, naming the limit"
else
    bad "result over the limit: status $st; results: ${msg:0:300}"
fi

# 4. The task exits, its output pipe held by a process in another session that writes forever.
start=$(date +%s)
id=$(rx exec --no-auto-cleanup -- sh -c \
    'setsid sh -c "echo \$\$ > $0; while :; do echo x; sleep 0.05; done" & sleep 1; exit 0' \
    "$tmp/writer.pid")
st=$(rx wait "$id" --timeout 60 || true)
took=$(($(date +%s) - start))
if [ "$st" = FINISHED ] && [ "$took" -lt 30 ]; then
    ok "a task whose escaped child keeps writing its output still ends ($took s)"
else
    bad "escaped writer: status $st after $took s"
    rx cancel "$id" >/dev/null 2>&1 || true
fi
[ -s "$tmp/writer.pid" ] && kill -KILL "$(cat "$tmp/writer.pid")" 2>/dev/null || true

# 5. A forged "never started" record.
: >"$tmp/runs"
id=$(rx exec --no-auto-cleanup --timeout 30 -- sh -c \
    'echo run >>"$0"; printf "rxjob-exit 1\ngo 0\nstate OK\nexit_status 0\nsignal 0\ntask_pid 0\nstarted_s 0\nended_s 0\nerror 0\n" >"$(dirname "$RXJOB_RESULT")/t0.exit"; kill -KILL "$PPID"' \
    "$tmp/runs")
st=$(rx wait "$id" --timeout 10 || true)
runs=$(wc -l <"$tmp/runs")
msg=$(rx --json results "$id" 2>/dev/null || true)
if [ "$st" = FAILED ] && [ "$runs" -eq 1 ] && grep -q 'was never started, but' <<<"$msg"; then
    ok "a forged go-0 record: the task is LOST and ran once"
else
    bad "forged go-0 record: status $st, ran $runs times; results: ${msg:0:300}"
    rx cancel "$id" >/dev/null 2>&1 || true
fi

rx_test_end
