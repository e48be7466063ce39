#!/usr/bin/env bash
# check_daemon.sh BUILD_DIR - end-to-end check of rxjobd over its HTTP API (docs/protocol.md).
#
# Starts BUILD_DIR/rxjobd in the foreground on a temporary socket and state directory (in the
# background of this script), and drives it with curl --unix-socket:
#   - a command job (sh -c 'echo hi; echo -n r > $RXJOB_RESULT', base64-encoded): submit (201),
#     wait (FINISHED, not timed out), status, output twice (the same bytes: it never consumes),
#     list, metrics, results (value "r", base64 "cg=="), then status and results again: 404;
#   - a slow job: results while it runs (409 RX_ENOTFINISHED), cancel (canceled true), results
#     of the canceled job (409 RX_ECANCELED), cleanup (cleaned true);
#   - a FINISHED job cleaned without force (kept, with a warning), then with force;
#   - bad input, each answered with its 4xx status and an error body with "error" and "message":
#     malformed JSON, a non-object, unknown and mistyped fields, bad counts, bad base64, the
#     run-count rule, an unknown state filter, unknown ids and paths, a wrong method, a body over
#     the 16 MiB limit, stdin over 8 MiB, base64 with non-zero padding bits, an encoded NUL (%00)
#     in a path or a query value; the daemon must still answer after all of them;
#   - large bodies: at most 2 read at once (the third waits, as /metrics shows);
#   - a result of 72 MiB: streamed from its file (the daemon's peak RSS grows far less), and a
#     client that stops reading mid-body collects nothing: the job is still there, collectable;
#   - result slots with exit_status and elapsed_s; the FINISHED-cleanup warning, true after a
#     collection without cleanup;
#   - jobs.db (and its -wal, -shm) 0600; a state directory writable by others, or another
#     user's, refused (exit 1);
#   - (local executor) a task that puts a FIFO in place of its output file: output still
#     answers, and SIGTERM still stops the daemon; a daemon whose binary was removed while it
#     runs still runs tasks; the engine's log lines ("rxjobd: info: engine: adopted ...");
#   - a second rxjobd on the same socket (exit 1, "another rxjobd is already serving ..."), and on
#     the same state directory (exit 1, lock message);
#   - a daemonized rxjobd (returns only once it serves, printing nothing), stopped over HTTP;
#   - SIGTERM stops the foreground daemon with status 0 and removes its socket; a socket left
#     by a daemon killed with SIGKILL is stale and the next daemon replaces it.
# Every check counts once; the script ends with "check_daemon: N passed, M failed" and exits
# non-zero if M > 0. It kills only the daemons it started (trap on EXIT).
set -uo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"
rx_test_init check_daemon "${1:-}"
rx_need "$rxjobd" curl
# Each daemon this script starts goes into rx_pids (lib.sh stops them at exit); a check that
# passes is counted, not printed.
rx_check_quiet=1

# api METHOD PATH [BODY]: one request to the daemon on $sock (or $SOCK if set). Sets $code (the
# HTTP status, 000 when nothing answered) and $body (the response body).
api() {
    local method=$1 path=$2
    local -a data=()
    if [[ $# -ge 3 ]]; then data=(--data-binary "$3" -H 'Content-Type: application/json'); fi
    code=$(curl -sS --max-time 90 --unix-socket "${SOCK:-$sock}" -X "$method" "${data[@]}" \
        -o "$tmp/body" -w '%{http_code}' "http://localhost$path" 2>"$tmp/curl.err") || true
    body=$(cat "$tmp/body" 2>/dev/null || true)
    rm -f "$tmp/body"
}

# expect WHAT CODE [SUBSTRING...]: the last answer had status CODE and contains each SUBSTRING.
expect() {
    local what=$1 want=$2
    shift 2
    if [[ $code != "$want" ]]; then
        fail "$what: status $code, want $want; body: ${body:0:300}"
        return
    fi
    local s
    for s in "$@"; do
        if [[ $body != *"$s"* ]]; then
            fail "$what: body lacks '$s'; body: ${body:0:300}"
            return
        fi
    done
    pass
}

# expect_error WHAT CODE ERRNAME: a 4xx/5xx answer with an error body naming ERRNAME.
expect_error() {
    expect "$1" "$2" "\"error\":\"$3\"" '"message":"'
}

b64() {
    printf '%s' "$1" | base64 -w0
}

# wait_answer [SOCKET]: until GET /v1/daemon answers 200, at most 20 s.
wait_answer() {
    local s=${1:-$sock}
    for _ in $(seq 200); do
        SOCK=$s api GET /v1/daemon
        [[ $code == 200 ]] && return 0
        sleep 0.1
    done
    return 1
}

job_id() {
    sed -n 's/^{"id":\([0-9][0-9]*\),.*/\1/p; s/.*"job":{"id":\([0-9][0-9]*\),.*/\1/p' <<<"$body" |
        head -n1
}

# ---------------------------------------------------------------------------------------------
# Options.

"$rxjobd" --version >"$tmp/out" 2>&1
check "--version" grep -q '^rxjobd [0-9][0-9]*\.[0-9][0-9]*\.[0-9][0-9]*$' "$tmp/out"
"$rxjobd" --help >"$tmp/out" 2>&1
check "--help" grep -q -- '--state-dir DIR' "$tmp/out"
"$rxjobd" --slots 0 --foreground --socket "$tmp/x.sock" --state-dir "$tmp/x" >"$tmp/out" 2>&1
check "--slots 0 is refused with status 2" test "$?" = 2
"$rxjobd" --bogus >"$tmp/out" 2>&1
check "an unknown option is refused with status 2" test "$?" = 2

# ---------------------------------------------------------------------------------------------
# Start.

# RXJOB_TEST_EXECUTOR=slurm runs the same checks on the Slurm executor (tests/check_slurm.sh).
executor=${RXJOB_TEST_EXECUTOR:-local}
"$rxjobd" --foreground --socket "$sock" --state-dir "$state" --slots 2 --grace-ms 200 \
    --executor "$executor" --slurm-poll-ms 200 2>"$tmp/daemon.log" &
daemon=$!
rx_pids+=("$daemon")
if ! wait_answer; then
    echo "check_daemon: rxjobd did not answer on $sock; its log:" >&2
    cat "$tmp/daemon.log" >&2
    exit 1
fi
pass
expect "daemon status" 200 "\"pid\":$daemon" '"version":"' "\"executor\":\"$executor\"" '"slots":2' \
    "\"socket\":\"$sock\"" '"hold":false' '"jobs":{'
check "socket mode 0600" test "$(stat -c %a "$sock")" = 600
# Files of the store are the daemon's user's alone (umask 077): jobs.db, and its -wal and -shm.
for f in jobs.db jobs.db-wal jobs.db-shm; do
    if [[ -e $state/$f ]]; then
        check "$f mode 0600" test "$(stat -c %a "$state/$f")" = 600
    elif [[ $f == jobs.db ]]; then
        fail "no $state/jobs.db"
    fi
done

# ---------------------------------------------------------------------------------------------
# A command job, from submit to cleanup.

argv=$(printf '"%s",' "$(b64 sh)" "$(b64 -c)" "$(b64 'echo hi; echo -n r > $RXJOB_RESULT')")
api POST /v1/jobs "{\"work\": {\"kind\": \"command\", \"argv_b64\": [${argv%,}]}, \"times_to_run\": 1}"
expect "submit" 201 '"status":"' '"n_tasks":1' '"work":"command"' '"auto_cleanup":true'
id=$(job_id)
check "submit gives an id" test -n "$id"
id=${id:-0}

api GET "/v1/jobs/$id/wait?timeout_s=30"
expect "wait" 200 '"status":"FINISHED"' '"timed_out":false' "\"id\":$id"

api GET "/v1/jobs/$id"
expect "status" 200 '"status":"FINISHED"' '"tasks":{"pending":0,"running":0,"ok":1,"failed":0}'
if [[ $body == *'"ended_s":null'* ]]; then fail "a finished job has ended_s"; else pass; fi

want_output=$(printf '==> task 0 <==\nhi\n')
for round in 1 2; do
    api GET "/v1/jobs/$id/output"
    expect "output (round $round)" 200
    check "output bytes (round $round)" test "$body" = "$want_output"
done
api GET "/v1/jobs/$id/output?follow=1"
expect "followed output of a finished job" 200
check "followed output bytes" test "$body" = "$want_output"

api GET "/v1/jobs?state=FINISHED,queued"
expect "list" 200 "{\"jobs\":[{\"id\":$id,"
api GET "/v1/jobs?state=FAILED"
expect "list filtered out" 200 '{"jobs":[]}'
api GET "/v1/jobs?since_s=0&until_s=4102444800"
expect "list with a time window" 200 "\"id\":$id"

api GET /metrics
expect "metrics" 200 'rxjobd_jobs{status="FINISHED"} 1' 'rxjobd_tasks_running ' \
    'rxjobd_submissions_total ' 'rxjobd_tasks_started_total ' 'rxjobd_http_requests_total '

api GET "/v1/jobs/$id/results"
expect "results" 200 "\"job\":{\"id\":$id," '"slots":[{"state":"OK","exit_status":0,"signal":0,"elapsed_s":' \
    '"value_b64":"cg=="}]'
# How long the task ran, from its recorded start and end: never 0 for a task that ran.
elapsed=$(sed -n 's/.*"elapsed_s":\([0-9.e+-]*\).*/\1/p' <<<"$body")
check "a slot's elapsed_s is above 0 ($elapsed)" awk -v e="${elapsed:-0}" 'BEGIN { exit !(e > 0 && e < 30) }'

api GET "/v1/jobs/$id"
expect_error "status after results" 404 RX_ENOENT

# Function work run by a program that never calls rx_init (here /bin/true): the task fails with a
# hint instead of succeeding with an empty value.
api POST /v1/jobs "{\"work\":{\"kind\":\"function\",\"exe_b64\":\"$(b64 /bin/true)\",\"name\":\"f\"}}"
expect "submit function work without rx_init" 201
noinit=$(job_id)
api GET "/v1/jobs/$noinit/wait?timeout_s=30"
api GET "/v1/jobs/$noinit/results"
expect "a program without rx_init fails its task" 200 '"state":"ERROR"' 'call rx_init'

api GET "/v1/jobs/$id/results"
expect_error "results twice" 404 RX_ENOENT
api GET "/v1/jobs/$id/output"
expect_error "output after cleanup" 404 RX_ENOENT

# ---------------------------------------------------------------------------------------------
# A slow job: not finished, canceled, cleaned.

api POST /v1/jobs "{\"work\": {\"kind\": \"command\", \"argv_b64\": [\"$(b64 sleep)\", \"$(b64 30)\"]}}"
expect "submit a slow job" 201
slow=$(job_id)
slow=${slow:-0}
api GET "/v1/jobs/$slow/wait?timeout_s=0.3"
expect "wait times out" 200 '"timed_out":true'
api GET "/v1/jobs/$slow/results"
expect_error "results of a running job" 409 RX_ENOTFINISHED
api DELETE "/v1/jobs/$slow"
expect "cleanup of a running job without force" 200 '"cleaned":false' '"warning":"'
api POST "/v1/jobs/$slow/cancel"
expect "cancel" 200 '"canceled":true' "\"job\":{\"id\":$slow,"
api GET "/v1/jobs/$slow/wait?timeout_s=30"
expect "wait for the canceled job" 200 '"status":"CANCELED"' '"timed_out":false'
api POST "/v1/jobs/$slow/cancel"
expect "cancel again" 200 '"canceled":false'
api GET "/v1/jobs/$slow/results"
expect_error "results of a canceled job" 409 RX_ECANCELED
api DELETE "/v1/jobs/$slow"
expect "cleanup of a canceled job" 200 '{"cleaned":true}'
api GET "/v1/jobs/$slow"
expect_error "status after cleanup" 404 RX_ENOENT

# A FINISHED job is kept without force.
api POST /v1/jobs "{\"work\": {\"kind\": \"command\", \"argv_b64\": [\"$(b64 true)\"]}, \"auto_cleanup\": false}"
expect "submit a quick job" 201 '"auto_cleanup":false'
quick=$(job_id)
quick=${quick:-0}
api GET "/v1/jobs/$quick/wait?timeout_s=30"
expect "wait for the quick job" 200 '"status":"FINISHED"'
api DELETE "/v1/jobs/$quick?force=0"
expect "cleanup of a FINISHED job without force" 200 '"cleaned":false' 'force' 'rx_get_job_results'
api GET "/v1/jobs/$quick/results?auto_cleanup=0"
expect "results without cleanup" 200 '"exit_status":0,' '"value_b64":""'
api GET "/v1/jobs/$quick"
expect "still there after results without cleanup" 200 '"status":"FINISHED"'
# The warning is true after a collection without cleanup too.
api DELETE "/v1/jobs/$quick"
expect "cleanup after results without cleanup" 200 '"cleaned":false' \
    'is FINISHED: cleaning it up would delete its results' 'force' 'rx_get_job_results'
if [[ $body == *"not collected"* ]]; then fail "the warning says the results were not collected"; else pass; fi
# An encoded NUL is refused, never cut short ("1%00" is not job 1, "1%00" is not 1 s).
api GET "/v1/jobs/$quick%00"
expect_error "a NUL in the path" 404 RX_ENOENT
api GET "/v1/jobs/$quick%00/wait"
expect_error "a NUL in the path before /wait" 404 RX_ENOENT
api GET "/v1/jobs/$quick/wait?timeout_s=1%00"
expect_error "a NUL in a query value" 400 RX_EINVAL
api GET "/v1/jobs/$quick/results?auto_cleanup%00=0"
expect_error "a NUL in a query key" 400 RX_EINVAL
api GET "/v1/jobs/$quick/wait?timeout_s=1"
expect "the same without the NUL" 200 '"status":"FINISHED"'
api DELETE "/v1/jobs/$quick?force=1"
expect "cleanup with force" 200 '{"cleaned":true}'

# ---------------------------------------------------------------------------------------------
# A result bigger than 64 MiB: streamed from its file, slot by slot, never whole in the daemon's
# memory; and a client that reads only part of the body and goes away collects nothing.

# vm_hwm: the daemon's peak resident set so far, in kB.
vm_hwm() {
    awk '/^VmHWM:/ { print $2 }' "/proc/$daemon/status"
}
big_bytes=$((72 * 1024 * 1024))
argv=$(printf '"%s",' "$(b64 sh)" "$(b64 -c)" "$(b64 "head -c $big_bytes /dev/zero > \$RXJOB_RESULT")")
api POST /v1/jobs "{\"work\": {\"kind\": \"command\", \"argv_b64\": [${argv%,}]}}"
expect "submit a job with a 72 MiB result" 201 '"auto_cleanup":true'
big=$(job_id)
big=${big:-0}
api GET "/v1/jobs/$big/wait?timeout_s=60"
expect "the 72 MiB result's job finishes" 200 '"status":"FINISHED"'
hwm_before=$(vm_hwm)
# Read 64 KiB of the body, then hang up.
curl -sS --max-time 60 --unix-socket "$sock" "http://localhost/v1/jobs/$big/results" 2>/dev/null |
    head -c 65536 >/dev/null
for _ in $(seq 100); do
    api GET "/v1/jobs/$big"
    [[ $code == 200 ]] && break
    sleep 0.1
done
expect "a collection cut short deletes nothing: the job is still there" 200 '"status":"FINISHED"'
code=$(curl -sS --max-time 120 --unix-socket "$sock" -o "$tmp/bigres" -w '%{http_code}' \
    "http://localhost/v1/jobs/$big/results" 2>"$tmp/curl.err") || true
check "the job is collected again, whole (status $code)" test "$code" = 200
want_b64=$(((big_bytes + 2) / 3 * 4))
got_b64=$(tr -cd 'A' <"$tmp/bigres" | wc -c)
check "the whole value came ($got_b64 of $want_b64 base64 letters)" test "$got_b64" -ge "$want_b64"
check "the body ends the slots" test "$(tail -c 4 "$tmp/bigres")" = '"}]}'
rm -f "$tmp/bigres"
hwm_after=$(vm_hwm)
grew_kb=$((hwm_after - hwm_before))
check "the daemon's peak RSS grew by $grew_kb kB, far below the 73728 kB result" \
    test "$grew_kb" -lt 16384
api GET "/v1/jobs/$big"
expect_error "collected whole with auto-cleanup: gone" 404 RX_ENOENT

# ---------------------------------------------------------------------------------------------
# Bad input: each gets its 4xx and an error body.

cmd="{\"kind\": \"command\", \"argv_b64\": [\"$(b64 true)\"]}"
bad_bodies=(
    '{'
    '[]'
    '"work"'
    '{}'
    "{\"work\": $cmd, \"bogus\": 1}"
    "{\"work\": $cmd, \"times_to_run\": \"5\"}"
    "{\"work\": $cmd, \"times_to_run\": 0}"
    "{\"work\": $cmd, \"times_to_run\": -5}"
    "{\"work\": $cmd, \"num_tasks\": -1}"
    "{\"work\": $cmd, \"num_tasks\": 99999999999}"
    "{\"work\": $cmd, \"execution_timeout_s\": -1}"
    "{\"work\": $cmd, \"execution_timeout_s\": \"NaN\"}"
    "{\"work\": $cmd, \"continue_on_failure\": 1}"
    '{"work": {"kind": "command", "argv_b64": ["not base64!"]}}'
    '{"work": {"kind": "command", "argv_b64": []}}'
    '{"work": {"kind": "command", "argv_b64": "dHJ1ZQ=="}}'
    '{"work": {"kind": "command", "argv_b64": ["dHJ1ZQB4"]}}'
    '{"work": {"kind": "rocket", "argv_b64": ["dHJ1ZQ=="]}}'
    '{"work": {"kind": "command", "argv_b64": ["dHJ1ZR=="]}}'
)
for b in "${bad_bodies[@]}"; do
    api POST /v1/jobs "$b"
    expect_error "bad submission: $b" 400 RX_EINVAL
done
api POST /v1/jobs "{\"work\": $cmd, \"times_to_run\": 3, \"elem_args_b64\": [\"YQ==\"]}"
expect_error "run-count rule" 400 RX_ECOUNT
api GET "/v1/jobs?state=DONE"
expect_error "unknown state filter" 400 RX_EINVAL
api GET "/v1/jobs?since_s=yesterday"
expect_error "bad since_s" 400 RX_EINVAL
api GET "/v1/jobs?color=red"
expect_error "unknown query parameter" 400 RX_EINVAL
api GET "/v1/jobs/1/wait?timeout_s=61"
expect_error "wait timeout over 60 s" 400 RX_EINVAL
api GET "/v1/jobs/1/results?auto_cleanup=yes"
expect_error "bad auto_cleanup" 400 RX_EINVAL
api GET /v1/jobs/999999
expect_error "unknown id" 404 RX_ENOENT
api GET /v1/jobs/abc
expect_error "id that is not a number" 404 RX_ENOENT
api GET /v1/jobs/0
expect_error "id 0" 404 RX_ENOENT
api POST /v1/jobs/999999/cancel
expect_error "cancel of an unknown id" 404 RX_ENOENT
api DELETE /v1/jobs/999999
expect_error "cleanup of an unknown id" 404 RX_ENOENT
api GET /v1/nothing
expect_error "unknown path" 404 RX_ENOENT
api PUT /v1/jobs '{}'
expect_error "wrong method" 405 RX_EINVAL
api GET /v1/jobs/1/cancel
expect_error "wrong method on cancel" 405 RX_EINVAL
# post_file FILE [CURL ARGS...]: POST /v1/jobs with FILE as the body; sets $code and $body.
post_file() {
    local file=$1
    shift
    code=$(curl -sS --max-time 90 --unix-socket "$sock" -X POST "$@" --data-binary @"$file" \
        -o "$tmp/body" -w '%{http_code}' http://localhost/v1/jobs 2>"$tmp/curl.err") || true
    body=$(cat "$tmp/body" 2>/dev/null || true)
    rm -f "$tmp/body"
}
head -c $((16 * 1024 * 1024 + 1)) /dev/zero | tr '\0' ' ' >"$tmp/big"
post_file "$tmp/big"
expect_error "body over 16 MiB" 413 RX_ETOOBIG
post_file "$tmp/big" -H 'Transfer-Encoding: chunked'
expect_error "chunked body over 16 MiB" 413 RX_ETOOBIG
# stdin: 8 MiB fit in a body (base64'd), a byte more is refused.
for n in $((8 * 1024 * 1024)) $((8 * 1024 * 1024 + 1)); do
    {
        printf '{"work": {"kind": "command", "argv_b64": ["%s"], "stdin_b64": "' "$(b64 true)"
        head -c "$n" /dev/zero | base64 -w0
        printf '"}, "auto_cleanup": false}'
    } >"$tmp/big"
    post_file "$tmp/big"
    if [[ $n == $((8 * 1024 * 1024)) ]]; then
        expect "stdin of 8 MiB" 201 '"id":'
    else
        expect_error "stdin over 8 MiB" 413 RX_ETOOBIG
        check "stdin over 8 MiB says why" grep -qF \
            'stdin_bytes limit exceeded: 8388609 > 8388608 bytes (rxjobd --limit stdin_bytes=...)' <<<"$body"
    fi
done
# Large bodies (over 1 MiB) are read two at a time: a third waits for its turn.
head -c $((5 * 1024 * 1024 / 4)) /dev/zero | tr '\0' ' ' >"$tmp/big"
slow_pids=()
for k in 1 2 3; do
    curl -sS --max-time 60 --limit-rate 512K --unix-socket "$sock" -X POST \
        --data-binary @"$tmp/big" -o "$tmp/slow$k.body" -w '%{http_code}' \
        http://localhost/v1/jobs >"$tmp/slow$k.code" 2>/dev/null &
    slow_pids+=($!)
done
sleep 1.2
api GET /metrics
expect "two large bodies read at once, the third waiting" 200 \
    'rxjobd_http_large_bodies_reading 2' 'rxjobd_http_large_bodies_waiting 1'
wait "${slow_pids[@]}"
for k in 1 2 3; do
    check "large body $k answered in turn (400, status $(cat "$tmp/slow$k.code"))" \
        test "$(cat "$tmp/slow$k.code")" = 400
done
api GET /metrics
expect "no large body left" 200 'rxjobd_http_large_bodies_reading 0' \
    'rxjobd_http_large_bodies_waiting 0'
rm -f "$tmp/big" "$tmp"/slow*

api GET /v1/daemon
expect "the daemon still answers after bad input" 200 "\"pid\":$daemon"

# ---------------------------------------------------------------------------------------------
# A task that puts a FIFO in place of its output file: output still answers (that task's part
# reads as empty, and the daemon says why in its log), and SIGTERM still stops the daemon below.

if [[ $executor == local ]]; then
    # shellcheck disable=SC2016 # the task's shell code
    argv=$(printf '"%s",' "$(b64 sh)" "$(b64 -c)" \
        "$(b64 'o=${RXJOB_RESULT%.result}.out; rm -f "$o"; mkfifo "$o"')")
    api POST /v1/jobs "{\"work\": {\"kind\": \"command\", \"argv_b64\": [${argv%,}]}}"
    expect "submit a task that puts a FIFO in place of its output" 201
    fifo=$(job_id)
    fifo=${fifo:-0}
    api GET "/v1/jobs/$fifo/wait?timeout_s=30"
    expect "the FIFO task finishes" 200 '"status":"FINISHED"'
    for q in "" "?follow=1"; do
        code=$(curl -sS --max-time 10 --unix-socket "$sock" -o "$tmp/body" -w '%{http_code}' \
            "http://localhost/v1/jobs/$fifo/output$q" 2>"$tmp/curl.err") || true
        check "output$q of a task whose output is a FIFO answers (status $code)" test "$code" = 200
        check "output$q: that task's part is empty" test "$(cat "$tmp/body")" = '==> task 0 <=='
    done
    check "the FIFO is logged" grep -q "output of job $fifo task 0: .* is not a regular file" \
        "$tmp/daemon.log"
fi

# ---------------------------------------------------------------------------------------------
# The state directory must be ours and closed to others, like the socket's (exit 1, saying why;
# a daemon that serves instead is stopped by timeout, exit 124).

mkdir "$tmp/open" && chmod 0777 "$tmp/open"
timeout 20 "$rxjobd" --foreground --socket "$tmp/o.sock" --state-dir "$tmp/open" >"$tmp/open.out" 2>&1
check "a state directory writable by others is refused (exit 1)" test "$?" = 1
check "... saying why" grep -q "state: directory '$tmp/open' is writable by others" "$tmp/open.out"
check "... before creating anything in it" test ! -e "$tmp/open/jobs.db"
mkdir -p "$tmp/openspool/spool" && chmod 0777 "$tmp/openspool/spool"
timeout 20 "$rxjobd" --foreground --socket "$tmp/o.sock" --state-dir "$tmp/openspool" >"$tmp/open.out" 2>&1
check "a spool directory writable by others is refused (exit 1)" test "$?" = 1
check "no socket left by the refused daemons" test ! -e "$tmp/o.sock"
if [[ $(id -u) == 0 ]]; then
    mkdir "$tmp/theirs" && chown 65534 "$tmp/theirs"
    timeout 20 "$rxjobd" --foreground --socket "$tmp/o.sock" --state-dir "$tmp/theirs" >"$tmp/open.out" 2>&1
    check "another user's state directory is refused (exit 1)" test "$?" = 1
    check "... saying why" grep -q "belongs to uid 65534" "$tmp/open.out"
fi

# ---------------------------------------------------------------------------------------------
# A daemon whose binary and supervisor binary (rxjob-shim, next to it) are removed (or replaced,
# as a rebuild does) while it runs still starts its tasks' supervisors: it opened rxjob-shim at
# start and runs that file.

if [[ $executor == local ]]; then
    mkdir -p "$tmp/copy"
    cp "$rxjobd" "$tmp/copy/rxjobd-copy"
    cp "$(dirname "$rxjobd")/rxjob-shim" "$tmp/copy/rxjob-shim"
    RXJOBD_SHIM= "$tmp/copy/rxjobd-copy" --foreground --socket "$tmp/c.sock" --state-dir "$tmp/cstate" \
        2>"$tmp/copy.log" &
    copy_pid=$!
    rx_pids+=("$copy_pid")
    check "a copy of rxjobd serves" wait_answer "$tmp/c.sock"
    rm -f "$tmp/copy/rxjobd-copy" "$tmp/copy/rxjob-shim"
    SOCK=$tmp/c.sock api POST /v1/jobs \
        "{\"work\": {\"kind\": \"command\", \"argv_b64\": [\"$(b64 true)\"]}, \"times_to_run\": 3}"
    expect "submit to a daemon whose binary is gone" 201
    copy_job=$(job_id)
    SOCK=$tmp/c.sock api GET "/v1/jobs/${copy_job:-0}/wait?timeout_s=30"
    expect "its tasks still run: FINISHED" 200 '"status":"FINISHED"' '"ok":3'
    kill -TERM "$copy_pid"
    wait "$copy_pid"
    check "the daemon whose binary is gone stops with status 0" test "$?" = 0
fi

# Without its supervisor binary the daemon refuses to start, saying which file it looked for.
RXJOBD_SHIM=$tmp/no-such-shim timeout 20 "$rxjobd" --foreground --socket "$tmp/n.sock" \
    --state-dir "$tmp/nstate" >"$tmp/noshim.out" 2>&1
check "no supervisor binary: the daemon exits 1" test "$?" = 1
check "... saying which file" grep -q "the task supervisor '$tmp/no-such-shim' cannot be found" \
    "$tmp/noshim.out"
# A script as the supervisor would lose every task without a word (it runs from a close-on-exec
# fd its interpreter cannot open): the daemon refuses it at start, and says why.
printf '#!/bin/sh\nexec %s "$@"\n' "$(dirname "$rxjobd")/rxjob-shim" >"$tmp/shim-script"
chmod +x "$tmp/shim-script"
RXJOBD_SHIM=$tmp/shim-script timeout 20 "$rxjobd" --foreground --socket "$tmp/n.sock" \
    --state-dir "$tmp/nstate" >"$tmp/scriptshim.out" 2>&1
check "a script as the supervisor: the daemon exits 1" test "$?" = 1
check "... saying it is not an ELF executable" grep -q \
    "the task supervisor '$tmp/shim-script' is not an ELF executable" "$tmp/scriptshim.out"
# `rxjobd --shim` (what Slurm scripts of older daemons run) executes rxjob-shim.
timeout 20 "$rxjobd" --shim >"$tmp/alias.out" 2>&1
check "rxjobd --shim runs rxjob-shim (its usage, exit 2)" test "$?" = 2
check "... whose usage names it" grep -q "usage: rxjob-shim" "$tmp/alias.out"

# ---------------------------------------------------------------------------------------------
# One daemon per socket, one per state directory.

"$rxjobd" --foreground --socket "$sock" --state-dir "$tmp/other" >"$tmp/second.out" 2>&1
rc=$?
check "second daemon on the socket exits 1" test "$rc" = 1
check "second daemon on the socket says why" \
    grep -qF "rxjobd: another rxjobd is already serving $sock (pid $daemon)" "$tmp/second.out"

"$rxjobd" --foreground --socket "$tmp/e.sock" --state-dir "$state" >"$tmp/third.out" 2>&1
rc=$?
check "second daemon on the state directory exits 1" test "$rc" = 1
check "second daemon on the state directory says why" \
    grep -qF "another rxjobd (pid $daemon) is using the state directory" "$tmp/third.out"
check "no socket left by the refused daemon" test ! -e "$tmp/e.sock"

# A daemonized rxjobd: returns once serving, prints nothing; stopped over HTTP.
"$rxjobd" --socket "$tmp/bg.sock" --state-dir "$tmp/bg" >"$tmp/bg.out" 2>&1
rc=$?
check "daemonized start exits 0" test "$rc" = 0
check "daemonized start prints nothing" test ! -s "$tmp/bg.out"
SOCK=$tmp/bg.sock api GET /v1/daemon
expect "daemonized rxjobd answers at once" 200 '"pid":'
bg_pid=$(sed -n 's/.*"pid":\([0-9][0-9]*\).*/\1/p' <<<"$body")
[[ -n $bg_pid ]] && rx_pids+=("$bg_pid")
check "daemonized rxjobd logs to its state directory" test -s "$tmp/bg/rxjobd.log"
SOCK=$tmp/bg.sock api POST /v1/daemon/stop
expect "stop over HTTP" 200 '{"stopping":true}'
for _ in $(seq 100); do [[ -e $tmp/bg.sock ]] || break; sleep 0.1; done
check "stopped daemon removed its socket" test ! -e "$tmp/bg.sock"
if [[ -n ${bg_pid:-} ]]; then
    for _ in $(seq 100); do kill -0 "$bg_pid" 2>/dev/null || break; sleep 0.1; done
    check "stopped daemon exited" bash -c "! kill -0 $bg_pid 2>/dev/null"
fi

# ---------------------------------------------------------------------------------------------
# SIGTERM, then a stale socket.

# alive PID: the process exists and is not a zombie.
alive() {
    local st
    st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)
    [[ -n $st && $st != Z ]]
}
kill -TERM "$daemon"
for _ in $(seq 150); do alive "$daemon" || break; sleep 0.1; done
if alive "$daemon"; then
    fail "SIGTERM: the daemon did not stop within 15 s"
    kill -KILL "$daemon"
fi
wait "$daemon"
rc=$?
check "SIGTERM: exit status 0" test "$rc" = 0
check "SIGTERM: socket removed" test ! -e "$sock"

"$rxjobd" --foreground --socket "$sock" --state-dir "$state" 2>>"$tmp/daemon.log" &
daemon=$!
rx_pids+=("$daemon")
check "restart on the same state directory" wait_answer
# A task that runs while the daemon is killed is adopted by the next daemon, whose engine says
# so in its log ("rxjobd: info: engine: ...").
api POST /v1/jobs "{\"work\": {\"kind\": \"command\", \"argv_b64\": [\"$(b64 sleep)\", \"$(b64 30)\"]}}"
expect "submit a job to adopt" 201
adopt=$(job_id)
adopt=${adopt:-0}
for _ in $(seq 100); do
    api GET "/v1/jobs/$adopt"
    [[ $body == *'"running":1'* ]] && break
    sleep 0.1
done
expect "the job to adopt runs" 200 '"running":1'
{
    kill -KILL "$daemon"
    wait "$daemon"
} 2>/dev/null
check "SIGKILL leaves a stale socket" test -S "$sock"
"$rxjobd" --foreground --socket "$sock" --state-dir "$state" 2>"$tmp/stale.log" &
daemon=$!
rx_pids+=("$daemon")
check "a stale socket is replaced" wait_answer
check "the stale socket removal is logged" grep -q "removed stale socket" "$tmp/stale.log"
check "the engine's messages are logged (adopted task)" \
    grep -q "^rxjobd: info: engine: adopted task 0 of job $adopt " "$tmp/stale.log"
api POST "/v1/jobs/$adopt/cancel"
expect "cancel the adopted job" 200 '"canceled":true'
api GET "/v1/jobs/$adopt/wait?timeout_s=30"
expect "the adopted job is canceled" 200 '"status":"CANCELED"'
kill -TERM "$daemon"
wait "$daemon"
check "second SIGTERM: exit status 0" test "$?" = 0

if ! rx_test_end; then
    echo "check_daemon: daemon log:" >&2
    tail -n 50 "$tmp/daemon.log" >&2
    exit 1
fi
