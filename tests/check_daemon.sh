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
#     the 64 MiB limit; the daemon must still answer after all of them;
#   - a second rxjobd on the same socket (exit 1, "another rxjobd is already serving ..."), and on
#     the same state directory (exit 1, lock message);
#   - a daemonized rxjobd (returns only once it serves, printing nothing), stopped over HTTP;
#   - SIGTERM stops the foreground daemon with status 0 and removes its socket; a socket left
#     by a daemon killed with SIGKILL is stale and the next daemon replaces it.
# Every check counts once; the script ends with "check_daemon: N passed, M failed" and exits
# non-zero if M > 0. It kills only the daemons it started (trap on EXIT).
set -uo pipefail
export LC_ALL=C

build_dir=${1:?usage: check_daemon.sh BUILD_DIR}
rxjobd=$build_dir/rxjobd
if [[ ! -x $rxjobd ]]; then
    echo "check_daemon: $rxjobd is missing; build first" >&2
    exit 1
fi

# A short path: a Unix socket's path must fit in 108 bytes.
tmp=$(mktemp -d /tmp/rxck.XXXXXX)
sock=$tmp/d.sock
state=$tmp/state
pids=() # every daemon this script started, to stop at exit

passed=0
failed=0

cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$pid" 2>/dev/null
        fi
    done
    rm -rf -- "$tmp"
}
trap cleanup EXIT

pass() {
    passed=$((passed + 1))
}

fail() {
    failed=$((failed + 1))
    echo "check_daemon: FAIL: $*" >&2
}

# check DESCRIPTION COMMAND...: one check, passed when the command succeeds.
check() {
    local what=$1
    shift
    if "$@"; then pass; else fail "$what"; fi
}

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

"$rxjobd" --foreground --socket "$sock" --state-dir "$state" --slots 2 --grace-ms 200 \
    2>"$tmp/daemon.log" &
daemon=$!
pids+=("$daemon")
if ! wait_answer; then
    echo "check_daemon: rxjobd did not answer on $sock; its log:" >&2
    cat "$tmp/daemon.log" >&2
    exit 1
fi
pass
expect "daemon status" 200 "\"pid\":$daemon" '"version":"' '"executor":"local"' '"slots":2' \
    "\"socket\":\"$sock\"" '"hold":false' '"jobs":{'
check "socket mode 0600" test "$(stat -c %a "$sock")" = 600

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
expect "results" 200 "\"job\":{\"id\":$id," '"slots":[{"state":"OK","value_b64":"cg=="}]'

api GET "/v1/jobs/$id"
expect_error "status after results" 404 RX_ENOENT
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
expect "results without cleanup" 200 '"value_b64":""'
api GET "/v1/jobs/$quick"
expect "still there after results without cleanup" 200 '"status":"FINISHED"'
api DELETE "/v1/jobs/$quick?force=1"
expect "cleanup with force" 200 '{"cleaned":true}'

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
head -c $((64 * 1024 * 1024 + 1)) /dev/zero | tr '\0' ' ' >"$tmp/big"
code=$(curl -sS --max-time 90 --unix-socket "$sock" -X POST --data-binary @"$tmp/big" \
    -o "$tmp/body" -w '%{http_code}' http://localhost/v1/jobs 2>"$tmp/curl.err") || true
body=$(cat "$tmp/body" 2>/dev/null || true)
expect_error "body over 64 MiB" 413 RX_ETOOBIG
code=$(curl -sS --max-time 90 --unix-socket "$sock" -X POST -H 'Transfer-Encoding: chunked' \
    --data-binary @"$tmp/big" -o "$tmp/body" -w '%{http_code}' http://localhost/v1/jobs \
    2>"$tmp/curl.err") || true
body=$(cat "$tmp/body" 2>/dev/null || true)
expect_error "chunked body over 64 MiB" 413 RX_ETOOBIG
rm -f "$tmp/big"

api GET /v1/daemon
expect "the daemon still answers after bad input" 200 "\"pid\":$daemon"

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
[[ -n $bg_pid ]] && pids+=("$bg_pid")
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

kill -TERM "$daemon"
wait "$daemon"
rc=$?
check "SIGTERM: exit status 0" test "$rc" = 0
check "SIGTERM: socket removed" test ! -e "$sock"

"$rxjobd" --foreground --socket "$sock" --state-dir "$state" 2>>"$tmp/daemon.log" &
daemon=$!
pids+=("$daemon")
check "restart on the same state directory" wait_answer
{
    kill -KILL "$daemon"
    wait "$daemon"
} 2>/dev/null
check "SIGKILL leaves a stale socket" test -S "$sock"
"$rxjobd" --foreground --socket "$sock" --state-dir "$state" 2>"$tmp/stale.log" &
daemon=$!
pids+=("$daemon")
check "a stale socket is replaced" wait_answer
check "the stale socket removal is logged" grep -q "removed stale socket" "$tmp/stale.log"
kill -TERM "$daemon"
wait "$daemon"
check "second SIGTERM: exit status 0" test "$?" = 0

echo "check_daemon: $passed passed, $failed failed"
if [[ $failed -gt 0 ]]; then
    echo "check_daemon: daemon log:" >&2
    tail -n 50 "$tmp/daemon.log" >&2
    exit 1
fi
exit 0
