#!/usr/bin/env bash
# check_limits.sh - every submit-time limit of rxjobd (docs/protocol.md "Limits") provoked once,
# against a real daemon started with small limits (rxjobd --limit NAME=VALUE):
#   - the refusal names the limit and its value, with its HTTP status (413 for the size limits,
#     429 for queued_jobs_per_user) and error name (RX_ETOOBIG, RX_ELIMIT), and the CLI exits
#     with its status (2, 9);
#   - nothing was created: the job list and the spool directory are unchanged;
#   - the daemon keeps serving: a normal job runs after each refusal.
# Also: GET /v1/daemon and `rxjob daemon status` show every limit, and bad --limit values stop
# rxjobd at start with exit status 2 and a reason.
#
# Usage: bash tests/check_limits.sh BUILD_DIR
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"
rx_test_init check_limits "${1:-}"

# The library sends the caller's environment with each job: a small, fixed one keeps the
# bodies of normal jobs within the small limits below.
rx() { env -i PATH=/usr/bin:/bin "$rxjob" --url "unix:$sock" "$@"; }

api() {
    local method=$1 path=$2
    local -a data=()
    if [[ $# -ge 3 ]]; then data=(--data-binary "@$3" -H 'Content-Type: application/json'); fi
    code=$(curl -sS --max-time 60 --unix-socket "$sock" -X "$method" "${data[@]}" \
        -o "$tmp/body" -w '%{http_code}' "http://localhost$path" 2>"$tmp/curl.err") || true
    body=$(cat "$tmp/body" 2>/dev/null || true)
    rm -f "$tmp/body"
}

b64() { printf '%s' "$1" | base64 -w0; }

# --- bad --limit values: refused at start ------------------------------------------------
for bad_limit in argv_count=x no_such=1 queued_jobs_per_user=0 argv_bytes=1T argv_count; do
    rc=0
    "$rxjobd" --foreground --socket "$tmp/never.sock" --state-dir "$tmp/never" \
        --limit "$bad_limit" 2>"$tmp/start.err" || rc=$?
    if [[ $rc == 2 ]] && grep -q "rxjobd: --limit " "$tmp/start.err"; then
        pass
    else
        fail "--limit $bad_limit: exit $rc, want 2 with a reason: $(cat "$tmp/start.err")"
    fi
done

# --- a daemon with small limits ------------------------------------------------------------
"$rxjobd" --foreground --socket "$sock" --state-dir "$state" --slots 2 \
    --limit argv_count=4 --limit argv_bytes=64 --limit env_count=2 --limit env_bytes=32 \
    --limit stdin_bytes=8 --limit tasks_per_job=3 --limit queued_jobs_per_user=2 \
    --limit body_bytes=1K --limit output_bytes=1M --limit result_bytes=1M \
    2>>"$tmp/rxjobd.log" &
daemon_pid=$!
for _ in $(seq 1 200); do
    api GET /v1/daemon
    [[ $code == 200 ]] && break
    sleep 0.05
done
[[ $code == 200 ]] || {
    echo "rxjobd did not answer; its log:"
    cat "$tmp/rxjobd.log"
    exit 1
}

# GET /v1/daemon shows every limit, with its value and unit.
for want in '"argv_count":{"value":4,"unit":"elements"}' '"argv_bytes":{"value":64,"unit":"bytes"}' \
    '"env_count":{"value":2,"unit":"entries"}' '"env_bytes":{"value":32,"unit":"bytes"}' \
    '"stdin_bytes":{"value":8,"unit":"bytes"}' '"tasks_per_job":{"value":3,"unit":"tasks"}' \
    '"queued_jobs_per_user":{"value":2,"unit":"jobs"}' '"body_bytes":{"value":1024,"unit":"bytes"}' \
    '"output_bytes":{"value":1048576,"unit":"bytes"}' '"result_bytes":{"value":1048576,"unit":"bytes"}'; do
    if [[ $body == *"$want"* ]]; then pass; else fail "GET /v1/daemon lacks $want: $body"; fi
done
status_out=$(rx daemon status)
for want in "argv_count             4 elements" "queued_jobs_per_user   2 jobs" \
    "body_bytes             1024 bytes" "output_bytes           1048576 bytes"; do
    if [[ $status_out == *"$want"* ]]; then pass; else fail "rxjob daemon status lacks '$want': $status_out"; fi
done
if rx --json daemon status | tr -d ' \n' | grep -qF '"tasks_per_job":{"value":3,"unit":"tasks"}'; then
    pass
else
    fail "rxjob --json daemon status lacks tasks_per_job: $(rx --json daemon status)"
fi

# snapshot: the job list and the spool directories, which a refusal must leave unchanged.
snapshot() {
    {
        rx --json jobs
        ls "$state/spool"
    } 2>&1
}

# a normal job runs to the end (the daemon keeps serving).
normal_job() {
    local what=$1 out
    if out=$(rx exec --wait -- true 2>&1); then pass; else fail "$what: a normal job after it: $out"; fi
}

# refused_cli WHAT WANT_EXIT WANT_MESSAGE CLI-ARGS...: the CLI exits WANT_EXIT with the message.
refused_cli() {
    local what=$1 want_rc=$2 want_msg=$3
    shift 3
    local before after rc=0
    before=$(snapshot)
    rx "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
    after=$(snapshot)
    if [[ $rc != "$want_rc" ]]; then
        fail "$what: exit $rc, want $want_rc; stderr: $(cat "$tmp/err")"
    elif ! grep -qF -- "$want_msg" "$tmp/err"; then
        fail "$what: stderr lacks '$want_msg': $(cat "$tmp/err")"
    elif [[ $before != "$after" ]]; then
        fail "$what: something was created: before [$before] after [$after]"
    else
        pass
    fi
    [[ ${skip_normal:-0} == 1 ]] || normal_job "$what"
}

# refused_api WHAT WANT_CODE WANT_ERROR WANT_MESSAGE BODY: the same over HTTP (curl).
refused_api() {
    local what=$1 want_code=$2 want_err=$3 want_msg=$4 before after
    printf '%s' "$5" >"$tmp/req.json"
    before=$(snapshot)
    api POST /v1/jobs "$tmp/req.json"
    after=$(snapshot)
    if [[ $code != "$want_code" ]]; then
        fail "$what: HTTP $code, want $want_code: $body"
    elif [[ $body != *"\"error\":\"$want_err\""* || $body != *"$want_msg"* ]]; then
        fail "$what: body lacks $want_err / '$want_msg': $body"
    elif [[ $before != "$after" ]]; then
        fail "$what: something was created: before [$before] after [$after]"
    else
        pass
    fi
    [[ ${skip_normal:-0} == 1 ]] || normal_job "$what"
}

normal_job "before any refusal"

# argv_count: 5 elements > 4.
refused_cli argv_count 2 "argv_count limit exceeded: 5 > 4 elements (rxjobd --limit argv_count=...)" \
    exec -- true a b c d
# argv_bytes: "printf" + 60 bytes = 66 > 64.
refused_cli argv_bytes 2 "argv_bytes limit exceeded: 66 > 64 bytes (rxjobd --limit argv_bytes=...)" \
    exec -- printf "$(head -c 60 /dev/zero | tr '\0' x)"
# tasks_per_job: 4 tasks > 3, by --times and by --elem.
refused_cli "tasks_per_job (--times)" 2 "tasks_per_job limit exceeded: 4 > 3 tasks" \
    exec --times 4 -- true
refused_cli "tasks_per_job (--elem)" 2 "tasks_per_job limit exceeded: 4 > 3 tasks" \
    exec --elem 1 --elem 2 --elem 3 --elem 4 -- echo
# The CLI sends no environment or stdin of its own: those limits over HTTP.
argv='"argv_b64":["'$(b64 true)'"]'
refused_api env_count 413 RX_ETOOBIG "env_count limit exceeded: 3 > 2 entries (rxjobd --limit env_count=...)" \
    '{"work":{"kind":"command",'"$argv"',"env_b64":["'$(b64 A=1)'","'$(b64 B=2)'","'$(b64 C=3)'"]}}'
refused_api env_bytes 413 RX_ETOOBIG "env_bytes limit exceeded: 33 > 32 bytes (rxjobd --limit env_bytes=...)" \
    '{"work":{"kind":"command",'"$argv"',"env_b64":["'$(b64 A=1234567890123456789012345678901)'"]}}'
refused_api stdin_bytes 413 RX_ETOOBIG "stdin_bytes limit exceeded: 9 > 8 bytes (rxjobd --limit stdin_bytes=...)" \
    '{"work":{"kind":"command",'"$argv"',"stdin_b64":"'$(b64 123456789)'"}}'
refused_api tasks_per_job 413 RX_ETOOBIG "tasks_per_job limit exceeded: 5 > 3 tasks" \
    '{"work":{"kind":"command",'"$argv"'},"times_to_run":5}'
refused_api argv_count 413 RX_ETOOBIG "argv_count limit exceeded: 5 > 4 elements" \
    '{"work":{"kind":"command","argv_b64":["dA==","dA==","dA==","dA==","dA=="]}}'
# body_bytes: 1025 bytes > 1024 (valid JSON, padded with blanks), and an argument of the CLI
# that makes the body too big.
big='{"work":{"kind":"command",'"$argv"'}}'
big=$big$(printf '%*s' $((1025 - ${#big})) '')
[[ ${#big} == 1025 ]] || fail "the big body has ${#big} bytes, want 1025"
printf '%s\n' "$big" >"$tmp/big.json"
refused_api body_bytes 413 RX_ETOOBIG "body_bytes limit exceeded: 1025 > 1024 bytes (rxjobd --limit body_bytes=...)" "$big"
refused_cli "body_bytes (CLI)" 2 "body_bytes limit exceeded:" \
    exec --elems-from "$tmp/big.json" -- echo

# queued_jobs_per_user: 2 jobs not yet ended; a third is refused with 429, exit 9, until one ends.
id1=$(rx exec -- sleep 30)
id2=$(rx exec -- sleep 30)
skip_normal=1 refused_cli "queued_jobs_per_user (CLI)" 9 \
    "queued_jobs_per_user limit exceeded: 3 > 2 jobs (rxjobd --limit queued_jobs_per_user=...)" \
    exec -- true
if grep -qF "HTTP 429" "$tmp/err"; then pass; else fail "queued_jobs_per_user: no HTTP 429: $(cat "$tmp/err")"; fi
skip_normal=1 refused_api queued_jobs_per_user 429 RX_ELIMIT \
    "queued_jobs_per_user limit exceeded: 3 > 2 jobs" '{"work":{"kind":"command",'"$argv"'}}'
rx cancel "$id1" >/dev/null
rx wait "$id1" >/dev/null 2>&1 || true
normal_job "after one of the 2 jobs ended"
rx cancel "$id2" >/dev/null
rx wait "$id2" >/dev/null 2>&1 || true
normal_job "after both ended"

# Still serving, and nothing stranded in the log.
api GET /v1/daemon
if [[ $code == 200 ]]; then pass; else fail "the daemon stopped answering: $code"; fi

rx_test_end
