#!/usr/bin/env bash
# check_recovery.sh - rxjobd crash recovery and resource hygiene, against a real daemon.
#
#  1. kill -9 the daemon with 2 tasks running and 5 jobs queued (--slots 2), start it again:
#     the 5 queued jobs run, the 2 running tasks are adopted (their exit status captured) or
#     failed as lost, and no task runs twice (each task appends its own marker once).
#  2. 1 000 tasks through the daemon leave no zombie child and no extra open fd in it.
#  3. A supervisor adopted after a kill -9 of the daemon is killed (as a task that kills its
#     supervisor does): the job fails as lost and its task and the task's child are killed,
#     also while the dead supervisor is a zombie nobody reaped (it still holds its pid).
#
# Usage: bash tests/check_recovery.sh BUILD_DIR
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"
rx_test_init check_recovery "${1:-}"
# Tasks of this test run under shims in their own sessions: end what is left of them.
rx_test_on_exit() {
    for pid in $(cat "$tmp"/pids.* 2>/dev/null); do
        kill -KILL "$pid" 2>/dev/null || true
    done
}

start_daemon() { rx_start_daemon --slots 2 || exit 1; }

# --- 1. kill -9 with 2 running and 5 queued --------------------------------------------------
start_daemon
ids=()
for j in 1 2 3 4 5 6 7; do
    # Each task records its pid (for cleanup) and a start marker, sleeps, then finishes.
    ids+=("$(rx exec -- sh -c "echo \$\$ > '$tmp/pids.$j'; echo start >> '$tmp/marker.$j'; sleep 2")")
done
for _ in $(seq 1 100); do
    running=$(ls "$tmp"/marker.* 2>/dev/null | wc -l)
    [ "$running" -ge 2 ] && break
    sleep 0.05
done
if [ "$running" -eq 2 ]; then ok "2 tasks running before the crash"; else bad "$running tasks running before the crash (want 2)"; fi
kill -KILL "$daemon_pid"
wait "$daemon_pid" 2>/dev/null || true
daemon_pid=""
sleep 0.2
start_daemon
for id in "${ids[@]}"; do
    rx wait "$id" --timeout 60 >/dev/null 2>&1 || true
done
finished=0
lost=0
for i in "${!ids[@]}"; do
    id=${ids[$i]}
    j=$((i + 1))
    st=$(rx status "$id" || true)
    starts=$(wc -l < "$tmp/marker.$j" 2>/dev/null || echo 0)
    if [ "$starts" -ne 1 ]; then
        bad "job $id: its task started $starts times (want exactly 1)"
    fi
    case "$st" in
    FINISHED) finished=$((finished + 1)) ;;
    FAILED)
        if rx results "$id" --keep 2>&1 | grep -q "lost"; then
            lost=$((lost + 1))
        else
            bad "job $id FAILED for another reason than lost"
        fi
        ;;
    *) bad "job $id ended $st" ;;
    esac
done
if [ $((finished + lost)) -eq 7 ] && [ "$finished" -ge 5 ]; then
    ok "after restart: $finished FINISHED (adopted or queued), $lost lost; none ran twice"
else
    bad "after restart: $finished FINISHED, $lost lost of 7"
fi

# --- 2. 1 000 tasks: no zombie, no extra fd in the daemon ---------------------------------------
fds_before=$(ls "/proc/$daemon_pid/fd" | wc -l)
id=$(rx exec --times 1000 --num-tasks 2 -- true)
if rx wait "$id" --timeout 300 >/dev/null && [ "$(rx status "$id" || true)" = FINISHED ]; then
    ok "1000 true tasks FINISHED"
else
    bad "1000 true tasks did not finish"
fi
rx results "$id" >/dev/null 2>&1 || true
# Collecting with auto-cleanup removes the job's 1000-task spool after the answer, which takes
# seconds on a loaded machine (the request's thread and connection live until then): poll.
for _ in $(seq 100); do
    fds_after=$(ls "/proc/$daemon_pid/fd" | wc -l)
    [ "$fds_after" -le "$fds_before" ] && break
    sleep 0.1
done
zombies=$(ps --ppid "$daemon_pid" -o stat= 2>/dev/null | grep -c '^Z' || true)
if [ "$zombies" -eq 0 ]; then ok "no zombie children of rxjobd"; else bad "$zombies zombie children of rxjobd"; fi
if [ "$fds_after" -le "$fds_before" ]; then
    ok "no extra fd in rxjobd ($fds_before before, $fds_after after)"
else
    bad "rxjobd has $fds_after fds after, $fds_before before"
    ls -l "/proc/$daemon_pid/fd"
fi

# --- 3. an adopted supervisor dies: its orphans are killed even while it is a zombie -----------
id=$(rx exec -- sh -c "sleep 300 & echo \$! > '$tmp/pids.child'; echo \$\$ > '$tmp/pids.task'; wait")
for _ in $(seq 1 200); do
    [ -s "$tmp/pids.child" ] && [ -s "$tmp/pids.task" ] && break
    sleep 0.05
done
task=$(cat "$tmp/pids.task")
child=$(cat "$tmp/pids.child")
shim=$(awk '{print $4}' "/proc/$task/stat")
kill -KILL "$daemon_pid"
wait "$daemon_pid" 2>/dev/null || true
daemon_pid=""
start_daemon
grep -q "adopted task 0 of job $id" "$tmp/rxjobd.log" || bad "the task's supervisor was not adopted"
# The supervisor's parent is gone: init (or a subreaper) reaps it, or here, as PID 1 does not
# reap, nobody does and it stays a zombie that keeps its pid.
kill -KILL "$shim"
st=$(rx wait "$id" --timeout 30 2>/dev/null || true)
for _ in $(seq 1 100); do
    rx_alive "$task" || rx_alive "$child" || break
    sleep 0.05
done
if [ "$st" = FAILED ] && ! rx_alive "$task" && ! rx_alive "$child"; then
    ok "an adopted supervisor killed: job FAILED (lost), its task and the task's child killed"
else
    bad "adopted supervisor killed: job $st, task alive: $(rx_alive "$task" && echo yes || echo no), child alive: $(rx_alive "$child" && echo yes || echo no) (supervisor state $(awk '{print $3}' "/proc/$shim/stat" 2>/dev/null))"
fi

rx_test_end
