#!/usr/bin/env bash
# check_tcp.sh BUILD_DIR - rxjobd over TCP (rxjobd --listen), end to end, on loopback only.
#
# With a self-signed certificate (openssl) and a token file in a temporary directory:
#   - rxjobd refuses to start (exit 2, a message saying what is missing) on 0.0.0.0 without TLS
#     and tokens, with TLS but no tokens, with tokens but no TLS; on 127.0.0.1 without tokens;
#     with a token file open to others, a key that is not the certificate's, a name instead of
#     an address; and, as another user than root, with a token mapped to a user not its own;
#   - with both on 127.0.0.1: a request without a token, or with a wrong one, gets 401 with
#     "WWW-Authenticate: Bearer" and the protocol's error body, and nothing runs (a job that
#     would create a file does not, the job list over the Unix socket stays empty, the daemon
#     counted no submission); a 100 MB unauthenticated POST gets 401 within seconds, with or
#     without "Expect: 100-continue", and the daemon's peak RSS barely moves;
#   - with the right token: rxjob --url https://127.0.0.1:P exec --wait works, and so does the
#     C API (examples/hello_remote URL, rx_server_context("https://...")); tokens of two users
#     see only their own jobs (when run as root: two tokens, two uids);
#   - plain http:// to the TLS port fails; the client refuses a token file of mode 0644 (and
#     sends nothing), an http:// url, a missing token; with the wrong CA it names the TLS
#     failure; the Unix socket keeps working alongside; "rxjob daemon stop" over https stops it;
#   - plain HTTP on loopback (tokens still required) for a TLS-terminating proxy; 64 idle
#     connections that never send a token are closed within 30 s (the per-address cap frees);
#     [::1] works too when the host has IPv6 loopback; no sanitizer report in any daemon's log.
# Ends with "check_tcp: N passed, M failed"; exits non-zero if M > 0. Kills only the daemons it
# started (by pid) and removes its temporary directory.
# shellcheck disable=SC2016 # the tasks' shell code is single-quoted on purpose
set -uo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"
rx_test_init check_tcp "${1:-}"
hello=$build/examples/hello_remote
rx_need "$rxjob" "$rxjobd" "$hello" openssl curl
chmod 0755 "$tmp"
unset RXJOB_TOKEN RXJOB_TOKEN_FILE RXJOB_CA_FILE RXJOB_URL RXJOB_SOCKET
# Every daemon start() starts goes into rx_pids: lib.sh stops them at exit.

# has TEXT PATTERN: TEXT matches the extended regular expression PATTERN.
has() { grep -Eq -- "$2" <<<"$1"; }

# --- Certificates and tokens ------------------------------------------------------------------

# mkcert NAME [SAN]: NAME.pem and NAME.key, self-signed, for 127.0.0.1, ::1 and localhost.
mkcert() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj /CN=localhost -addext "subjectAltName=${2:-IP:127.0.0.1,IP:::1,DNS:localhost}" \
        -keyout "$tmp/$1.key" -out "$tmp/$1.pem" 2>"$tmp/openssl.err" ||
        { cat "$tmp/openssl.err" >&2; exit 1; }
}
mkcert server
mkcert other # another CA: the client must not trust the server with it
mkcert elsewhere DNS:elsewhere.example # names another host only

newtoken() { openssl rand -base64 33 | tr -d '\n'; } # 44 characters
tok_a=$(newtoken)
tok_b=$(newtoken)
tok_c=$(newtoken)
me=$(id -un)
if [[ $(id -u) == 0 ]] && id nobody >/dev/null 2>&1 && id daemon >/dev/null 2>&1; then
    multi_user=1
    printf '# rxjob test tokens\n%s %s\n%s nobody\n\n%s daemon\n' "$tok_a" "$me" "$tok_b" \
        "$tok_c" >"$tmp/tokens"
else
    multi_user=0
    printf '%s %s\n' "$tok_a" "$me" >"$tmp/tokens"
fi
chmod 600 "$tmp/tokens"
for t in a b c; do
    v=tok_$t
    printf '%s\n' "${!v}" >"$tmp/token_$t"
    chmod 600 "$tmp/token_$t"
done

# --- Refusals: exit 2 before anything starts --------------------------------------------------

# refuses DESCRIPTION PATTERN RXJOBD-ARGS...: rxjobd exits 2, says PATTERN, leaves no socket.
refuses() {
    local what=$1 pattern=$2 rc
    shift 2
    rm -rf "$tmp/r"
    mkdir -p "$tmp/r"
    timeout 20 "$rxjobd" --foreground --state-dir "$tmp/r/state" --socket "$tmp/r/s.sock" "$@" \
        >"$tmp/r.out" 2>&1
    rc=$?
    if [[ $rc == 2 ]] && grep -q -- "$pattern" "$tmp/r.out" && [[ ! -e $tmp/r/s.sock ]]; then
        ok "refuses $what (exit 2): $(head -n 1 "$tmp/r.out")"
    else
        bad "$what: exit $rc, wanted 2 and '$pattern': $(cat "$tmp/r.out")"
    fi
}
tls=(--tls-cert "$tmp/server.pem" --tls-key "$tmp/server.key")
refuses "0.0.0.0 without TLS and tokens" "not a loopback address.*both are missing" \
    --listen 0.0.0.0:8443
refuses "0.0.0.0 with TLS but no tokens" "not a loopback address.*tokens are missing" \
    --listen 0.0.0.0:8443 "${tls[@]}"
refuses "0.0.0.0 with tokens but no TLS" "not a loopback address.*TLS is missing" \
    --listen 0.0.0.0:8443 --tokens "$tmp/tokens"
refuses "[::] with tokens but no TLS" "not a loopback address.*TLS is missing" \
    --listen '[::]:8443' --tokens "$tmp/tokens"
refuses "127.0.0.1 without tokens" "needs --tokens FILE" --listen 127.0.0.1:8443 "${tls[@]}"
refuses "--tokens without --listen" "go with --listen" --tokens "$tmp/tokens"
refuses "two --listen" "one address only" --listen 127.0.0.1:8443 --listen '[::1]:8443' \
    --tokens "$tmp/tokens" "${tls[@]}"
refuses "--tls-cert without --tls-key" "go together" --listen 127.0.0.1:8443 \
    --tokens "$tmp/tokens" --tls-cert "$tmp/server.pem"
refuses "a name instead of an address" "not a numeric IPv4 address" --listen localhost:8443 \
    --tokens "$tmp/tokens"
refuses "a key that is not the certificate's" "does not belong to the certificate" \
    --listen 127.0.0.1:8443 --tokens "$tmp/tokens" --tls-cert "$tmp/server.pem" \
    --tls-key "$tmp/other.key"
refuses "a certificate file that is no certificate" "no PEM certificate" \
    --listen 127.0.0.1:8443 --tokens "$tmp/tokens" --tls-cert "$tmp/server.key" \
    --tls-key "$tmp/server.key"
chmod 644 "$tmp/tokens"
refuses "a token file of mode 0644" "mode 0644.*chmod 600" --listen 127.0.0.1:8443 \
    --tokens "$tmp/tokens" "${tls[@]}"
chmod 600 "$tmp/tokens"
printf 'tooshort %s\n' "$me" >"$tmp/tokens_short"
chmod 600 "$tmp/tokens_short"
refuses "a token under 32 characters" "line 1: the token is not 32" --listen 127.0.0.1:8443 \
    --tokens "$tmp/tokens_short"
if [[ $(id -u) == 0 ]] && id nobody >/dev/null 2>&1; then
    # A daemon of another user (not root) serves its own user only.
    install -d -o nobody -m 0700 "$tmp/nb"
    printf '%s root\n' "$tok_a" >"$tmp/nb/tokens"
    chown nobody "$tmp/nb/tokens"
    chmod 600 "$tmp/nb/tokens"
    cp "$tmp/server.pem" "$tmp/server.key" "$tmp/nb/"
    chown nobody "$tmp/nb/server.pem" "$tmp/nb/server.key"
    rc=0
    (cd "$tmp/nb" && timeout 20 setpriv --reuid=nobody --regid=nogroup --clear-groups \
        env HOME="$tmp/nb" "$rxjobd" --foreground --state-dir "$tmp/nb/state" \
        --socket "$tmp/nb/s.sock" --listen 127.0.0.1:0 --tokens tokens --tls-cert server.pem \
        --tls-key server.key) >"$tmp/nb.out" 2>&1 || rc=$?
    if [[ $rc == 2 ]] && grep -q "user 'root' (uid 0) is not the daemon's user" "$tmp/nb.out"; then
        ok "a daemon run as nobody refuses a token mapped to root: $(cat "$tmp/nb.out")"
    else
        bad "daemon as nobody with a root token: exit $rc: $(cat "$tmp/nb.out")"
    fi
fi

# --- A daemon on 127.0.0.1 with TLS and tokens ------------------------------------------------

# start NAME ARGS...: start rxjobd (daemonized) with state and socket under $tmp/NAME; sets
# url and pid from its log line "started: pid N, ... listening on URL".
start() {
    local name=$1 log
    shift
    mkdir -p "$tmp/$name"
    if ! "$rxjobd" --state-dir "$tmp/$name/state" --socket "$tmp/$name/s.sock" "$@" \
        >"$tmp/$name.out" 2>&1; then
        return 1
    fi
    log=$tmp/$name/state/rxjobd.log
    pid=$(sed -n 's/.*started: pid \([0-9]*\),.*/\1/p' "$log" | tail -n 1)
    url=$(sed -n 's/.*listening on \(https*:[^ ,]*\).*/\1/p' "$log" | tail -n 1)
    [[ -n $pid ]] && rx_pids+=("$pid")
    [[ -n $pid && -n $url ]]
}

system=()
if [[ $multi_user == 1 ]]; then
    # Tokens of other users need --system (each task runs as its owner); without it a root
    # daemon would run their tasks as root, so it refuses to start.
    if start nosys --listen 127.0.0.1:0 --tokens "$tmp/tokens" "${tls[@]}"; then
        bad "a root daemon without --system accepted tokens of other users"
    else
        check "a root daemon without --system refuses tokens of other users: $(cat "$tmp/nosys.out")" \
            grep -q "tokens map to users other than this daemon's" "$tmp/nosys.out"
    fi
    system=(--system)
    chmod 0755 "$tmp" # system mode: the users' supervisors reach their job directories
fi
if ! start main --listen 127.0.0.1:0 --tokens "$tmp/tokens" "${tls[@]}" "${system[@]}"; then
    bad "rxjobd did not start: $(cat "$tmp/main.out" "$tmp/main/state/rxjobd.log" 2>/dev/null)"
    rx_test_end
    exit 1
fi
ok "rxjobd serves $url beside its socket (pid $pid)"
main_pid=$pid
sock=$tmp/main/s.sock
log=$tmp/main/state/rxjobd.log
port=${url##*:}
unix=(--url "unix:$sock")

# metric NAME: a counter of GET /metrics, asked over the Unix socket.
metric() {
    curl -sS --unix-socket "$sock" http://localhost/metrics | sed -n "s/^$1 //p"
}

# What a job that must never run would leave behind.
marker=$tmp/ran
job_body='{"work":{"kind":"command","argv_b64":["'$(printf touch | base64)'","'$(printf '%s' "$marker" | base64 -w0)'"]}}'

# http_as HEADER-ARGS...: curl over TLS to $url; prints "status" then the headers and body.
code=
req() {
    curl -sS -o "$tmp/body" -D "$tmp/headers" -w '%{http_code}' --cacert "$tmp/server.pem" "$@"
}

code=$(req -X POST -H 'Content-Type: application/json' --data "$job_body" "$url/v1/jobs")
if [[ $code == 401 ]] && grep -qi '^WWW-Authenticate: Bearer realm="rxjobd"' "$tmp/headers" &&
    grep -q '"error":"RX_EPERM"' "$tmp/body"; then
    ok "no token: 401, WWW-Authenticate: Bearer, $(cat "$tmp/body")"
else
    bad "no token: HTTP $code: $(cat "$tmp/headers" "$tmp/body")"
fi
code=$(req -X POST -H "Authorization: Bearer $(newtoken)" -H 'Content-Type: application/json' \
    --data "$job_body" "$url/v1/jobs")
if [[ $code == 401 ]] && grep -qi 'WWW-Authenticate: Bearer.*error="invalid_token"' "$tmp/headers"; then
    ok "a wrong token: 401 with error=\"invalid_token\""
else
    bad "a wrong token: HTTP $code: $(cat "$tmp/headers" "$tmp/body")"
fi
code=$(req -H "Authorization: Basic $(printf 'root:x' | base64)" "$url/v1/jobs")
check "Basic instead of Bearer: 401 (got $code)" test "$code" = 401
code=$(req -H "Authorization: Bearer ${tok_a}x" "$url/v1/daemon")
check "a token with one character more: 401 (got $code)" test "$code" = 401
code=$(req "$url/metrics")
check "even /metrics wants a token: 401 (got $code)" test "$code" = 401

# The 100 MB unauthenticated POST: answered before its body is read, at no memory cost.
head -c 100000000 /dev/zero >"$tmp/big"
hwm_before=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$main_pid/status")
# Announced (Content-Length, with and without Expect: 100-continue) and chunked (no length: an
# unauthenticated one would be read up to the 16 MiB limit before the 413).
# Without 100-continue the client is still sending when the 401 comes and the connection is
# closed: its kernel may then drop the 401 on the reset (curl exits 55 or 56). That is the
# client's loss, and fine as long as the daemon answered 401 at once: its counter says so.
for how in "Expect: 100-continue" "Expect:" "Transfer-Encoding: chunked"; do
    n_before=$(metric rxjobd_http_unauthorized_total)
    start_ns=$(date +%s%N)
    code=$(req -X POST -H "$how" -H 'Content-Type: application/json' -T "$tmp/big" \
        "$url/v1/jobs" 2>"$tmp/curl.err")
    rc=$?
    ms=$((($(date +%s%N) - start_ns) / 1000000))
    n_after=$(metric rxjobd_http_unauthorized_total)
    if [[ $ms -lt 20000 && $n_after == $((n_before + 1)) ]] &&
        [[ $code == 401 || ($how != "Expect: 100-continue" && ($rc == 55 || $rc == 56)) ]]; then
        ok "100 MB unauthenticated POST ($how): 401 in $ms ms (curl: HTTP $code, exit $rc)"
    else
        bad "100 MB unauthenticated POST ($how): HTTP $code, curl exit $rc in $ms ms, 401s counted $n_before -> $n_after: $(cat "$tmp/curl.err")"
    fi
done
hwm_after=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$main_pid/status")
if ((hwm_after - hwm_before < 8000)); then
    ok "the daemon's peak RSS moved by $((hwm_after - hwm_before)) kB ($hwm_before -> $hwm_after kB)"
else
    bad "the daemon's peak RSS grew by $((hwm_after - hwm_before)) kB: the body was read"
fi
# The control: the same chunked body over the Unix socket, where the caller is known, is read
# up to the limit, and the peak RSS shows it (so the measure above can see a body being read).
code=$(curl -sS -o /dev/null -w '%{http_code}' --unix-socket "$sock" -X POST \
    -H 'Transfer-Encoding: chunked' -H 'Expect:' -T "$tmp/big" http://localhost/v1/jobs 2>/dev/null)
hwm_ctl=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$main_pid/status")
if [[ $code == 413 ]] && ((hwm_ctl - hwm_after >= 8000)); then
    ok "control: read over the Unix socket to 413, the same body raises the peak RSS by $((hwm_ctl - hwm_after)) kB"
else
    bad "control: HTTP $code over the Unix socket, peak RSS $hwm_after -> $hwm_ctl kB"
fi
rm -f "$tmp/big"

sleep 1 # a job that had been taken would have started by now
check "nothing ran: no marker file" test ! -e "$marker"
jobs_json=$("$rxjob" "${unix[@]}" jobs --json 2>&1)
check "the job list over the Unix socket is empty: $jobs_json" \
    python3 -c 'import json,sys; sys.exit(0 if json.loads(sys.argv[1])["jobs"] == [] else 1)' \
    "$jobs_json"
check "the daemon counted no submission" test "$(metric rxjobd_submissions_total)" = 0
n401=$(metric rxjobd_http_unauthorized_total)
check "the daemon counted the 401s ($n401)" test "$n401" -ge 7
check "the log says 401 and names no job" \
    bash -c "grep -q '401 to 127.0.0.1' '$log' && ! grep -qi 'job [0-9]' '$log'"

# --- The right token -------------------------------------------------------------------------

export RXJOB_CA_FILE=$tmp/server.pem
out=$("$rxjob" --url "$url" --token-file "$tmp/token_a" exec --wait echo hi 2>&1)
rc=$?
check "rxjob --url $url exec --wait echo hi: exit $rc" test "$rc" = 0
out=$("$rxjob" --url "$url" --token-file "$tmp/token_a" exec --wait -- \
    sh -c 'echo "hi from $(id -un)" >"$RXJOB_RESULT"' 2>&1)
check "its result came back over https: '$out'" test "$out" = "hi from $(id -un)"
id_env=$(RXJOB_URL=$url RXJOB_TOKEN=$tok_a "$rxjob" exec --no-auto-cleanup -- true 2>&1)
id_last=$(RXJOB_TOKEN=$tok_a "$rxjob" --url "$url" jobs --json |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["jobs"][-1]["id"])' 2>/dev/null)
check "RXJOB_URL and RXJOB_TOKEN work as --url and a token file (job $id_env, listed $id_last)" \
    test -n "$id_env" -a "$id_env" = "$id_last"
RXJOB_TOKEN=$tok_a "$rxjob" --url "$url" cleanup --force "$id_env" >/dev/null 2>&1
out=$("$rxjob" --url "$url/" --token-file "$tmp/token_a" daemon status --json 2>&1)
check "daemon status over https" has "$out" '"version"'

# A body over 1 MiB (40 arguments of 60 000 bytes): accepted with the right token, and with a
# wrong one the 401 reaches the client (it waits for 100-continue over TCP, so the refusal is
# never lost in the reset of a connection still being written).
python3 -c 'print(("x" * 60000 + "\n") * 40, end="")' >"$tmp/elems"
out=$("$rxjob" --url "$url" --token-file "$tmp/token_a" exec --wait --elems-from "$tmp/elems" -- \
    sh -c 'printf %s "$1" | wc -c >"$RXJOB_RESULT"' sh '{}' 2>&1 | sort | uniq -c | tr -s ' ')
check "a 3 MB submission over https: 40 tasks, each got its 60000 bytes ('$out')" \
    test "$out" = " 40 60000"
for _ in $(seq 10); do
    out=$(RXJOB_TOKEN=$(newtoken) "$rxjob" --url "$url" exec --elems-from "$tmp/elems" -- true 2>&1)
    rc=$?
    has "$rc $out" "^8 .*the token is not one this daemon knows \(HTTP 401" || break
done
check "a 3 MB submission with a wrong token: exit 8, the 401 named, ten times out of ten" \
    has "$rc $out" "^8 .*the token is not one this daemon knows \(HTTP 401"

out=$(RXJOB_TOKEN_FILE=$tmp/token_a "$hello" "$url" 2>&1)
rc=$?
if [[ $rc == 0 ]] && grep -q "result: hello, remote world" <<<"$out"; then
    ok "the C API over https (hello_remote $url): function job FINISHED, result back"
else
    bad "hello_remote $url: exit $rc: $out"
fi
out=$(RXJOB_TOKEN_FILE=$tmp/token_a "$hello" "https://localhost:$port" 2>&1)
check "https://localhost:$port (the certificate's DNS name) works too: exit $?" \
    grep -q "result: hello, remote world" <<<"$out"

# --- Tokens of different users ----------------------------------------------------------------

if [[ $multi_user == 1 ]]; then
    as() { # as a|b|c ARGS...: rxjob over https with that token
        local t=$1
        shift
        "$rxjob" --url "$url" --token-file "$tmp/token_$t" "$@"
    }
    id_b=$(as b exec --no-auto-cleanup -- true)
    id_c=$(as c exec --no-auto-cleanup -- true)
    check "nobody's token submits a job ($id_b)" test -n "$id_b"
    check "daemon's token submits a job ($id_c)" test -n "$id_c"
    as b wait "$id_b" >/dev/null 2>&1
    as c wait "$id_c" >/dev/null 2>&1
    list_ids() { as "$1" jobs --json | python3 -c \
        'import json,sys; print(" ".join(str(j["id"]) for j in json.load(sys.stdin)["jobs"]))'; }
    check "nobody's token lists only nobody's job: '$(list_ids b)'" test "$(list_ids b)" = "$id_b"
    check "daemon's token lists only daemon's job: '$(list_ids c)'" test "$(list_ids c)" = "$id_c"
    as b status "$id_c" >"$tmp/st" 2>&1
    rc=$?
    check "nobody's token: daemon's job $id_c is UNDETERMINED (exit 5, got $rc)" test "$rc" = 5
    as c cancel "$id_b" >/dev/null 2>&1
    rc=$?
    check "daemon's token cannot cancel nobody's job (exit 5, got $rc)" test "$rc" = 5
    all=" $(list_ids a) "
    check "root's token sees both:$all" test "${all/ $id_b /}" != "$all" -a "${all/ $id_c /}" != "$all"
    code=$(req -X POST -H "Authorization: Bearer $tok_b" "$url/v1/daemon/stop")
    check "nobody's token may not stop the daemon (403, got $code)" test "$code" = 403
    as a cleanup --force "$id_b" "$id_c" >/dev/null 2>&1
else
    echo "check_tcp: not root: two users' tokens are not checked (a per-user daemon maps tokens to its own user only)"
fi

# --- The client's refusals --------------------------------------------------------------------

before=$(metric rxjobd_http_requests_total)
chmod 644 "$tmp/token_a"
out=$("$rxjob" --url "$url" --token-file "$tmp/token_a" jobs 2>&1)
rc=$?
if [[ $rc != 0 ]] && grep -q "mode 0644.*chmod 600" <<<"$out"; then
    ok "the client refuses a token file of mode 0644 (exit $rc): $(head -n 1 <<<"$out")"
else
    bad "token file 0644: exit $rc: $out"
fi
chmod 600 "$tmp/token_a"
after=$(metric rxjobd_http_requests_total)
# Each metric call is one request itself.
check "and sent nothing (requests $before -> $after: only the metrics call)" \
    test "$after" = $((before + 1))
out=$("$rxjob" --url "$url" jobs 2>&1)
rc=$?
check "no token at all: refused, saying how to give one (exit $rc)" \
    has "$out" "needs a token: set RXJOB_TOKEN"
out=$(RXJOB_TOKEN=$(newtoken) "$rxjob" --url "$url" jobs 2>&1)
rc=$?
check "a wrong token through the CLI: exit 8 and the daemon's 401 message (got $rc)" \
    has "$rc $out" "^8 .*the token is not one this daemon knows \(HTTP 401"
out=$("$rxjob" --url "http://127.0.0.1:$port" --token-file "$tmp/token_a" jobs 2>&1)
rc=$?
check "the client takes no http:// url (exit 2, got $rc)" \
    has "$rc $out" "^2 .*plain http:// is never used"
out=$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v1/jobs" 2>&1)
rc=$?
check "plain HTTP to the TLS port fails (curl exit $rc, $out)" \
    test "$rc" != 0 -a "${out: -3}" = 000
out=$(RXJOB_CA_FILE=$tmp/other.pem "$rxjob" --url "$url" --token-file "$tmp/token_a" jobs 2>&1)
rc=$?
if [[ $rc == 3 ]] && grep -q "TLS with rxjobd at '$url' failed.*certificate" <<<"$out"; then
    ok "the wrong CA: exit 3, the TLS failure named: $out"
else
    bad "the wrong CA: exit $rc: $out"
fi
out=$(env -u RXJOB_CA_FILE "$rxjob" --url "$url" --token-file "$tmp/token_a" jobs 2>&1)
rc=$?
check "no CA file (the system's store): the self-signed certificate is refused (exit $rc)" \
    has "$rc $out" "^3 .*TLS with rxjobd.*system's CA store"

# Garbage on the TLS port makes libmicrohttpd log; anyone who can connect must not be able to
# fill the disk with that: at most 10 of its lines a second.
before=$(grep -c 'libmicrohttpd: Error' "$log")
start_s=$(date +%s)
# garbage: one connection that writes a line of plain HTTP (the daemon may close first: the
# write's SIGPIPE must not end this script, hence the subshell that ignores it).
garbage() { (trap '' PIPE && printf 'GET / HTTP/1.0\r\n\r\n' >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }
for _ in $(seq 300); do garbage; done
sleep 1.2
garbage # a second later: the count of the dropped ones is logged
sleep 0.5
secs=$(($(date +%s) - start_s + 1))
logged=$(($(grep -c 'libmicrohttpd: Error' "$log") - before))
if ((logged > 0 && logged <= 10 * (secs + 1))) && grep -q "more messages were not logged" "$log"; then
    ok "300 garbage connections: $logged libmicrohttpd lines logged in ${secs} s, the rest counted"
else
    bad "300 garbage connections: $logged libmicrohttpd lines in ${secs} s: $(tail -n 3 "$log")"
fi

# --- The socket alongside, and stopping over https ----------------------------------------------

out=$("$rxjob" "${unix[@]}" exec --wait -- sh -c 'echo unix >"$RXJOB_RESULT"' 2>&1)
check "the Unix socket still serves: '$out'" test "$out" = unix
"$rxjob" --url "$url" --token-file "$tmp/token_a" daemon stop >"$tmp/stop.out" 2>&1
rc=$?
for _ in $(seq 100); do rx_alive "$main_pid" || break; sleep 0.1; done
if [[ $rc == 0 ]] && ! rx_alive "$main_pid" && [[ ! -e $sock ]]; then
    ok "rxjob --url $url daemon stop stopped it"
else
    bad "daemon stop over https: exit $rc, alive: $(rx_alive "$main_pid" && echo yes): $(cat "$tmp/stop.out")"
fi

# --- A certificate for another name: refused, though its CA is trusted ----------------------

if start wrongname --listen 127.0.0.1:0 --tokens "$tmp/tokens" "${system[@]}" --tls-cert "$tmp/elsewhere.pem" \
    --tls-key "$tmp/elsewhere.key"; then
    out=$(RXJOB_CA_FILE=$tmp/elsewhere.pem "$rxjob" --url "$url" --token-file "$tmp/token_a" \
        jobs 2>&1)
    rc=$?
    check "a certificate that does not name 127.0.0.1 is refused (exit $rc): $out" \
        has "$rc $out" "^3 .*TLS with rxjobd.*(subjectAltName|match)"
    "$rxjob" --url "unix:$tmp/wrongname/s.sock" daemon stop >/dev/null 2>&1
else
    bad "rxjobd with the elsewhere certificate: $(cat "$tmp/wrongname.out")"
fi

# --- Plain HTTP on loopback (for a TLS-terminating proxy on the host): tokens still needed ------

if start plain --listen 127.0.0.1:0 --tokens "$tmp/tokens" "${system[@]}"; then
    check "plain HTTP on loopback: the log says tokens cross loopback in clear" \
        grep -q "tcp: serving plain HTTP on http://127.0.0.1:" "$tmp/plain/state/rxjobd.log"
    code=$(curl -sS -o /dev/null -w '%{http_code}' "$url/v1/jobs")
    check "plain HTTP on loopback: no token: 401 (got $code at $url)" test "$code" = 401
    code=$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $tok_a" "$url/v1/jobs")
    check "plain HTTP on loopback: the right token: 200 (got $code)" test "$code" = 200
    # 64 connections from this address that send nothing take its whole cap: they are closed
    # soon (10 s), not after the 300 s a client that sent a known token may stay idle.
    python3 -c '
import socket, sys, time
held = [socket.create_connection(("127.0.0.1", int(sys.argv[1]))) for _ in range(64)]
time.sleep(60)
' "${url##*:}" &
idle=$!
sleep 2
code=$(curl -sS -o /dev/null -w '%{http_code}' -m 5 -H "Authorization: Bearer $tok_a" "$url/v1/jobs" 2>/dev/null)
start_s=$(date +%s)
for _ in $(seq 80); do
    code2=$(curl -sS -o /dev/null -w '%{http_code}' -m 5 -H "Authorization: Bearer $tok_a" "$url/v1/jobs" 2>/dev/null)
    [[ $code2 == 200 ]] && break
    sleep 0.5
done
took=$(($(date +%s) - start_s))
kill -KILL "$idle" 2>/dev/null
wait "$idle" 2>/dev/null
check "plain HTTP: 64 idle connections fill the address's cap ($code), closed within 30 s ($code2 after $took s)" \
    test "$code" != 200 -a "$code2" = 200 -a "$took" -lt 30
    "$rxjob" --url "unix:$tmp/plain/s.sock" daemon stop >/dev/null 2>&1
else
    bad "rxjobd with plain HTTP on loopback: $(cat "$tmp/plain.out")"
fi

# --- IPv6 loopback ---------------------------------------------------------------------------

if [[ -r /proc/net/if_inet6 ]] && grep -q '^00000000000000000000000000000001 ' /proc/net/if_inet6; then
    if start v6 --listen '[::1]:0' --tokens "$tmp/tokens" "${tls[@]}" "${system[@]}"; then
        code=$(req "$url/v1/jobs")
        check "[::1]: no token: 401 (got $code at $url)" test "$code" = 401
        out=$("$rxjob" --url "$url" --token-file "$tmp/token_a" exec --wait -- \
            sh -c 'echo six >"$RXJOB_RESULT"' 2>&1)
        check "[::1]: the right token runs a job: '$out'" test "$out" = six
        "$rxjob" --url "unix:$tmp/v6/s.sock" daemon stop >/dev/null 2>&1
    else
        bad "rxjobd on [::1]: $(cat "$tmp/v6.out" "$tmp/v6/state/rxjobd.log" 2>/dev/null)"
    fi
else
    echo "check_tcp: no IPv6 loopback here: [::1] not checked"
fi

# Under ASan/UBSan (a build with RX_ASAN, RX_UBSAN) the daemons report into their logs, at the
# latest when they exit.
sleep 0.5
if grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$tmp"/*/state/rxjobd.log \
    >"$tmp/san" 2>/dev/null; then
    bad "sanitizer reports in $(cat "$tmp/san"): $(grep -h -A5 -E 'Sanitizer|runtime error' \
        "$tmp"/*/state/rxjobd.log | head -n 20)"
else
    ok "no sanitizer report in the daemons' logs"
fi

rx_test_end
