#!/usr/bin/env bash
# check_bytes.sh - bytes that are not text (NUL, control bytes, invalid UTF-8, newlines, empty
# strings) round-trip byte for byte through the CLI, the library, the JSON protocol and the
# daemon, against a real daemon (docs/protocol.md "Bytes", docs/rxjob.1 "BYTES"):
#   1. a task's console output: `rxjob output` to a pipe is the task's bytes, raw (cmp with the
#      same command run directly), after the "==> task 0 <==" header;
#   2. argv: a task writes its argv with printf '%s\0' as its result; `rxjob results` (raw) and
#      `rxjob --json results` (value_b64) give exactly the bytes the shell would have written;
#      the same for a task argument (--elem) and for an environment value;
#   3. messages quoting such bytes (a daemon's reason, a task's error) reach the terminal with
#      control and non-UTF-8 bytes escaped as \xNN, and the daemon answers them as valid JSON.
#
# Usage: bash tests/check_bytes.sh BUILD_DIR
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"
rx_test_init check_bytes "${1:-}"

# same WHAT FILE_A FILE_B: byte-identical.
same() {
    if cmp -s "$2" "$3"; then
        pass
    else
        fail "$1: the bytes differ:"
        od -c "$2" | head -5
        echo "  vs"
        od -c "$3" | head -5
    fi
}

rx_start_daemon --slots 2

# --- 1. console output ----------------------------------------------------------------------
fmt='a\0b\377\033[31m\r\n\001\177 \303\251 \300\257 end'
printf "$fmt" >"$tmp/direct"
{
    printf '==> task 0 <==\n'
    printf "$fmt"
} >"$tmp/want.output"
id=$(rx exec --no-auto-cleanup -- printf "$fmt")
rx wait "$id" >/dev/null
rx output "$id" >"$tmp/got.output"
same "rxjob output (printf)" "$tmp/want.output" "$tmp/got.output"
rx --json output "$id" >"$tmp/output.json"
sed -n 's/.*"output_b64": *"\([^"]*\)".*/\1/p' "$tmp/output.json" | base64 -d >"$tmp/got.output64"
same "rxjob --json output (output_b64)" "$tmp/want.output" "$tmp/got.output64"
# 256 bytes, every value, through a task that copies its stdin... the CLI has no stdin: a file.
head -c 0 /dev/null >"$tmp/all"
for i in $(seq 0 255); do printf "\\$(printf %o "$i")" >>"$tmp/all"; done
[[ $(stat -c %s "$tmp/all") == 256 ]] || fail "the 256-byte file has $(stat -c %s "$tmp/all") bytes"
id=$(rx exec --no-auto-cleanup -- cat "$tmp/all")
rx wait "$id" >/dev/null
{
    printf '==> task 0 <==\n'
    cat "$tmp/all"
} >"$tmp/want.all"
rx output "$id" >"$tmp/got.all"
same "rxjob output (all 256 byte values)" "$tmp/want.all" "$tmp/got.all"
rx cleanup --force "$id" >/dev/null 2>&1 || true

# --- 2. argv, task arguments and environment, as a result -----------------------------------
args=($'\001\002\003\004\005\006\a\b\t\n\v\f\r\016\017\020\021\022\023\024\025\026\027\030\031\032\e\034\035\036\037'
    $'\177' $'\377' $'\xc3\x28' $'\xed\xa0\x80' $'line1\nline2' '' ' spaced  out ' $'caf\xc3\xa9' '%s%n' '-' '--')
printf '%s\0' "${args[@]}" >"$tmp/want.argv"
script='printf "%s\0" "$@" >"$RXJOB_RESULT"'
id=$(rx exec --no-auto-cleanup -- sh -c "$script" sh "${args[@]}")
rx wait "$id" >/dev/null
rx --json results --keep "$id" >"$tmp/results.json"
sed -n 's/.*"value_b64": *"\([^"]*\)".*/\1/p' "$tmp/results.json" | base64 -d >"$tmp/got.argv"
same "argv through --json results (value_b64)" "$tmp/want.argv" "$tmp/got.argv"
rx results "$id" >"$tmp/got.argv.raw"
printf '\n' >>"$tmp/want.argv" # rxjob results ends a value without a newline with one
same "argv through rxjob results (raw)" "$tmp/want.argv" "$tmp/got.argv.raw"

# A task argument (--elem) goes into argv as it is: one task per argument, each printing it.
elem_args=()
for a in "${args[@]}"; do
    elem_args+=(--elem "$a")
done
id=$(rx exec --no-auto-cleanup "${elem_args[@]}" -- sh -c 'printf "%s" "$1" >"$RXJOB_RESULT"' sh '{}')
rx wait "$id" >/dev/null
rx --json results "$id" >"$tmp/elems.json"
i=0
for a in "${args[@]}"; do
    printf '%s' "$a" >"$tmp/want.elem"
    tr -d ' \n' <"$tmp/elems.json" | grep -o '"index":'"$i"',[^}]*' |
        sed -n 's/.*"value_b64":"\([^"]*\)".*/\1/p' | base64 -d >"$tmp/got.elem"
    same "task argument $i" "$tmp/want.elem" "$tmp/got.elem"
    i=$((i + 1))
done

# Environment values (the library sends the caller's environment with the job).
env_value=$'\001\033[2J\377\xc3\x28 new\nline\t\177 end'
id=$(TEST_BYTES_VALUE="$env_value" rx exec --no-auto-cleanup -- \
    sh -c 'printf "%s" "$TEST_BYTES_VALUE" >"$RXJOB_RESULT"')
rx wait "$id" >/dev/null
rx --json results "$id" | sed -n 's/.*"value_b64": *"\([^"]*\)".*/\1/p' | base64 -d >"$tmp/got.env"
printf '%s' "$env_value" >"$tmp/want.env"
same "environment value" "$tmp/want.env" "$tmp/got.env"
# An empty value stays set and empty.
id=$(TEST_BYTES_EMPTY= rx exec --no-auto-cleanup -- \
    sh -c 'printf "%s" "${TEST_BYTES_EMPTY-unset}" >"$RXJOB_RESULT"')
rx wait "$id" >/dev/null
if [[ $(rx results "$id") == "" ]]; then pass; else fail "an empty environment value: $(rx results "$id")"; fi

# --- 3. messages: escaped on the terminal, valid JSON on the wire ----------------------------
# A task's error text is the daemon's ("exit status 3"); a daemon's reason can quote a path.
bad_cwd=$(printf '/no\033[31mpe\377' | base64 -w0)
code=$(curl -sS --max-time 30 --unix-socket "$sock" -X POST \
    --data-binary '{"work":{"kind":"command","argv_b64":["dHJ1ZQ=="],"cwd_b64":"'"$bad_cwd"'"}}' \
    -o "$tmp/body" -w '%{http_code}' http://localhost/v1/jobs 2>"$tmp/curl.err") || true
if [[ $code == 400 ]] && grep -qF '"message":"cwd '\''/no\u001B[31mpe\\xff'\'' is not a directory"' "$tmp/body"; then
    pass
else
    fail "a reason quoting non-UTF-8 bytes: HTTP $code, body: $(cat "$tmp/body" 2>/dev/null) $(cat "$tmp/curl.err")"
fi
# A field name cut at 64 bytes in the middle of a UTF-8 sequence.
key=$(printf 'k%.0s' $(seq 63))$'\xc3\xa9'
code=$(curl -sS --max-time 30 --unix-socket "$sock" -X POST --data-binary "{\"$key\":1}" \
    -o "$tmp/body" -w '%{http_code}' http://localhost/v1/jobs 2>"$tmp/curl.err") || true
if [[ $code == 400 ]] && grep -qF '\xc3'"'" "$tmp/body"; then
    pass
else
    fail "a field name cut inside a UTF-8 sequence: HTTP $code, body: $(cat "$tmp/body" 2>/dev/null) $(cat "$tmp/curl.err")"
fi
# A failed task's console output (its stderr here) is raw in rxjob output.
id=$(rx exec --no-auto-cleanup -- sh -c 'printf "\033[31mred\377\n" >&2; exit 3')
rx wait "$id" >/dev/null 2>&1 || true
rx output "$id" >"$tmp/got.err.output"
{
    printf '==> task 0 <==\n'
    printf '\033[31mred\377\n'
} >"$tmp/want.err.output"
same "stderr of a failed task in rxjob output (raw)" "$tmp/want.err.output" "$tmp/got.err.output"
# The ESC-escaping itself: a usage error quoting the argument.
rc=0
rx status "$(printf '1\033[2J\377')" >/dev/null 2>"$tmp/err" || rc=$?
if [[ $rc == 2 ]] && ! grep -q $'\033' "$tmp/err" && grep -qF '1\x1b[2J\xff' "$tmp/err"; then
    pass
else
    fail "a usage error quoting control bytes: exit $rc: $(od -c "$tmp/err" | head -3)"
fi

rx_test_end
