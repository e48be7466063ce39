# shellcheck shell=bash
# tests/lib.sh - what the tests/check_*.sh scripts (and tests/stress/) share. Source it after
# `set -euo pipefail` (or `set -uo pipefail`), then call rx_test_init:
#
#   rx_test_init NAME BUILD_DIR
#       build, rxjobd, rxjob: the build's programs; tmp: a private temporary directory; sock and
#       state: a socket path and a state directory inside it; daemon_pid: empty (set it to the
#       daemon the script starts); rx_pids: an empty array (add any other process to stop at
#       exit); passed, failed: 0. On exit daemon_pid and each of rx_pids is stopped (rx_stop),
#       rx_test_on_exit runs if the script defined it (it may set rx_test_keep_tmp=1 to keep
#       tmp, whose path is then printed), and tmp is removed.
#   rx_test_skip WHY     print "NAME: WHY" and "NAME: 0 passed, 0 failed, 1 skipped"; exit 0
#   rx_need PROG...      exit 1 unless each PROG is there: a path must be an executable (a
#                        program of the build: "build first"), a bare name a command on PATH
#                        (a package: "scripts/install-deps.sh")
#   ok MSG / pass        count a pass (ok prints it)
#   bad MSG / fail MSG   count a failure and print it; then rx_test_on_fail runs if the script
#                        defined it (to show what the failed check saw)
#   check MSG CMD...     one check: passed (ok MSG) when CMD succeeds, else bad MSG; with
#                        rx_check_quiet=1 a pass is counted but not printed
#   rx ARGS...           the rxjob CLI on this test's socket
#   rx_alive PID         the process runs (a zombie has exited: PID 1 here may never reap it)
#   rx_stop PID          SIGTERM, at most 5 s for it to end, then SIGKILL; reaped if a child
#   rx_start_daemon ARGS...
#       rxjobd --foreground --socket "$sock" --state-dir "$state" ARGS..., its stdout and
#       stderr appended to $tmp/rxjobd.log; daemon_pid is set; returns once `rx jobs` answers,
#       or prints the log and returns 1 if the daemon exited or did not answer within 20 s
#   rx_test_end          print each failure again (CI shows a log's head and tail only), then
#                        "NAME: N passed, M failed"; fails (status 1) if any failed
#
# The closing line is the plain "N passed, M failed" that CI reads.

rx_test_init() {
    rx_test_name=$1
    build=${2:?usage: $1 BUILD_DIR}
    build=$(cd "$build" && pwd)
    rxjobd="$build/rxjobd"
    rxjob="$build/rxjob"
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/rxjob-$rx_test_name.XXXXXX")
    sock="$tmp/s.sock"
    state="$tmp/state"
    daemon_pid=""
    rx_pids=()
    passed=0
    failed=0
    rx_failures=()
    trap rx_test_exit EXIT
}

rx_test_exit() {
    local pid
    for pid in $daemon_pid "${rx_pids[@]}"; do
        rx_stop "$pid"
    done
    if declare -F rx_test_on_exit >/dev/null; then
        rx_test_on_exit || true
    fi
    if [[ ${rx_test_keep_tmp:-0} == 1 ]]; then
        echo "$rx_test_name: kept $tmp" >&2
    else
        rm -rf "$tmp"
    fi
}

rx_test_skip() {
    echo "$rx_test_name: $*"
    echo "$rx_test_name: 0 passed, 0 failed, 1 skipped"
    exit 0
}

rx_need() {
    local prog
    for prog in "$@"; do
        if [[ $prog == */* ]]; then
            if [[ ! -x $prog ]]; then
                echo "$rx_test_name: $prog is missing; build first" >&2
                exit 1
            fi
        elif ! command -v "$prog" >/dev/null; then
            echo "$rx_test_name: $prog is needed (scripts/install-deps.sh)" >&2
            exit 1
        fi
    done
}

pass() { passed=$((passed + 1)); }
ok() {
    passed=$((passed + 1))
    echo "ok: $*"
}
bad() {
    failed=$((failed + 1))
    echo "FAILED: $*"
    local msg="$*"
    rx_failures+=("${msg:0:400}")
    if declare -F rx_test_on_fail >/dev/null; then
        rx_test_on_fail || true
    fi
}
fail() { bad "$@"; }

check() {
    local what=$1
    shift
    if "$@"; then
        if [[ ${rx_check_quiet:-0} == 1 ]]; then pass; else ok "$what"; fi
    else
        bad "$what"
    fi
}

rx() { "$rxjob" --url "unix:$sock" "$@"; }

rx_alive() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat:0:1} != [ZX] ]]
}

rx_stop() {
    local pid=$1
    [[ -n $pid ]] || return 0
    if rx_alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do
            rx_alive "$pid" || break
            sleep 0.1
        done
        if rx_alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
    fi
    wait "$pid" 2>/dev/null || true
}

rx_start_daemon() {
    "$rxjobd" --foreground --socket "$sock" --state-dir "$state" "$@" >>"$tmp/rxjobd.log" 2>&1 &
    daemon_pid=$!
    for _ in $(seq 400); do
        rx jobs >/dev/null 2>&1 && return 0
        rx_alive "$daemon_pid" || break
        sleep 0.05
    done
    rx jobs >/dev/null 2>&1 && return 0
    echo "$rx_test_name: rxjobd did not answer on $sock; its log:" >&2
    sed 's/^/  /' "$tmp/rxjobd.log" >&2
    return 1
}

rx_test_end() {
    local f
    if [ "$failed" -gt 0 ]; then
        echo "$rx_test_name: the failed checks again:"
        for f in "${rx_failures[@]}"; do
            echo "  FAILED: $f"
        done
    fi
    echo "$rx_test_name: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
