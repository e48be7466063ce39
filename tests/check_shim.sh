#!/usr/bin/env bash
# check_shim.sh - the supervisor's "c"/"g" protocol on fd 3 and the scheduler's spare
# supervisors (docs/engine.md "A task's life"), against a real daemon and the real rxjob-shim.
#
#  1. rxjob-shim by hand, on a copy of a real job's work: end-of-file before "c" (a spare never
#     given its task) writes nothing and starts nothing; "c" then end-of-file (claimed, never
#     told to go) writes a go-0 record and starts nothing; "c" "g" runs the task; "g" alone (a
#     daemon that does not claim) runs it too, without the supervisor's fd 3. On a socket, the
#     end is said ("e") after the exit record is written, and the supervisor exits on "k" or on
#     end-of-file.
#  2. Spares are discarded: after a job is canceled while its tasks run (spares of its next
#     tasks waiting), and after every job finished, the daemon has no child process left.
#
# Usage: bash tests/check_shim.sh BUILD_DIR
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"
rx_test_init check_shim "${1:-}"
shim="$build/rxjob-shim"

rx_start_daemon --slots 2

# --- 1. the protocol, by hand -----------------------------------------------------------------
# A job whose task writes a marker (and "fd3" if it inherited the supervisor's fd 3, which is
# the daemon's: it must not): its spool's work file is what the supervisor reads.
id=$(rx exec --no-auto-cleanup -- sh -c "echo ran >> '$tmp/ran'; if [ -e /proc/\$\$/fd/3 ]; then echo fd3 >> '$tmp/ran'; fi")
st=$(rx wait "$id")
[ "$st" = FINISHED ] || { echo "the setup job ended $st"; exit 1; }
rm -f "$tmp/ran"
work="$state/spool/$id/work"
[ -f "$work" ] || { echo "no work file at $work"; exit 1; }

# run_shim NAME BYTES: rxjob-shim on a fresh copy of the job directory, BYTES on its fd 3.
run_shim() {
    local dir="$tmp/job.$1"
    mkdir -p "$dir"
    cp "$work" "$dir/work"
    rm -f "$tmp/ran"
    printf '%s' "$2" >"$tmp/fd3.$1"
    timeout 20 "$shim" --shim "$dir" 0 1 0 1000 0 3<"$tmp/fd3.$1"
}

rc=0
run_shim unclaimed "" || rc=$?
if [ "$rc" -eq 0 ] && [ ! -e "$tmp/job.unclaimed/t0.exit" ] && [ ! -e "$tmp/ran" ] &&
    [ ! -e "$tmp/job.unclaimed/t0.out" ]; then
    ok "end-of-file before \"c\": no record, nothing started"
else
    bad "end-of-file before \"c\": exit $rc, files: $(ls "$tmp/job.unclaimed" | tr '\n' ' ')$([ -e "$tmp/ran" ] && echo ', the task ran')"
fi

rc=0
run_shim claimed "c" || rc=$?
if [ "$rc" -eq 0 ] && grep -qx 'go 0' "$tmp/job.claimed/t0.exit" 2>/dev/null &&
    grep -qx 'state NOT_RUN' "$tmp/job.claimed/t0.exit" && [ ! -e "$tmp/ran" ]; then
    ok "\"c\" then end-of-file: a go-0 record, nothing started"
else
    bad "\"c\" then end-of-file: exit $rc, record '$(cat "$tmp/job.claimed/t0.exit" 2>/dev/null)'"
fi

for bytes in cg g; do
    rc=0
    run_shim "$bytes" "$bytes" || rc=$?
    if [ "$rc" -eq 0 ] && grep -qx 'go 1' "$tmp/job.$bytes/t0.exit" 2>/dev/null &&
        grep -qx 'state OK' "$tmp/job.$bytes/t0.exit" && [ "$(cat "$tmp/ran" 2>/dev/null)" = ran ]; then
        ok "\"$bytes\": the task ran once, OK"
    else
        bad "\"$bytes\": exit $rc, record '$(cat "$tmp/job.$bytes/t0.exit" 2>/dev/null)'"
    fi
done

# The end: on a socket, "e" once the record is written; "k" back and it exits at once (the
# daemon recorded the end); end-of-file instead and it syncs the record itself and exits.
for peer in ack close; do
    dir="$tmp/job.end-$peer"
    mkdir -p "$dir"
    cp "$work" "$dir/work"
    rm -f "$tmp/ran"
    out=$(timeout 30 python3 - "$shim" "$dir" "$peer" <<'PY'
import os, socket, subprocess, sys
shim, d, peer = sys.argv[1:4]
mine, theirs = socket.socketpair()
t = os.dup(theirs.fileno())  # above 3 (0..2 are stdio, 3 and 4 the pair)
def fd3():
    os.dup2(t, 3)
# fd 3 kept open through the close of the others (pass_fds), then made the shim's end.
p = subprocess.Popen([shim, "--shim", d, "0", "1", "0", "1000", "0"], preexec_fn=fd3,
                     pass_fds=(3, t), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
theirs.close()
os.close(t)
mine.sendall(b"cg")
got = mine.recv(1)
have = os.path.exists(os.path.join(d, "t0.exit"))
if peer == "ack":
    mine.sendall(b"k")
mine.close()
rc = p.wait(timeout=20)
print(got.decode() or "EOF", "record" if have else "no-record", rc)
PY
) || out="python failed: $?"
    if [ "$out" = "e record 0" ] && grep -qx 'state OK' "$dir/t0.exit" &&
        [ "$(cat "$tmp/ran" 2>/dev/null)" = ran ]; then
        ok "end on a socket, peer $peer: "e" after the record, exit 0, the task ran once"
    else
        bad "end on a socket, peer $peer: '$out', record '$(cat "$dir/t0.exit" 2>/dev/null)', marker '$(cat "$tmp/ran" 2>/dev/null)'"
    fi
done

# --- 2. spares are discarded ------------------------------------------------------------------
# children: the daemon's child processes (supervisors, spares), zombies included.
children() {
    { ps --ppid "$daemon_pid" -o pid=,stat= 2>/dev/null || true; } | wc -l
}
id=$(rx exec --times 20 --num-tasks 2 -- sleep 30)
for _ in $(seq 1 200); do
    [ "$(rx status "$id" 2>/dev/null)" = RUNNING ] && break
    sleep 0.05
done
# The scheduler spawns the spares right after the first "go": wait for them (10 s at most).
before=0
for _ in $(seq 1 200); do
    before=$(children)
    [ "$before" -gt 2 ] && break
    sleep 0.05
done
if [ "$before" -gt 2 ]; then
    ok "spares wait beside the 2 running supervisors ($before children)"
else
    bad "$before children of the daemon while 2 tasks run (want the 2 supervisors and spares)"
fi
rx cancel "$id" >/dev/null
st=$(rx wait "$id" 2>/dev/null || true)
[ "$st" = CANCELED ] || bad "the canceled job ended $st"
n=0
for _ in $(seq 1 100); do
    n=$(children)
    [ "$n" -eq 0 ] && break
    sleep 0.05
done
if [ "$n" -eq 0 ]; then
    ok "no child of the daemon left after the cancel (spares discarded, all reaped)"
else
    bad "$n children of the daemon left after the cancel: $(ps --ppid "$daemon_pid" -o pid=,stat=,args= | tr '\n' ';')"
fi

id=$(rx exec --times 30 --num-tasks 2 -- true)
st=$(rx wait "$id")
[ "$st" = FINISHED ] || bad "the 30-task job ended $st"
sleep 0.2
n=$(children)
if [ "$n" -eq 0 ]; then
    ok "no child of the daemon left after a 30-task job"
else
    bad "$n children of the daemon left after a 30-task job"
fi

rx_test_end
