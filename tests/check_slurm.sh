#!/usr/bin/env bash
# check_slurm.sh BUILD_DIR - rxjobd's Slurm executor against a real one-node Slurm cluster.
#
# Brings the cluster up with scripts/slurm/up.sh (its own directory and port under a temporary
# directory; scripts/slurm/down.sh in the EXIT trap ends exactly what it started), runs
# BUILD_DIR/rxjobd --executor slurm in the foreground, and drives it with BUILD_DIR/rxjob:
#   - daemon status says "executor: slurm";
#   - a job's life: exec, status (QUEUED or RUNNING), wait (FINISHED), output (each task's
#     header and line), results (in task order), then UNDETERMINED;
#   - cancel while pending (the node is full) and while running: CANCELED, the array gone from
#     Slurm, no task process left on the node;
#   - 200 tasks with --num-tasks 4: never more than 4 running at once, by the tasks' own start
#     and end stamps; results in task order;
#   - --timeout 2: the slot says "time limit"; with --stop-on-failure the job is FAILED;
#   - Slurm's own time limit (lowered with scontrol while the task runs): TIMEOUT, "time limit";
#   - 20 tasks, index 13 failing: FAILED with 19 OK (continue_on_failure true), and FAILED with
#     slot 13 EXIT and no task after it OK once stopped (false);
#   - slurmctld restarted while a job runs: the job still FINISHES;
#   - tests/check_cli.sh and tests/check_daemon.sh, the server-context acceptance suites, with
#     RXJOB_TEST_EXECUTOR=slurm;
#   - a finished job that slurmctld forgot (its state wiped) before rxjobd's first poll:
#     FINISHED from the exit records; with the exit records removed as well: FAILED, each slot
#     saying why ("Slurm no longer knows"), never RUNNING.
# Slurm missing or not starting is a failure, not a skip: install it with
# scripts/install-deps.sh (slurm-wlm, munge; root needed).
# shellcheck disable=SC2016 # the tasks' shell code is single-quoted on purpose
set -uo pipefail
export LC_ALL=C

build_dir=${1:?usage: check_slurm.sh BUILD_DIR}
build_dir=$(cd "$build_dir" && pwd)
src_dir=$(cd "$(dirname "$0")/.." && pwd)
rxjob=$build_dir/rxjob
rxjobd=$build_dir/rxjobd
up=$src_dir/scripts/slurm/up.sh
down=$src_dir/scripts/slurm/down.sh
PATH=$PATH:/usr/sbin:/sbin

for prog in "$rxjob" "$rxjobd"; do
    if [[ ! -x $prog ]]; then
        echo "check_slurm: $prog is missing; build first" >&2
        exit 1
    fi
done
for prog in sbatch squeue scancel slurmctld slurmd munged python3; do
    if ! command -v "$prog" >/dev/null; then
        echo "check_slurm: FAIL: $prog is missing: run scripts/install-deps.sh (slurm-wlm, munge)" >&2
        exit 1
    fi
done
if [[ $(id -u) != 0 ]]; then
    echo "check_slurm: FAIL: the one-node cluster needs root (slurmd runs jobs as their users)" >&2
    exit 1
fi

# A short path: a socket's path must fit in 108 bytes. The spool (in the state directory) is
# on the node's own filesystem, which for a one-node cluster is "shared".
tmp=$(mktemp -d /tmp/check_slurm.XXXXXX)
chmod 0755 "$tmp"
sock=$tmp/s.sock
state=$tmp/state
export RXJOB_SLURM_DIR=$tmp/slurm
export RXJOB_SLURM_PORT=$((17000 + ($$ % 400) * 2))
daemon_pid=
started_s=$(date +%s)

alive() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat:0:1} != [ZX] ]]
}

stop_daemon() {
    if [[ -n $daemon_pid ]] && alive "$daemon_pid"; then
        kill "$daemon_pid" 2>/dev/null
        for _ in $(seq 100); do
            alive "$daemon_pid" || break
            sleep 0.1
        done
        alive "$daemon_pid" && kill -9 "$daemon_pid" 2>/dev/null
    fi
    wait "$daemon_pid" 2>/dev/null
    daemon_pid=
}

cleanup() {
    stop_daemon
    "$down" >/dev/null 2>&1
    if [[ ${RXJOB_TEST_KEEP:-0} == 1 ]]; then
        echo "check_slurm: kept $tmp"
    else
        rm -rf -- "$tmp"
    fi
}
trap cleanup EXIT

passed=0
failed=0
failures=()
pass() { passed=$((passed + 1)); }
fail() {
    failed=$((failed + 1))
    printf 'FAIL: %s\n' "$*"
    local msg="$*"
    failures+=("${msg:0:400}")
}

out_file=$tmp/out
err_file=$tmp/err

# run CMD...: at most 180 s; sets rc, out and err.
run() {
    rc=0
    timeout 180 "$@" >"$out_file" 2>"$err_file" || rc=$?
    out=$(cat "$out_file")
    err=$(cat "$err_file")
}
rj() { run "$rxjob" --url "unix:$sock" "$@"; }

expect_rc() { if [[ $rc == "$2" ]]; then pass; else fail "$1: exit status $rc, want $2 ($err)"; fi; }
expect_out() { if [[ $out == "$2" ]]; then pass; else fail "$1: printed '$out', want '$2'"; fi; }
expect_match() { if [[ $3 =~ $2 ]]; then pass; else fail "$1: '$3' does not match /$2/"; fi; }

# json EXPR: a Python expression on the last run's JSON (as d).
json() {
    python3 -c "import json,sys,base64
d = json.load(sys.stdin)
v = ($1)
print(' '.join(map(str, v)) if isinstance(v, tuple) else v)" <"$out_file" 2>&1
}

# Results as "state value-or-error" lines, in slot order.
slots() {
    python3 -c 'import json,sys,base64
d = json.load(sys.stdin)
for s in d["slots"]:
    if s["state"] == "OK":
        print("OK", base64.b64decode(s["value_b64"]).decode().strip())
    else:
        print(s["state"], s.get("error", ""))' <"$out_file"
}

slurm_id_of() { cat "$state/spool/$1/slurm" 2>/dev/null; }

# live ARRAY_ID: the array's tasks that are not over in Slurm.
live() { squeue -h -j "$1" -t pending,running,completing,configuring,suspended -o %i 2>/dev/null; }

# wait_status ID REGEX [TRIES]: poll rxjob status until it matches (0.1 s apart).
wait_status() {
    for _ in $(seq "${3:-300}"); do
        rj status "$1"
        [[ $out =~ $2 ]] && return 0
        sleep 0.1
    done
    return 1
}

start_daemon() {
    "$rxjobd" --foreground --socket "$sock" --state-dir "$state" --executor slurm \
        --slurm-poll-ms 200 >>"$tmp/rxjobd.log" 2>&1 &
    daemon_pid=$!
    for _ in $(seq 200); do
        "$rxjob" --url "unix:$sock" jobs >/dev/null 2>&1 && return 0
        alive "$daemon_pid" || break
        sleep 0.05
    done
    echo "check_slurm: rxjobd did not answer on $sock; its log:" >&2
    sed 's/^/  /' "$tmp/rxjobd.log" >&2
    exit 1
}

# ---------------------------------------------------------------------------------------------
# The cluster and the daemon.
# ---------------------------------------------------------------------------------------------
if ! env_line=$("$up" 2>"$tmp/up.err"); then
    echo "check_slurm: FAIL: scripts/slurm/up.sh could not bring Slurm up:" >&2
    sed 's/^/  /' "$tmp/up.err" >&2
    exit 1
fi
eval "$env_line"
export SLURM_CONF
cpus=$(sinfo -h -o %c | head -n 1)
echo "ok: Slurm up ($SLURM_CONF, $cpus CPUs) in $(($(date +%s) - started_s)) s"

start_daemon
rj daemon status
expect_rc "daemon status" 0
expect_match "daemon status names the executor" 'executor: +slurm' "$out"

# ---------------------------------------------------------------------------------------------
# Slurm's own time limit: started first, checked near the end (Slurm checks limits every 30 s
# and its limits are whole minutes, so this takes 60 to 90 s; the other checks run meanwhile).
# ---------------------------------------------------------------------------------------------
rj exec -- sleep 300
tl_id=$out
tl_lowered=0
if wait_status "$tl_id" '^RUNNING$' 300; then
    if scontrol update JobId="$(slurm_id_of "$tl_id")" TimeLimit=1 >/dev/null 2>&1; then
        tl_lowered=1
    else
        fail "scontrol update TimeLimit=1 of array $(slurm_id_of "$tl_id") failed"
    fi
else
    fail "the time-limit job never ran (status '$out')"
fi

# ---------------------------------------------------------------------------------------------
# A job's life.
# ---------------------------------------------------------------------------------------------
rj exec --times 3 -- sh -c 'echo "hello from task $RXJOB_TASK_INDEX of $RXJOB_TASK_COUNT"; printf "v%s" "$RXJOB_TASK_INDEX" >"$RXJOB_RESULT"'
expect_rc "exec" 0
expect_match "exec prints the id" '^[0-9]+$' "$out"
id=$out
rj status "$id"
expect_match "status right after exec" '^(QUEUED|RUNNING|FINISHED)$' "$out"
rj wait "$id"
expect_out "wait" FINISHED
if [[ -n $(slurm_id_of "$id") ]]; then pass; else fail "job $id has no Slurm array id in its spool"; fi
rj output "$id"
expect_out "output" "==> task 0 <==
hello from task 0 of 3
==> task 1 <==
hello from task 1 of 3
==> task 2 <==
hello from task 2 of 3"
rj --json results "$id"
expect_rc "results" 0
s=$(slots)
if [[ $s == "OK v0
OK v1
OK v2" ]]; then pass; else fail "results in task order: '$s'"; fi
rj status "$id"
expect_rc "status after results" 5
expect_out "status after results" UNDETERMINED

# ---------------------------------------------------------------------------------------------
# Cancel while pending: a plain Slurm job fills the node first.
# ---------------------------------------------------------------------------------------------
blocker=$(sbatch --parsable -n "$cpus" -o /dev/null --wrap 'sleep 300' 2>/dev/null)
for _ in $(seq 100); do
    [[ $(squeue -h -j "$blocker" -o %T 2>/dev/null) == RUNNING ]] && break
    sleep 0.1
done
rj exec --times 3 -- sh -c 'echo ran >"$RXJOB_RESULT"'
pend_id=$out
sleep 1
rj status "$pend_id"
expect_out "status of a job that cannot start" QUEUED
pend_arr=$(slurm_id_of "$pend_id")
expect_match "its array was submitted" '^[0-9]+$' "$pend_arr"
expect_match "it is pending in Slurm" 'PENDING' "$(squeue -h -j "$pend_arr" -o %T 2>/dev/null)"
rj cancel "$pend_id"
expect_rc "cancel while pending" 0
expect_out "cancel while pending" CANCELED
if [[ -z $(live "$pend_arr") ]]; then pass; else fail "array $pend_arr still in Slurm after cancel"; fi
scancel "$blocker" 2>/dev/null

# ---------------------------------------------------------------------------------------------
# Cancel while running.
# ---------------------------------------------------------------------------------------------
marker="97.$$"
rj exec --times 3 -- sh -c "echo started; exec sleep $marker"
run_id=$out
for _ in $(seq 300); do
    rj output "$run_id"
    [[ $(grep -c '^started$' <<<"$out") == 3 ]] && break
    sleep 0.1
done
if wait_status "$run_id" '^RUNNING$' 50; then pass; else fail "status with tasks running: '$out'"; fi
run_arr=$(slurm_id_of "$run_id")
rj cancel "$run_id"
expect_rc "cancel while running" 0
expect_out "cancel while running" CANCELED
if pgrep -f "sleep $marker" >/dev/null; then
    fail "a task process is left after cancel: $(pgrep -af "sleep $marker" | head -n 3)"
else
    pass
fi
if [[ -z $(live "$run_arr") ]]; then pass; else fail "array $run_arr still in Slurm after cancel"; fi

# ---------------------------------------------------------------------------------------------
# 200 tasks, at most 4 at once (runs in the background while the next checks go on).
# ---------------------------------------------------------------------------------------------
rj exec --times 200 --num-tasks 4 -- sh -c 'a=$(date +%s.%N); sleep 0.05; b=$(date +%s.%N); echo "$RXJOB_TASK_INDEX $a $b" >"$RXJOB_RESULT"'
big_id=$out

# ---------------------------------------------------------------------------------------------
# Our time limit, with --stop-on-failure.
# ---------------------------------------------------------------------------------------------
rj exec --times 2 --timeout 2 --stop-on-failure -- sleep 30
to_id=$out
rj wait "$to_id"
expect_out "a job whose tasks hit the time limit" FAILED
rj --json results "$to_id"
# Slurm starts an array's tasks in any order: the one that reaches its limit first is TIMEOUT and
# stops the job; the other is TIMEOUT too, or STOPPED when the stop came first.
to_slots=$(slots)
expect_match "a slot says time limit" '^TIMEOUT .*time limit' "$(grep '^TIMEOUT' <<<"$to_slots" | head -n 1)"
if [[ $(grep -cE '^(TIMEOUT .*time limit|STOPPED .*stopped)' <<<"$to_slots") == 2 ]]; then
    pass
else
    fail "the other slot is neither TIMEOUT nor STOPPED: $to_slots"
fi

# ---------------------------------------------------------------------------------------------
# 20 tasks, task 13 fails: continue_on_failure true, then false.
# ---------------------------------------------------------------------------------------------
fail13='if [ "$RXJOB_TASK_INDEX" = 13 ]; then exit 3; fi; sleep 0.2; echo ok >"$RXJOB_RESULT"'
rj exec --times 20 --num-tasks 4 -- sh -c "$fail13"
cof_id=$out
rj exec --times 20 --num-tasks 4 --stop-on-failure -- sh -c "$fail13"
stop_id=$out
rj wait "$cof_id"
expect_out "index 13 fails, continue_on_failure true" FAILED
rj --json results "$cof_id"
s=$(slots)
n_ok=$(grep -c '^OK ok$' <<<"$s")
if [[ $n_ok == 19 ]]; then pass; else fail "continue_on_failure true: $n_ok OK, want 19"; fi
expect_match "continue_on_failure true: slot 13" '^EXIT exit status 3$' "$(sed -n 14p <<<"$s")"
rj wait "$stop_id"
expect_out "index 13 fails, continue_on_failure false" FAILED
rj --json results "$stop_id"
s=$(slots)
expect_match "continue_on_failure false: slot 13" '^EXIT exit status 3$' "$(sed -n 14p <<<"$s")"
# Tasks 0..12 may all have ended (%4 and in order); after the stop, none after 13 still starts.
expect_match "continue_on_failure false: later slots stopped or not run" \
    '^((OK ok|STOPPED .*task 13 failed.*|NOT_RUN .*task 13 failed.*)
?)+$' "$(sed -n '15,$p' <<<"$s")"
if [[ $(sed -n '15,$p' <<<"$s" | grep -c '^NOT_RUN') -ge 1 ]]; then
    pass
else
    fail "continue_on_failure false: no task after 13 was left unrun: $(tr '\n' '|' <<<"$s")"
fi

# ---------------------------------------------------------------------------------------------
# slurmctld restarted while a job runs.
# ---------------------------------------------------------------------------------------------
rj exec --times 6 --num-tasks 2 -- sh -c 'sleep 1; echo done >"$RXJOB_RESULT"'
rs_id=$out
wait_status "$rs_id" '^RUNNING$' 300 || fail "the restart job never ran"
ctld=$(cat "$RXJOB_SLURM_DIR/slurmctld.pid")
kill "$ctld"
for _ in $(seq 100); do
    kill -0 "$ctld" 2>/dev/null || break
    sleep 0.1
done
sleep 1
if slurmctld -f "$SLURM_CONF" 2>>"$tmp/restart.err"; then pass; else fail "slurmctld did not start again"; fi
rj wait "$rs_id"
expect_out "a job across a slurmctld restart" FINISHED
rj --json results "$rs_id"
if [[ $(slots | grep -c '^OK done$') == 6 ]]; then
    pass
else
    fail "across the restart: $(slots | tr '\n' '|')"
fi

# ---------------------------------------------------------------------------------------------
# The 200-task job.
# ---------------------------------------------------------------------------------------------
rj wait "$big_id"
expect_out "200 tasks, --num-tasks 4" FINISHED
rj --json results "$big_id"
if python3 - "$out_file" <<'EOF'; then
import base64, json, sys
d = json.load(open(sys.argv[1]))
spans, bad = [], []
for i, s in enumerate(d["slots"]):
    if s["state"] != "OK":
        bad.append("slot %d %s" % (i, s["state"]))
        continue
    idx, a, b = base64.b64decode(s["value_b64"]).decode().split()
    if int(idx) != i:
        bad.append("slot %d holds task %s" % (i, idx))
    spans.append((float(a), float(b)))
events = sorted([(a, 1) for a, b in spans] + [(b, -1) for a, b in spans], key=lambda e: (e[0], e[1]))
most = cur = 0
for t, k in events:
    cur += k
    most = max(most, cur)
print("most at once: %d of %d tasks" % (most, len(spans)), file=sys.stderr)
if len(d["slots"]) != 200 or bad or most > 4 or most < 2:
    print("FAIL: 200 tasks: %d slots, most at once %d, %s" % (len(d["slots"]), most, bad[:5]))
    sys.exit(1)
EOF
    pass
else
    fail "200 tasks: see above"
fi

# ---------------------------------------------------------------------------------------------
# The server-context acceptance suites of the local executor, on this one (one suite each,
# parametrized by RXJOB_TEST_EXECUTOR; check_recovery.sh, the local-only crash test, is not).
# ---------------------------------------------------------------------------------------------
for suite in check_cli check_daemon; do
    if RXJOB_TEST_EXECUTOR=slurm bash "$src_dir/tests/$suite.sh" "$build_dir" >"$tmp/$suite.out" 2>&1; then
        pass
        echo "ok: $(tail -n 1 "$tmp/$suite.out") (executor slurm)"
    else
        fail "$suite.sh on the Slurm executor:"
        grep -E '^(FAIL|check_)' "$tmp/$suite.out" | head -n 20 | sed 's/^/  /'
    fi
done

# ---------------------------------------------------------------------------------------------
# Slurm's own time limit: now over.
# ---------------------------------------------------------------------------------------------
if ((tl_lowered)); then
    rj wait "$tl_id"
    expect_out "Slurm's time limit" FAILED
    rj --json results "$tl_id"
    expect_match "its slot says time limit" '^TIMEOUT .*time limit.*TIMEOUT' "$(slots)"
fi

# ---------------------------------------------------------------------------------------------
# Forgotten by slurmctld before rxjobd's first poll.
# ---------------------------------------------------------------------------------------------
rj exec --times 3 -- sh -c 'printf "r%s" "$RXJOB_TASK_INDEX" >"$RXJOB_RESULT"'
fg_id=$out
rj exec --times 2 -- sh -c 'true'
gone_id=$out
for _ in $(seq 100); do
    [[ -n $(slurm_id_of "$fg_id") && -n $(slurm_id_of "$gone_id") ]] && break
    sleep 0.1
done
stop_daemon
for arr in $(slurm_id_of "$fg_id") $(slurm_id_of "$gone_id"); do
    scontrol release "$arr" >/dev/null 2>&1 # in case rxjobd stopped before it did
    for _ in $(seq 300); do
        [[ -z $(live "$arr") ]] && break
        sleep 0.1
    done
done
if ls "$state/spool/$fg_id"/t*.exit >/dev/null 2>&1; then
    pass
else
    fail "no exit records for job $fg_id"
fi
rm -f "$state/spool/$gone_id"/t*.exit
# Wipe slurmctld's memory: down.sh removes its state, up.sh starts it afresh (job ids restart).
"$down" >/dev/null 2>&1
if ! "$up" >/dev/null 2>"$tmp/up2.err"; then
    fail "Slurm did not come up again: $(cat "$tmp/up2.err")"
fi
start_daemon
rj wait "$fg_id"
expect_out "a job slurmctld forgot, from its exit records" FINISHED
rj --json results "$fg_id"
if [[ $(slots | tr '\n' ' ') == "OK r0 OK r1 OK r2 " ]]; then
    pass
else
    fail "forgotten job: $(slots | tr '\n' '|')"
fi
rj wait "$gone_id"
expect_out "forgotten, no exit records" FAILED
rj --json results "$gone_id"
expect_match "its slots say why" '^LOST .*no longer knows' "$(slots | head -n 1)"

if ((failed > 0)); then
    echo "check_slurm: the failed checks again (CI shows a log's head and tail only):"
    printf '  FAIL: %s\n' "${failures[@]}"
fi
echo "check_slurm: $passed passed, $failed failed in $(($(date +%s) - started_s)) s"
if ((failed > 0)); then
    echo "check_slurm: rxjobd's log:"
    tail -n 20 "$tmp/rxjobd.log" | sed 's/^/  /'
    exit 1
fi
