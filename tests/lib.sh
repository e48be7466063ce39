# tests/lib.sh - what the tests/check_*.sh scripts (and tests/stress/) share. Source it after
# `set -euo pipefail`, then call rx_test_init:
#
#   rx_test_init NAME BUILD_DIR
#       build, rxjobd, rxjob: the build's programs; tmp: a private temporary directory; sock and
#       state: a socket path and a state directory inside it; daemon_pid: empty (set it to the
#       daemon the script starts); passed, failed: 0. On exit the daemon in daemon_pid is
#       stopped (SIGTERM, then waited for), rx_test_on_exit runs if the script defined it, and
#       tmp is removed.
#   ok MSG / pass        count a pass (ok prints it)
#   bad MSG / fail MSG   count a failure and print it
#   rx ARGS...           the rxjob CLI on this test's socket
#   rx_test_end          print "NAME: N passed, M failed"; fails (status 1) if any failed
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
    passed=0
    failed=0
    trap rx_test_exit EXIT
}

rx_test_exit() {
    if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
        kill -TERM "$daemon_pid" 2>/dev/null || true
        wait "$daemon_pid" 2>/dev/null || true
    fi
    if declare -F rx_test_on_exit >/dev/null; then
        rx_test_on_exit || true
    fi
    rm -rf "$tmp"
}

pass() { passed=$((passed + 1)); }
ok() {
    passed=$((passed + 1))
    echo "ok: $*"
}
bad() {
    failed=$((failed + 1))
    echo "FAILED: $*"
}
fail() { bad "$@"; }

rx() { "$rxjob" --url "unix:$sock" "$@"; }

rx_test_end() {
    echo "$rx_test_name: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
