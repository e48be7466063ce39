#!/usr/bin/env bash
# check_statedir.sh - rxjobd on a state directory that fights back (docs/engine.md "Store"):
#   - a full disk: the SQLite log written ahead at start (STORE_WAL_PREFILL_BYTES, 4.5 MiB) does
#     not fit on a 3 MiB file system; the daemon still starts, runs jobs and starts again there
#     (needs root to mount a tmpfs: skipped otherwise).
#
# Usage: bash tests/check_statedir.sh BUILD_DIR
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"
rx_test_init check_statedir "${1:-}"
rx_need "$rxjobd" "$rxjob"

mounted=""
rx_test_on_exit() {
    if [[ -n $mounted ]]; then
        rx_stop "$daemon_pid"
        daemon_pid=""
        umount "$mounted"
    fi
}
rx_test_on_fail() { tail -n 20 "$tmp/rxjobd.log" >&2; }

# ---------------------------------------------------------------------------------------------
# A full disk: the state directory on a 3 MiB tmpfs, smaller than the log written ahead.

mkdir -p "$state"
if [[ $(id -u) == 0 ]] && mount -t tmpfs -o size=3m,mode=0700 tmpfs "$state" 2>/dev/null; then
    mounted=$state
    if rx_start_daemon --slots 2; then
        ok "a 3 MiB state directory: the daemon starts"
        id=$(rx exec -- echo small-disk)
        check "... a job runs there" test "$(rx wait "$id" 2>&1)" = FINISHED
        check "... its output is there" grep -qx small-disk <(rx output "$id" 2>&1)
        check "... writing the log ahead failed, and the log says so" \
            grep -q "writing '$state/jobs.db-wal' ahead failed" "$tmp/rxjobd.log"
        rx_stop "$daemon_pid"
        daemon_pid=""
        if rx_start_daemon --slots 2; then
            ok "... and the daemon starts again there"
            check "... with the job" test "$(rx status "$id" 2>&1)" = FINISHED
        else
            bad "... and the daemon starts again there"
        fi
    else
        bad "a 3 MiB state directory: the daemon starts"
    fi
    rx_stop "$daemon_pid"
    daemon_pid=""
    umount "$state"
    mounted=""
else
    echo "check_statedir: not root or no tmpfs: the full-disk checks are skipped"
fi

rx_test_end
