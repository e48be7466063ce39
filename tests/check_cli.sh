#!/usr/bin/env bash
# check_cli.sh BUILD_DIR - end-to-end check of the rxjob command line against a real rxjobd.
#
# Starts BUILD_DIR/rxjobd in the foreground on a socket and state directory in a temporary
# directory, waits until it answers, then drives BUILD_DIR/rxjob --url unix:SOCKET through a
# job's life as docs/rxjob.1 describes it:
#   - exec prints an id; status right after is QUEUED or RUNNING; wait says FINISHED; output
#     reads the same twice; results gives the value; the job is then UNDETERMINED (exit 5) and
#     its output empty with exit 5; status, wait and output of an unknown, collected or
#     cleaned-up job say "no such job" in one line on stderr (status and wait keep stdout the
#     status alone; --json adds nothing on stderr); a canceled job's empty output exits 0;
#   - --no-auto-cleanup: results twice, listed by jobs (and filtered by --state, --since),
#     cleanup keeps it with a warning naming 'rxjob results ID' and 'rxjob cleanup --force ID'
#     (exit 0; so does a RUNNING job, naming --force), cleanup --force
#     removes it;
#   - results of a running job exits 7 at once and deletes nothing; cancel of a running job
#     prints CANCELED and leaves no task process; a canceled job reads CANCELED (exit 4);
#   - --stop-on-failure with --elems-from FILE (tasks after the failure never run), and the
#     default (every task runs) with --elems-from -; --elem with "{}"; --times; per-task
#     --timeout; --console-output; output --follow; wait --timeout (exit 6);
#   - usage errors exit 2 with a message that names the options typed (--times, --elem,
#     --elems-from, never the C API's times_to_run or elem_args); a malformed --url or
#     RXJOB_URL exits 2 with one line naming it and the forms it takes; a token file that cannot
#     be used (empty, junk, a directory, missing) exits 8 with one line naming --token-file or
#     RXJOB_TOKEN_FILE and what is wrong; an unreachable daemon exits 3; every --json output
#     parses as JSON;
#   - rxjob does not link libcurl or libcrypto (readelf), --version never loads them, and a
#     command that talks to rxjobd loads libcurl (LD_DEBUG);
#   - the embedded default: with RXJOB_SOCKET and RXJOB_STATE_DIR in the temporary directory and
#     RXJOB_DAEMON=BUILD_DIR/rxjobd, "rxjob exec -- true" starts the daemon, "rxjob daemon
#     status" describes it, "rxjob daemon stop" stops it; a daemon program that never serves
#     makes exec exit 3 with what it wrote on stderr, even while a child of it still holds
#     that stderr open.
# Every check counts once; failures are printed; the script ends with
# "check_cli: N passed, M failed" and exits non-zero if M > 0. It kills only the daemons it
# started (by pid, in an EXIT trap) and removes its temporary directory.
# shellcheck disable=SC2016 # the tasks' shell code is single-quoted on purpose
set -uo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"
rx_test_init check_cli "${1:-}"
rx_need "$rxjob" "$rxjobd" python3 readelf # python3 checks the JSON output
embedded_pid=
rx_test_on_exit() { rx_stop "$embedded_pid"; }
# A failed check shows what the command it ran wrote on stderr.
rx_test_on_fail() {
    if [[ -n ${err_file:-} && -s $err_file ]]; then
        sed 's/^/  stderr: /' "$err_file" | head -n 5
    fi
}

out_file=$tmp/out
err_file=$tmp/err
nl=$'\n'
# What status, wait and output say on stderr of a job that is unknown or gone (exit 5).
no_such_job='no such job: collected \(with auto-cleanup\), cleaned up, or never submitted \(UNDETERMINED\)$'

# run CMD...: run CMD (at most 120 s) with stdout in $out_file and stderr in $err_file; sets rc,
# out and err (without trailing newlines).
run() {
    rc=0
    timeout 120 "$@" >"$out_file" 2>"$err_file" || rc=$?
    out=$(cat "$out_file")
    err=$(cat "$err_file")
}

# rj ARGS...: rxjob on the test daemon, through run.
rj() {
    run "$rxjob" --url "unix:$sock" "$@"
}

# expect_rc NAME WANT: the last run's exit status.
expect_rc() {
    if [[ $rc == "$2" ]]; then pass; else fail "$1: exit status $rc, want $2"; fi
}

# expect_out NAME WANT: the last run's stdout (without trailing newlines).
expect_out() {
    if [[ $out == "$2" ]]; then pass; else fail "$1: printed '$out', want '$2'"; fi
}

# expect_match NAME REGEX TEXT
expect_match() {
    if [[ $3 =~ $2 ]]; then pass; else fail "$1: '$3' does not match /$2/"; fi
}

# expect_no_match NAME REGEX TEXT
expect_no_match() {
    if [[ $3 =~ $2 ]]; then fail "$1: '$3' matches /$2/"; else pass; fi
}

# expect_usage NAME ARGS...: exit status 2 and an "rxjob: ..." message on stderr.
expect_usage() {
    local name=$1
    shift
    rj "$@"
    expect_rc "$name" 2
    expect_match "$name: message" '^rxjob: ' "$err"
}

# expect_json NAME: the last run's stdout parses as one JSON document.
expect_json() {
    if python3 -c 'import json,sys; json.load(sys.stdin)' <"$out_file" 2>/dev/null; then
        pass
    else
        fail "$1: not JSON: $(head -c 200 "$out_file")"
    fi
}

# json_get EXPR: evaluate a Python expression on the last run's JSON (as d); prints the value.
# A tuple prints as its items separated by spaces.
json_get() {
    python3 -c "import json,sys,base64
d = json.load(sys.stdin)
v = ($1)
print(' '.join(map(str, v)) if isinstance(v, tuple) else v)" <"$out_file" 2>&1
}

now() {
    date +%s.%N
}

# elapsed START: seconds since START, as a decimal number.
elapsed() {
    awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'
}

# ---------------------------------------------------------------------------------------------
# The daemon.
# ---------------------------------------------------------------------------------------------
# RXJOB_TEST_EXECUTOR=slurm runs the same checks on the Slurm executor (tests/check_slurm.sh).
rx_start_daemon --slots 4 --executor "${RXJOB_TEST_EXECUTOR:-local}" --slurm-poll-ms 200 || exit 1
echo "ok: rxjobd (pid $daemon_pid) answers on $sock"

# ---------------------------------------------------------------------------------------------
# The non-waiting lifecycle: exec, status, wait, output twice, results, UNDETERMINED.
# ---------------------------------------------------------------------------------------------
rj exec -- sh -c 'echo "hello from task $RXJOB_TASK_INDEX"; sleep 1; printf result-value >"$RXJOB_RESULT"'
expect_rc "exec" 0
expect_match "exec prints the id alone" '^[0-9]+$' "$out"
id=$out

rj status "$id"
expect_rc "status right after exec" 0
expect_match "status right after exec" '^(QUEUED|RUNNING)$' "$out"

rj wait "$id"
expect_rc "wait" 0
expect_out "wait" FINISHED

rj output "$id"
expect_rc "output" 0
first_output=$out
expect_match "output has the header" '==> task 0 <==' "$out"
expect_match "output has the task's line" 'hello from task 0' "$out"
rj output "$id"
expect_rc "output again" 0
expect_out "output again is the same" "$first_output"

rj status "$id"
expect_out "status after wait" FINISHED

rj results "$id"
expect_rc "results" 0
if printf 'result-value\n' | cmp -s - "$out_file"; then pass; else fail "results: got '$out'"; fi

rj status "$id"
expect_rc "status after results" 5
expect_out "status after results" UNDETERMINED

# rx_get_job_output gives a gone job's output as empty (revoscalepy); the CLI says why, exit 5.
rj output "$id"
expect_rc "output after results (collected: no such job)" 5
expect_out "output after results is empty" ""
expect_match "output after results: why, in one line" "^rxjob: output $id: $no_such_job" "$err"

rj results "$id"
expect_rc "results again (gone)" 5
expect_match "results again: why, in one line" "^rxjob: results $id: $no_such_job" "$err"
expect_match "results again: one line only" '^[^
]*$' "$err"

# Submitted from a directory that was removed: refused (the task would have run in the
# daemon's directory instead), and no job is made.
gone_dir=$(mktemp -d)
jobs_before=$("$rxjob" --url "unix:$sock" jobs | wc -l)
(cd "$gone_dir" && rmdir "$gone_dir" && rj exec -- sh -c 'pwd; ls'; echo "$rc $err" >"$gone_dir.rc")
read -r rc err <"$gone_dir.rc" || true
rm -f "$gone_dir.rc"
[[ $rc == 2 ]] && pass || fail "exec from a removed directory: exit status $rc, want 2"
expect_match "exec from a removed directory: message" 'current directory .*removed' "$err"
expect_no_match "exec from a removed directory: no C API advice" 'rx_exec|give the work a cwd' "$err"
[[ $("$rxjob" --url "unix:$sock" jobs | wc -l) == "$jobs_before" ]] && pass ||
    fail "exec from a removed directory made a job"

# A never-used id: stdout is the status alone, as scripts read it; stderr says why, in one line.
rj status 987654321
expect_rc "status of an unknown id" 5
expect_out "status of an unknown id" UNDETERMINED
expect_match "status of an unknown id: why, on stderr" "^rxjob: status 987654321: $no_such_job" "$err"
rj wait 987654321
expect_rc "wait on an unknown id" 5
expect_out "wait on an unknown id" UNDETERMINED
expect_match "wait on an unknown id: why, on stderr" "^rxjob: wait 987654321: $no_such_job" "$err"
rj wait --timeout 1 987654321
expect_rc "wait --timeout on an unknown id" 5
expect_match "wait --timeout on an unknown id: why, on stderr" "^rxjob: wait 987654321: $no_such_job" "$err"
rj output 987654321
expect_rc "output of an unknown id" 5
expect_out "output of an unknown id prints nothing on stdout" ""
expect_match "output of an unknown id: why, in one line" "^rxjob: output 987654321: $no_such_job" "$err"
rj --json output 987654321
expect_rc "--json output of an unknown id" 5
expect_out "--json output of an unknown id: no JSON (as results)" ""
expect_match "--json output of an unknown id: why" "^rxjob: output 987654321: $no_such_job" "$err"
rj output --follow 987654321
expect_rc "output --follow of an unknown id" 5
expect_match "output --follow of an unknown id: why" "^rxjob: output 987654321: $no_such_job" "$err"
# With --json the document is the answer: stderr stays empty.
rj --json status 987654321
expect_rc "--json status of an unknown id" 5
expect_match "--json status of an unknown id" '^UNDETERMINED$' "$(json_get 'd["status"]')"
if [[ -z $err ]]; then pass; else fail "--json status of an unknown id wrote on stderr: '$err'"; fi
rj --json wait 987654321
expect_rc "--json wait on an unknown id" 5
if [[ -z $err ]]; then pass; else fail "--json wait on an unknown id wrote on stderr: '$err'"; fi

# ---------------------------------------------------------------------------------------------
# --no-auto-cleanup: results twice, jobs lists it, cleanup warns and keeps, --force removes.
# ---------------------------------------------------------------------------------------------
before=$(date +%s)
rj exec --no-auto-cleanup --times 3 -- sh -c 'printf "v%s" "$RXJOB_TASK_INDEX" >"$RXJOB_RESULT"'
expect_rc "exec --no-auto-cleanup" 0
kid=$out
rj wait "$kid"
expect_out "wait (kept job)" FINISHED
for round in 1 2; do
    rj results "$kid"
    expect_rc "results of the kept job ($round)" 0
    if printf 'v0\nv1\nv2\n' | cmp -s - "$out_file"; then
        pass
    else
        fail "results of the kept job ($round): got '$out'"
    fi
done
rj status "$kid"
expect_out "the kept job stays FINISHED" FINISHED

rj jobs
expect_rc "jobs" 0
expect_match "jobs has a header" '^ID +STATUS +TASKS +CREATED' "$out"
expect_match "jobs lists the kept job" "(^|$nl)$kid +FINISHED +3/3 " "$out"
rj jobs --state finished,failed --since "$before"
expect_match "jobs --state finished --since lists it" "(^|$nl)$kid +FINISHED" "$out"
rj jobs --state canceled
expect_no_match "jobs --state canceled leaves it out" "(^|$nl)$kid " "$out"
rj jobs --since $((before + 100000))
expect_no_match "jobs --since the future leaves it out" "(^|$nl)$kid " "$out"

rj cleanup "$kid"
expect_rc "cleanup of a FINISHED job without --force" 0
expect_match "cleanup warns" 'rxjob: warning: ' "$err"
# In the CLI's words, with the commands to run (not the C API's force and rx_get_job_results).
expect_match "cleanup warns in one line naming the commands" \
    "^rxjob: warning: cleanup: job $kid kept: it is FINISHED, and cleaning it up would delete its results: 'rxjob results $kid' collects them, 'rxjob cleanup --force $kid' deletes them\$" "$err"
expect_match "the warning names --force" '--force' "$err"
expect_match "the warning names results" 'results' "$err"
rj status "$kid"
expect_out "cleanup without --force keeps the job" FINISHED
rj cleanup --force "$kid"
expect_rc "cleanup --force" 0
rj status "$kid"
expect_rc "cleanup --force removes the job" 5
expect_out "cleanup --force removes the job" UNDETERMINED
rj output "$kid"
expect_rc "output of a cleaned-up job" 5
expect_match "output of a cleaned-up job: why" "^rxjob: output $kid: $no_such_job" "$err"

# ---------------------------------------------------------------------------------------------
# A running job: results at once with exit 7, nothing deleted; wait --timeout; cancel.
# ---------------------------------------------------------------------------------------------
marker=$tmp/running-task
rj exec -- sh -c 'sleep 30; : "$1"' sh "$marker"
rid=$out
for _ in $(seq 100); do
    rj status "$rid"
    [[ $out == RUNNING ]] && break
    sleep 0.05
done
expect_out "the long job runs" RUNNING
start=$(now)
rj results "$rid"
expect_rc "results of a running job" 7
expect_match "results of a running job says why" 'rxjob: results [0-9]+: .*finished' "$err"
t=$(elapsed "$start")
if awk -v t="$t" 'BEGIN { exit !(t < 5) }'; then pass; else fail "results of a running job took ${t}s"; fi
rj status "$rid"
expect_out "results of a running job deletes nothing" RUNNING

rj wait --timeout 0.5 "$rid"
expect_rc "wait --timeout on a running job" 6
expect_out "wait --timeout prints the status of the moment" RUNNING

if pgrep -f -- "$marker" >/dev/null; then pass; else fail "the task process is not running"; fi
rj cleanup "$rid"
expect_rc "cleanup of a RUNNING job without --force" 0
expect_match "cleanup of a RUNNING job: one warning naming cleanup --force" \
    "^rxjob: warning: cleanup: job $rid kept: it is RUNNING: 'rxjob cleanup --force $rid' cancels and removes it\$" "$err"
rj status "$rid"
expect_out "cleanup without --force keeps a RUNNING job" RUNNING
rj cancel "$rid"
expect_rc "cancel" 0
expect_out "cancel" CANCELED
if pgrep -f -- "$marker" >/dev/null; then
    fail "a task process is left after cancel"
else
    pass
fi
rj status "$rid"
expect_rc "status of a canceled job" 4
expect_out "status of a canceled job" CANCELED
if [[ -z $err ]]; then pass; else fail "status of a canceled job wrote on stderr: '$err'"; fi
# A canceled job's output is removed: empty, but the job is known (CANCELED), so no error.
rj output "$rid"
expect_rc "output of a canceled job (empty, yet known)" 0
if [[ -z $err ]]; then pass; else fail "output of a canceled job wrote on stderr: '$err'"; fi
rj results "$rid"
expect_rc "results of a canceled job" 4
rj cancel "$rid"
expect_rc "cancel of a canceled job" 4
rj cleanup "$rid"
expect_rc "cleanup of a canceled job" 0
rj status "$rid"
expect_out "cleanup removes a canceled job" UNDETERMINED

# ---------------------------------------------------------------------------------------------
# Failures: --stop-on-failure with --elems-from FILE, the default with --elems-from -.
# ---------------------------------------------------------------------------------------------
# 20 tasks; task 13's argument is "bad", and only it fails.
for i in $(seq 0 19); do
    if ((i == 13)); then echo bad; else echo "t$i"; fi
done >"$tmp/elems"
fail_cmd=(sh -c 'printf "%s" "$1" >"$RXJOB_RESULT"; [ "$1" != bad ]' sh)

rj exec --wait --stop-on-failure --num-tasks 1 --elems-from "$tmp/elems" -- "${fail_cmd[@]}"
expect_rc "--stop-on-failure: the job FAILED" 1
if [[ ${RXJOB_TEST_EXECUTOR:-local} == local ]]; then
    # Our scheduler starts tasks in index order: exactly 0..12 ran, and 19 never did.
    want=$(printf 't%s\n' $(seq 0 12))
    expect_out "--stop-on-failure: tasks before the failure gave values" "$want"
    expect_match "--stop-on-failure: task 19 never ran" 'task 19: ERROR: ' "$err"
else
    # Slurm starts the tasks of an array %1 one at a time but not always in index order (seen in
    # CI: a later task ran before an earlier one), so only what ran is known: values in task
    # order, each its own argument, and task 13's failure stopped the rest.
    if [[ $(printf '%s\n' "$out" | grep -cv '^t[0-9][0-9]*$') == 0 ]] &&
        [[ $(printf '%s\n' "$out" | sed 's/^t//' | sort -n -c 2>&1) == "" ]] &&
        [[ $(printf '%s\n' "$out" | wc -l) -lt 19 ]]; then
        pass
    else
        fail "--stop-on-failure (slurm): values not in task order or nothing was stopped: '$out'"
    fi
fi
expect_match "--stop-on-failure: task 13's error" 'task 13: ERROR: .*exit status 1' "$err"

rj exec --wait --elems-from - -- "${fail_cmd[@]}" <"$tmp/elems"
expect_rc "continue on failure: the job FAILED" 1
want=$(grep -v '^bad$' "$tmp/elems")
expect_out "continue on failure: every other task gave its value" "$want"
expect_match "continue on failure: task 13's error" 'task 13: ERROR: .*exit status 1' "$err"
expect_no_match "continue on failure: only task 13 failed" 'task (1[0-24-9]|[0-9]): ERROR' "$err"

# --chunk-size: a supervisor per chunk of tasks, each task still its own process and result
# (the local executor; the Slurm executor ignores it: an array task each).
rj exec --wait --times 6 --chunk-size 3 -- sh -c 'printf "%s %s" "$RXJOB_TASK_INDEX" "$PPID" >"$RXJOB_RESULT"'
expect_rc "--chunk-size 3: the job FINISHED" 0
expect_match "--chunk-size 3: every task's own result, in order" \
    '^0 [0-9]+.1 [0-9]+.2 [0-9]+.3 [0-9]+.4 [0-9]+.5 [0-9]+$' "$(printf '%s' "$out" | tr '\n' '|')"
if [[ ${RXJOB_TEST_EXECUTOR:-local} == local ]]; then
    n_sup=$(printf '%s\n' "$out" | awk '{print $2}' | sort -u | wc -l)
    if [[ $n_sup == 2 ]]; then pass; else fail "--chunk-size 3: $n_sup supervisors for 6 tasks, want 2: '$out'"; fi
fi
for bad in 0 10001 x; do
    rj exec --chunk-size "$bad" -- true
    expect_rc "--chunk-size $bad is refused" 2
    expect_match "--chunk-size $bad: says why" '--chunk-size' "$err"
done

rj exec -- false
fid=$out
rj wait "$fid"
expect_rc "wait on a FAILED job" 1
expect_out "wait on a FAILED job" FAILED
rj status "$fid"
expect_rc "status of a FAILED job" 1
rj cleanup "$fid"
rj status "$fid"
expect_out "cleanup removes a FAILED job" UNDETERMINED

# ---------------------------------------------------------------------------------------------
# Options of exec: --elem with "{}", --times, --timeout, --console-output; output --follow.
# ---------------------------------------------------------------------------------------------
rj exec --wait --elem 'a b' --elem '' --elem 'c' -- sh -c 'printf "<%s>" "$1" >"$RXJOB_RESULT"' sh '{}'
expect_rc "--elem with {}" 0
expect_out "--elem with {}" $'<a b>\n<>\n<c>'

rj exec --wait --times 4 -- sh -c 'printf "%s/%s" "$RXJOB_TASK_INDEX" "$RXJOB_TASK_COUNT" >"$RXJOB_RESULT"'
expect_rc "--times 4" 0
expect_out "--times 4" $'0/4\n1/4\n2/4\n3/4'

start=$(now)
rj exec --wait --timeout 0.5 -- sleep 20
expect_rc "--timeout: the task is stopped and fails" 1
expect_match "--timeout: the error says so" 'task 0: ERROR: ' "$err"
t=$(elapsed "$start")
if awk -v t="$t" 'BEGIN { exit !(t < 15) }'; then pass; else fail "--timeout 0.5 took ${t}s"; fi

rj exec --wait --console-output -- sh -c 'echo printed-by-task; printf v >"$RXJOB_RESULT"'
expect_rc "--console-output" 0
expect_match "--console-output prints the output" 'printed-by-task' "$out"
expect_match "--console-output then the value" $'\nv$' "$out"

rj exec -- sh -c 'echo one; sleep 1; echo two'
foid=$out
rj output --follow "$foid"
expect_rc "output --follow" 0
expect_match "output --follow has both lines" $'one\ntwo' "$out"
expect_match "output --follow has the header once" '^==> task 0 <==' "$out"
rj results "$foid"

# A shell line given as the program (as tsp takes one): no shell runs it, and the error says
# what to do.
rj exec --wait "echo hi"
expect_rc "exec of a shell line as the program: the job FAILED" 1
expect_match "exec of a shell line: the error says to use sh -c" \
    "task 0: ERROR: command not found: 'echo hi' \\(no shell runs a command: .*run sh -c 'LINE'\\)" "$err"

# ---------------------------------------------------------------------------------------------
# Usage errors (exit 2, with a message) and an unreachable daemon (exit 3).
# ---------------------------------------------------------------------------------------------
expect_usage "exec without a program" exec
expect_usage "exec --times x" exec --times x -- true
expect_usage "exec --times 0" exec --times 0 -- true
expect_usage "exec --timeout -1" exec --timeout -1 -- true
expect_usage "exec --elems-from a missing file" exec --elems-from "$tmp/no-such-file" -- true
expect_usage "exec --elems-from an empty file" exec --elems-from /dev/null -- true
expect_usage "exec --times 3 with 2 elems" exec --times 3 --elem a --elem b -- echo
expect_match "exec --times 3 with 2 elems: the options named" \
    '^rxjob: exec: --times 3 but 2 task arguments \(--elem, --elems-from\): ' "$err"
expect_no_match "exec --times 3 with 2 elems: no C API field" 'times_to_run|elem_args' "$err"
expect_usage "exec of an unknown option" exec --frobnicate -- true
expect_match "an unknown option far from any: no suggestion" "^rxjob: exec: unknown option '--frobnicate'\$" \
    "$(head -n 1 "$err_file")"
# A near miss names the option meant (as git does); Slurm's --time is our --timeout.
for tc in "chunksize|chunk-size" "stop-on-falure|stop-on-failure" "wiat|wait" "jsno|json" \
    "tokenfile|token-file" "time|timeout"; do
    rj exec "--${tc%%|*}" 5 -- true
    expect_rc "exec --${tc%%|*}" 2
    expect_match "exec --${tc%%|*}: did you mean --${tc##*|}" \
        "^rxjob: exec: unknown option '--${tc%%|*}'; did you mean '--${tc##*|}'\?" "$err"
done
expect_usage "exec --times 2000000 (refused by the daemon: HTTP 413)" exec --times 2000000 -- true
expect_match "the daemon's reason is printed" \
    'rxjob: exec: .*tasks_per_job limit exceeded: 2000000 > 1000000 tasks .*HTTP 413' "$err"
expect_no_match "exec's refusal names no C function" 'rx_exec' "$err"
printf 'a\0b\n' >"$tmp/nul-elems"
expect_usage "exec --elems-from a line with a NUL byte" exec --elems-from "$tmp/nul-elems" -- echo
expect_match "exec --elems-from a NUL byte: the file and line named" \
    "^rxjob: exec: --elems-from '$tmp/nul-elems': line 1 holds a NUL byte" "$err"
expect_no_match "exec --elems-from a NUL byte: no C API field" 'elem_args' "$err"
expect_usage "status without an id" status
expect_usage "status abc" status abc
expect_usage "status 0" status 0
expect_usage "status with two ids" status 1 2
expect_usage "wait --timeout x" wait --timeout x 1
expect_usage "jobs --state nope" jobs --state nope
expect_usage "jobs --since yesterday" jobs --since yesterday
expect_usage "cleanup without an id" cleanup
expect_usage "daemon without an action" daemon
expect_usage "daemon restart" daemon restart
expect_usage "an unknown command" frobnicate
run "$rxjob"
expect_rc "no command" 2
run "$rxjob" --url nonsense status 1
expect_rc "a malformed --url" 2

# A malformed url is said once, in one line that names where it came from and the forms it
# takes (the library's own log line is not printed besides).
url_forms='; --url takes unix:/path/to/socket or https://HOST:PORT$'
# Each case: the name the message gives the command, then its arguments.
for tc in "status|status 1" "exec|exec -- true" "jobs|jobs" "daemon status|daemon status" \
    "daemon stop|daemon stop" "daemon start|daemon start"; do
    args=${tc#*|}
    # shellcheck disable=SC2086 # split on purpose
    run "$rxjob" --url /tmp/x $args
    expect_rc "--url /tmp/x $args" 2
    expect_match "--url /tmp/x $args: one line, the fix and the forms" \
        "^rxjob: ${tc%%|*}: --url '/tmp/x': a socket path needs the unix: scheme \\(--url unix:/tmp/x\\)$url_forms" "$err"
done
run env RXJOB_URL=/tmp/x "$rxjob" status 1
expect_rc "RXJOB_URL=/tmp/x" 2
expect_match "RXJOB_URL=/tmp/x: named as such, in one line" \
    "^rxjob: status: RXJOB_URL '/tmp/x': a socket path needs the unix: scheme \\(RXJOB_URL=unix:/tmp/x\\); RXJOB_URL takes " "$err"
run "$rxjob" --url unix: status 1
expect_rc "--url unix:" 2
expect_match "--url unix: says what is missing, in one line" "^rxjob: status: --url 'unix:': no socket path after unix:$url_forms" "$err"
run "$rxjob" --url https://127.0.0.1 status 1
expect_rc "--url https:// without a port" 2
expect_match "--url https:// without a port, in one line" "^rxjob: status: --url 'https://127.0.0.1': not https://HOST:PORT \\(a port from 1 to 65535[^$nl]*\\)$url_forms" "$err"
run "$rxjob" --url http://127.0.0.1:1 status 1
expect_match "--url http://, in one line" "^rxjob: status: --url 'http://127.0.0.1:1': plain http:// is never used [^$nl]*$url_forms" "$err"
run "$rxjob" --url nonsense status 1
expect_match "--url nonsense, in one line" "^rxjob: status: --url 'nonsense': not a daemon address$url_forms" "$err"

# A token file that cannot be used: one line naming where it came from (--token-file or
# RXJOB_TOKEN_FILE) and what is wrong with it; exit 8. Checked before any connection, so the
# https url needs no daemon.
https_url=https://127.0.0.1:1
: >"$tmp/tok-empty"
printf 'not a token\n' >"$tmp/tok-junk"
printf '\n%s\n' "$(printf 'x%.0s' $(seq 40))" >"$tmp/tok-blank-line"
mkdir "$tmp/tok-dir"
chmod 600 "$tmp/tok-empty" "$tmp/tok-junk" "$tmp/tok-blank-line"
token_cases=(
    "tok-empty|' is empty: its first line must be the token$"
    "tok-junk|': its first line is not a token \\(11 characters\\): a token is 32 to 512 characters of "
    "tok-blank-line|': its first line is not a token \\(it is empty\\)"
    "tok-dir|' is a directory, not a file holding the token on its first line$"
    "tok-missing|': cannot open it: No such file or directory$"
)
for tc in "${token_cases[@]}"; do
    f=${tc%%|*}
    run "$rxjob" --url "$https_url" --token-file "$tmp/$f" status 1
    expect_rc "--token-file $f" 8
    expect_match "--token-file $f: named as --token-file, what is wrong, one line" \
        "^rxjob: status: --token-file '$tmp/$f${tc#*|}" "$err"
done
run env RXJOB_TOKEN_FILE="$tmp/tok-junk" "$rxjob" --url "$https_url" status 1
expect_rc "RXJOB_TOKEN_FILE junk" 8
expect_match "RXJOB_TOKEN_FILE junk: named as RXJOB_TOKEN_FILE, one line" \
    "^rxjob: status: RXJOB_TOKEN_FILE '$tmp/tok-junk': its first line is not a token \\(11 characters\\)[^$nl]*$" "$err"
run env RXJOB_TOKEN="$(printf 'x%.0s' $(seq 40))" "$rxjob" --url "$https_url" --token-file "$tmp/tok-empty" status 1
expect_match "--token-file wins over RXJOB_TOKEN" "^rxjob: status: --token-file '$tmp/tok-empty' is empty" "$err"
expect_usage "--token-file ''" --token-file '' status 1
# On a Unix socket a token is never sent (the daemon knows its client by uid): said, not silent.
printf '%s\n' "$(printf 'x%.0s' $(seq 40))" >"$tmp/tok-unused"
chmod 600 "$tmp/tok-unused"
rj --token-file "$tmp/tok-unused" jobs
expect_rc "--token-file with a Unix socket: the command runs" 0
expect_match "--token-file with a Unix socket: a warning says it is not used" \
    "^rxjob: warning: --token-file is not used with a Unix socket" "$err"

for args in "status 1" "wait 1" "results 1" "cancel 1" "jobs" "exec -- true" "cleanup 1"; do
    # shellcheck disable=SC2086 # split on purpose
    run "$rxjob" --url unix:/nonexistent $args
    expect_rc "unreachable daemon: $args" 3
    expect_match "unreachable daemon: $args: message" '^rxjob: .*/nonexistent' "$err"
done
run "$rxjob" --url unix:/nonexistent daemon status
expect_rc "unreachable daemon: daemon status" 3

run "$rxjob" --help
expect_rc "--help" 0
expect_match "--help lists the commands" 'exec.*status.*wait' "$(tr '\n' ' ' <"$out_file")"
for sub in exec status wait results output cancel cleanup jobs daemon; do
    run "$rxjob" "$sub" --help
    expect_rc "$sub --help" 0
    expect_match "$sub --help" "^Usage: rxjob $sub" "$out"
done
run "$rxjob" --version
expect_match "--version" '^rxjob [0-9]+\.[0-9]+\.[0-9]+$' "$out"

# libcurl and libcrypto are loaded by the library when a server context first needs them
# (src/client/dynlib.c), not linked: rxjob does not name them as NEEDED, a command that talks to
# no daemon never loads them, and one that does loads libcurl (ld.so's own trace, LD_DEBUG).
needed=$(readelf -d "$rxjob" | grep NEEDED)
expect_match "readelf: rxjob is linked (sanity: libc is NEEDED)" 'libc\.so' "$needed"
expect_no_match "readelf: rxjob does not link libcurl or libcrypto" 'libcurl|libcrypto' "$needed"
run env LD_DEBUG=libs LD_DEBUG_OUTPUT="$tmp/ld-version" "$rxjob" --version
expect_rc "--version under LD_DEBUG" 0
expect_no_match "--version does not load libcurl" 'libcurl' "$(cat "$tmp"/ld-version.* 2>/dev/null)"
run env LD_DEBUG=libs LD_DEBUG_OUTPUT="$tmp/ld-status" "$rxjob" --url "unix:$sock" status 987654321
expect_rc "status of an unknown job under LD_DEBUG" 5
expect_match "status (which talks to rxjobd) loads libcurl" 'calling init: .*libcurl' \
    "$(cat "$tmp"/ld-status.* 2>/dev/null)"

# ---------------------------------------------------------------------------------------------
# --json on every subcommand.
# ---------------------------------------------------------------------------------------------
rj --json exec --no-auto-cleanup --elem x --elem y -- sh -c 'printf "%s" "$1" >"$RXJOB_RESULT"' sh
expect_rc "--json exec" 0
expect_json "--json exec"
jid=$(json_get 'd["id"]')
expect_match "--json exec has the id" '^[0-9]+$' "$jid"
rj wait --json "$jid"
expect_json "--json wait"
expect_match "--json wait: status and tasks" '^FINISHED 2$' "$(json_get 'd["status"], d["n_tasks"]')"
rj --json status "$jid"
expect_json "--json status"
rj --json output "$jid"
expect_json "--json output"
rj --json jobs
expect_json "--json jobs"
expect_match "--json jobs lists the job" "(^| )$jid( |$)" "$(json_get '" ".join(str(j["id"]) for j in d["jobs"])')"
rj --json results --keep "$jid"
expect_json "--json results"
expect_match "--json results: values in base64" '^x y$' \
    "$(json_get '" ".join(base64.b64decode(s["value_b64"]).decode() for s in d["slots"])')"
rj --json cleanup "$jid"
expect_json "--json cleanup"
rj --json cleanup --force "$jid"
expect_json "--json cleanup --force"
expect_match "--json cleanup --force: cleaned 1" '^1$' "$(json_get 'd["cleaned"]')"
rj exec -- sleep 30
cid=$out
rj --json cancel "$cid"
expect_json "--json cancel"
expect_match "--json cancel" '^True CANCELED$' "$(json_get 'd["canceled"], d["status"]')"
rj cleanup "$cid"
rj --json exec --wait -- sh -c 'exit 3'
expect_rc "--json exec --wait of a failing job" 1
expect_json "--json exec --wait"
expect_match "--json exec --wait: the slot's error" '^EXIT 3$' \
    "$(json_get 'd["slots"][0]["state"], d["slots"][0]["exit_status"]')"
rj --json daemon status
expect_rc "--json daemon status" 0
expect_json "--json daemon status"
rj daemon status
expect_rc "daemon status" 0
expect_match "daemon status names the socket" "socket: +$sock" "$out"
expect_match "daemon status gives the pid" "pid: +$daemon_pid" "$out"

# ---------------------------------------------------------------------------------------------
# daemon stop on the test daemon.
# ---------------------------------------------------------------------------------------------
rj daemon stop
expect_rc "daemon stop" 0
if rx_alive "$daemon_pid"; then fail "rxjobd still runs after daemon stop"; else pass; fi
wait "$daemon_pid" 2>/dev/null
rj status 1
expect_rc "status once the daemon is stopped" 3
# (a socket given by url: nothing starts a daemon for it, 'rxjob daemon start' included)
expect_match "status once the daemon is stopped: what to do" "start one with 'rxjobd --socket PATH'" "$err"
expect_no_match "status once the daemon is stopped: not 'rxjob daemon start'" "rxjob daemon start" "$err"

# ---------------------------------------------------------------------------------------------
# The embedded default: the library starts the per-user daemon; daemon stop stops it.
# ---------------------------------------------------------------------------------------------
mkdir -p "$tmp/emb/run"
emb() {
    run env RXJOB_SOCKET="$tmp/emb/s.sock" RXJOB_STATE_DIR="$tmp/emb/state" \
        RXJOB_DAEMON="$rxjobd" XDG_RUNTIME_DIR="$tmp/emb/run" XDG_STATE_HOME="$tmp/emb/xdg" \
        "$rxjob" "$@"
}
emb daemon status
expect_rc "embedded: daemon status before any job" 3
emb exec -- true
expect_rc "embedded: exec starts the daemon" 0
expect_match "embedded: exec prints the id" '^[0-9]+$' "$out"
eid=$out
if [[ -S $tmp/emb/s.sock ]]; then pass; else fail "embedded: no socket at $tmp/emb/s.sock"; fi
emb --json daemon status
expect_rc "embedded: daemon status" 0
embedded_pid=$(json_get 'd["pid"]')
expect_match "embedded: the daemon's pid" '^[0-9]+$' "$embedded_pid"
[[ $embedded_pid =~ ^[0-9]+$ ]] || embedded_pid=$(pgrep -f -- "$tmp/emb/s.sock" | head -n 1)
emb wait "$eid"
expect_out "embedded: the job FINISHED" FINISHED
emb daemon start
expect_rc "embedded: daemon start when running" 0
emb daemon stop
expect_rc "embedded: daemon stop" 0
if [[ -n $embedded_pid ]] && rx_alive "$embedded_pid"; then
    fail "embedded: rxjobd (pid $embedded_pid) still runs after daemon stop"
else
    pass
fi
emb daemon status
expect_rc "embedded: daemon status once stopped" 3
emb status "$eid"
expect_rc "embedded: status once stopped (a status query starts nothing)" 3
expect_match "embedded: status once stopped: what to do" "'rxjob daemon start' starts the per-user daemon" "$err"
emb daemon stop
expect_rc "embedded: daemon stop with none running" 0
emb daemon start
expect_rc "embedded: daemon start starts it again" 0
emb --json daemon status
expect_rc "embedded: it answers again" 0
embedded_pid=$(json_get 'd["pid"]')
emb status "$eid"
expect_out "embedded: the job is still there after a restart" FINISHED
emb daemon stop
expect_rc "embedded: daemon stop again" 0

# A "daemon" that says why it cannot serve and exits, leaving a child that holds its stderr
# open: the client's read of that pipe must not wait for its end, and must keep what is there.
mkdir -p "$tmp/fake"
printf '%s\n' '#!/bin/sh' 'echo "fake-rxjobd: cannot serve" >&2' 'echo "second line" >&2' \
    'sleep 30 &' 'echo $! >"$0.holder"' 'exit 1' >"$tmp/fake/rxjobd"
chmod +x "$tmp/fake/rxjobd"
fake_t0=$(date +%s%N)
run env RXJOB_SOCKET="$tmp/fake/s.sock" RXJOB_STATE_DIR="$tmp/fake/state" \
    RXJOB_DAEMON="$tmp/fake/rxjobd" XDG_RUNTIME_DIR="$tmp/fake/run" "$rxjob" exec -- true
fake_ms=$((($(date +%s%N) - fake_t0) / 1000000))
[[ -s $tmp/fake/rxjobd.holder ]] && rx_pids+=("$(cat "$tmp/fake/rxjobd.holder")")
expect_rc "a daemon that never serves: exec" 3
expect_match "a daemon that never serves: its stderr in the message" \
    "started '.*', which failed: fake-rxjobd: cannot serve second line$" "$err"
# It exited 1: the client stops waiting about a second later, not after the whole 5 s.
check "a daemon that failed: the client gave up in ${fake_ms} ms (< 4000)" test "$fake_ms" -lt 4000

# An error line reaches stderr in one write(2), whole: escaped piece by piece through an
# unbuffered stderr it was one write per byte, interleaved with whatever else wrote there.
if command -v strace >/dev/null 2>&1; then
    # (LeakSanitizer cannot run under ptrace: off for this one run of a sanitized build.)
    run env ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
        strace -f -qq -e trace=write -o "$tmp/strace.out" "$rxjob" --url "unix:$tmp/none.sock" \
        status 5
    expect_rc "strace: status against no daemon" 3
    n=$(grep -c '^[0-9]* *write(2,' "$tmp/strace.out" || true)
    if [[ $n == 1 ]]; then pass; else fail "the error line took $n writes to stderr, want 1"; fi
else
    fail "strace is not installed (scripts/install-deps.sh installs it)"
fi

rx_test_end
