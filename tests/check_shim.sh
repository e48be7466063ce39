#!/usr/bin/env bash
# check_shim.sh - the supervisor's "c"/"g" protocol on fd 3 and the scheduler's (blank) spare
# supervisors (docs/engine.md "A task's life"), against a real daemon and the real rxjob-shim.
#
#  1. rxjob-shim by hand, on a copy of a real job's work: end-of-file before "c" (a spare never
#     given its task) writes nothing and starts nothing; "c" then end-of-file (claimed, never
#     told to go) writes a go-0 record and starts nothing; "c" "g" runs the task; "g" alone (a
#     daemon that does not claim) runs it too, without the supervisor's fd 3. On a socket, the
#     end is the exit record sent ("E"); the supervisor exits on "k" without a record file, or
#     on end-of-file with one.
#  2. Spares are discarded: after a job is canceled while its tasks run (spares of its next
#     tasks waiting), and after every job finished, the daemon has no child process left.
#  3. A task's child in a process group of its own (setpgid) does not outlive the task: not when
#     the job is canceled, nor when the task times out, nor when it exits (the supervisor kills
#     what is left of its session, and reaps it).
#  4. A supervisor that does not exit after "k" (stopped or traced by its user; here a proxy in
#     front of the real rxjob-shim that forwards its end message and then sleeps) is killed by
#     the daemon after a while: it does not hold the daemon's pidfd for ever (20 of them here).
#  5. The supervisor looks the program up in PATH before "go" and the task runs what
#     posix_spawnp would have run: the first PATH entry that holds it (not a later one), past
#     entries that do not exist or are not directories, past a file that is not executable and
#     a directory of that name; the current directory for an empty entry; the supervisor's PATH
#     (the daemon's), not the job's; a name with "{}" after it took the argument; a name with a
#     '/' not searched; a script without "#!" fails as posix_spawnp fails it (Exec format
#     error, not a later entry's), as does a file found only without execute permission
#     (Permission denied) or nowhere (command not found); with PATH unset, the C library's
#     default is searched.
#
# Usage: bash tests/check_shim.sh BUILD_DIR
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"
rx_test_init check_shim "${1:-}"
shim="$build/rxjob-shim"

rx_start_daemon --slots 2

# --- 1. the protocol, by hand -----------------------------------------------------------------
# The daemon sends a job's work to the supervisor with its task when it is small (at most
# 32 KiB, exec_local_assign): no work file then; a larger work is a file in the job's spool.
ids=$(rx exec --no-auto-cleanup -- true)
[ "$(rx wait "$ids")" = FINISHED ] || { echo "the small job failed"; exit 1; }
if [ ! -e "$state/spool/$ids/work" ] && [ -e "$state/spool/$ids/t0.out" ]; then
    ok "a small job's work goes to its supervisor with the task: no work file in its spool"
else
    bad "small job's spool: $(ls "$state/spool/$ids" | tr '\n' ' ')"
fi
# A job whose task writes a marker (and "fd3" if it inherited the supervisor's fd 3, which is
# the daemon's: it must not), with an argument of 40 000 bytes so that its work is a file: what
# the supervisors below read (from the file, or sent on fd 3 as the daemon sends it).
big=$(head -c 40000 /dev/zero | tr '\0' x)
id=$(rx exec --no-auto-cleanup -- sh -c "echo ran >> '$tmp/ran'; if [ -e /proc/\$\$/fd/3 ]; then echo fd3 >> '$tmp/ran'; fi" sh "$big")
st=$(rx wait "$id")
[ "$st" = FINISHED ] || { echo "the setup job ended $st"; exit 1; }
rm -f "$tmp/ran"
work="$state/spool/$id/work"
[ -f "$work" ] || { echo "no work file at $work"; exit 1; }
ok "a large job's work (over 32 KiB) is a file in its spool, and its task ran"

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
    grep -qx 'state NOT_RUN' "$tmp/job.claimed/t0.exit" && [ ! -e "$tmp/ran" ] &&
    [ ! -e "$tmp/job.claimed/t0.out" ]; then
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

# A blank shim (a spare, spawned before its task is known) takes its task from fd 3: "a", a
# 4-byte little-endian length, the arguments NUL-terminated. Anything else, or end-of-file
# first, and it exits without a trace; once it has its task it is that task's supervisor.
# run_blank NAME TAIL [LEN]: rxjob-shim --blank on a fresh copy of the job, fd 3 = the
# assignment of task 0 (its length said as LEN if given) followed by TAIL.
le32() { # N: its 4 bytes, little-endian
    printf "\\x$(printf %02x $(($1 & 255)))\\x$(printf %02x $(($1 >> 8 & 255)))\\x$(printf %02x $(($1 >> 16 & 255)))\\x00"
}
run_blank() {
    local dir="$tmp/job.$1" f="$tmp/fd3.$1" len
    mkdir -p "$dir"
    cp "$work" "$dir/work"
    rm -f "$tmp/ran"
    printf '%s\0' --shim "$dir" 0 1 0 1000 0 0 268435456 >"$f.args"
    len=${3:-$(stat -c %s "$f.args")}
    { printf 'a'; le32 "$len"; cat "$f.args"; printf '%s' "$2"; } >"$f"
    timeout 20 "$shim" --blank 3<"$f"
}
nothing_left() { # NAME: no record, no output file, the task never ran
    [ ! -e "$tmp/job.$1/t0.exit" ] && [ ! -e "$tmp/job.$1/t0.out" ] && [ ! -e "$tmp/ran" ]
}
for case in eof garbage short unclaimed; do
    rc=0
    case $case in
    eof) mkdir -p "$tmp/job.eof"; cp "$work" "$tmp/job.eof/work"; rm -f "$tmp/ran"
         timeout 20 "$shim" --blank 3</dev/null || rc=$? ;;
    garbage) mkdir -p "$tmp/job.garbage"; cp "$work" "$tmp/job.garbage/work"; rm -f "$tmp/ran"
         printf 'cg' >"$tmp/fd3.garbage"; timeout 20 "$shim" --blank 3<"$tmp/fd3.garbage" || rc=$? ;;
    short) run_blank short cg 4000 || rc=$? ;; # says 4000 bytes, sends fewer: never a task
    unclaimed) run_blank unclaimed "" || rc=$? ;;
    esac
    if [ "$rc" -eq 0 ] && nothing_left "$case"; then
        ok "blank shim, $case: exit 0, no record, nothing started"
    else
        bad "blank shim, $case: exit $rc, files: $(ls "$tmp/job.$case" | tr '\n' ' ')$([ -e "$tmp/ran" ] && echo ', the task ran')"
    fi
done
rc=0
run_blank bclaimed c || rc=$?
if [ "$rc" -eq 0 ] && grep -qx 'go 0' "$tmp/job.bclaimed/t0.exit" 2>/dev/null && [ ! -e "$tmp/ran" ] &&
    [ ! -e "$tmp/job.bclaimed/t0.out" ]; then
    ok "blank shim, assigned and claimed, then end-of-file: a go-0 record, nothing started"
else
    bad "blank shim, assigned and claimed: exit $rc, record '$(cat "$tmp/job.bclaimed/t0.exit" 2>/dev/null)'"
fi
rc=0
run_blank bgo cg || rc=$?
if [ "$rc" -eq 0 ] && grep -qx 'state OK' "$tmp/job.bgo/t0.exit" 2>/dev/null &&
    [ "$(cat "$tmp/ran" 2>/dev/null)" = ran ]; then
    ok "blank shim, assigned, \"c\" \"g\": the task ran once, OK"
else
    bad "blank shim, assigned, \"cg\": exit $rc, record '$(cat "$tmp/job.bgo/t0.exit" 2>/dev/null)'"
fi

# The work sent on fd 3 ("w", its length, the work) after the assignment: no work file needed.
dir="$tmp/job.inline"
mkdir -p "$dir"
rm -f "$tmp/ran"
printf '%s\0' --shim "$dir" 0 1 0 1000 0 0 268435456 >"$tmp/fd3.inline.args"
{ printf 'a'; le32 "$(stat -c %s "$tmp/fd3.inline.args")"; cat "$tmp/fd3.inline.args"
  printf 'w'; le32 "$(stat -c %s "$work")"; cat "$work"; printf 'cg'; } >"$tmp/fd3.inline"
rc=0
timeout 20 "$shim" --blank 3<"$tmp/fd3.inline" || rc=$?
if [ "$rc" -eq 0 ] && [ ! -e "$dir/work" ] && grep -qx 'state OK' "$dir/t0.exit" 2>/dev/null &&
    [ "$(cat "$tmp/ran" 2>/dev/null)" = ran ]; then
    ok "blank shim, assigned with its work on fd 3 and no work file: the task ran once, OK"
else
    bad "blank shim with inline work: exit $rc, record '$(cat "$dir/t0.exit" 2>/dev/null)', marker '$(cat "$tmp/ran" 2>/dev/null)'"
fi
# A "w" cut short (says more than comes): nothing started, nothing written.
mkdir -p "$tmp/job.wshort"
cp "$work" "$tmp/job.wshort/work"
rm -f "$tmp/ran"
printf '%s\0' --shim "$tmp/job.wshort" 0 1 0 1000 0 0 268435456 >"$tmp/fd3.wshort.args"
{ printf 'a'; le32 "$(stat -c %s "$tmp/fd3.wshort.args")"; cat "$tmp/fd3.wshort.args"
  printf 'w'; le32 30000; printf 'RXW1 and not much more'; } >"$tmp/fd3.wshort"
rc=0
timeout 20 "$shim" --blank 3<"$tmp/fd3.wshort" || rc=$?
if [ "$rc" -eq 0 ] && nothing_left wshort; then
    ok "blank shim, a work message cut short: exit 0, no record, nothing started"
else
    bad "blank shim, cut-off work: exit $rc, files: $(ls "$tmp/job.wshort" | tr '\n' ' ')"
fi

# The end: on a socket, the record itself ("E", its length in 4 bytes little-endian, the
# record); "k" back and it exits at once writing no record file (the daemon recorded the end);
# end-of-file instead and it writes the record file durably and exits.
for peer in ack close; do
    dir="$tmp/job.end-$peer"
    mkdir -p "$dir"
    cp "$work" "$dir/work"
    rm -f "$tmp/ran"
    out=$(timeout 30 python3 - "$shim" "$dir" "$peer" <<'PY'
import os, socket, struct, subprocess, sys
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
def take(n):
    b = b""
    while len(b) < n:
        c = mine.recv(n - len(b))
        if not c:
            break
        b += c
    return b
head = take(5)
rec = take(struct.unpack("<I", head[1:5])[0]) if len(head) == 5 and head[:1] == b"E" else b""
state = [l for l in rec.decode(errors="replace").split("\n") if l.startswith("state ")]
have = os.path.exists(os.path.join(d, "t0.exit"))
if peer == "ack":
    mine.sendall(b"k")
mine.close()
rc = p.wait(timeout=20)
have_after = os.path.exists(os.path.join(d, "t0.exit"))
print(head[:1].decode(errors="replace") or "EOF", state[0] if state else "no-state",
      "file-before" if have else "no-file-before", "file" if have_after else "no-file", rc)
PY
) || out="python failed: $?"
    want_file=no-file
    [ "$peer" = close ] && want_file=file
    if [ "$out" = "E state OK no-file-before $want_file 0" ] &&
        { [ "$peer" = ack ] || grep -qx 'state OK' "$dir/t0.exit"; } &&
        [ "$(cat "$tmp/ran" 2>/dev/null)" = ran ]; then
        ok "end on a socket, peer $peer: the record sent (E), $want_file after, exit 0, the task ran once"
    else
        bad "end on a socket, peer $peer: '$out', record '$(cat "$dir/t0.exit" 2>/dev/null)', marker '$(cat "$tmp/ran" 2>/dev/null)'"
    fi
done

# --- 2. spares ---------------------------------------------------------------------------------
# children [all]: the daemon's child processes other than blank spares waiting for a task
# (supervisors, spares killed but not reaped: zombies included); with "all", every one.
children() {
    { ps --ppid "$daemon_pid" -o stat=,args= 2>/dev/null || true; } |
        { if [ "${1:-}" = all ]; then cat; else grep -v '^S[^ ]* .*rxjob-shim --blank$' || true; fi; } | wc -l
}
blanks() {
    { ps --ppid "$daemon_pid" -o stat=,args= 2>/dev/null || true; } |
        { grep -c '^S[^ ]* .*rxjob-shim --blank$' || true; }
}
# An idle daemon keeps min(slots, 4) = 2 blank spares, and a job's task is started by one of
# them: its supervisor (the task's parent) was spawned before the job was submitted.
n=0
for _ in $(seq 1 200); do
    n=$(blanks)
    [ "$n" -eq 2 ] && break
    sleep 0.05
done
[ "$n" -eq 2 ] && ok "an idle daemon keeps 2 blank spares" || bad "$n blank spares on an idle daemon (want 2)"
spares_before=$(ps --ppid "$daemon_pid" -o pid=,args= | awk '/rxjob-shim --blank$/ {print $1}' | tr '\n' ' ')
id=$(rx exec -- sh -c 'echo "$PPID"; tr "\0" " " </proc/$PPID/cmdline')
st=$(rx wait "$id")
out=$(rx output "$id" 2>/dev/null || true)
sup=$(printf '%s\n' "$out" | sed -n 2p)
case " $spares_before " in
*" $sup "*) ok "the task's supervisor ($sup) was one of the blank spares waiting before the job ($spares_before)" ;;
*) bad "the task's supervisor $sup was not one of the spares $spares_before ($st)" ;;
esac
# Once it has its task, a supervisor shows it in ps: "--shim JOB_DIR INDEX", not "--blank".
if printf '%s\n' "$out" | grep -q -- "rxjob-shim --shim $state/spool/$id 0 *$"; then
    ok "an assigned supervisor shows its task in ps: $(printf '%s\n' "$out" | sed -n 3p | sed 's/ *$//')"
else
    bad "the assigned supervisor's command line: '$(printf '%s\n' "$out" | sed -n 3p)'"
fi

id=$(rx exec --times 20 --num-tasks 2 -- sleep 30)
for _ in $(seq 1 200); do
    [ "$(rx status "$id" 2>/dev/null)" = RUNNING ] && break
    sleep 0.05
done
# The scheduler spawns the spares right after the first "go": wait for them (10 s at most).
before=0
for _ in $(seq 1 200); do
    before=$(children all)
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
if [ "$n" -eq 0 ] && [ "$(blanks)" -le 2 ]; then
    ok "only blank spares left after the cancel (supervisors all reaped)"
else
    bad "$n children of the daemon left after the cancel: $(ps --ppid "$daemon_pid" -o pid=,stat=,args= | tr '\n' ';')"
fi

id=$(rx exec --times 30 --num-tasks 2 -- true)
st=$(rx wait "$id")
[ "$st" = FINISHED ] || bad "the 30-task job ended $st"
sleep 0.2
n=$(children)
if [ "$n" -eq 0 ] && [ "$(blanks)" -le 2 ]; then
    ok "only blank spares left after a 30-task job"
else
    bad "$n children of the daemon left after a 30-task job: $(ps --ppid "$daemon_pid" -o pid=,stat=,args= | tr '\n' ';')"
fi

# A spare killed while it waits is reaped and replaced; the next task still starts.
kill -9 $(ps --ppid "$daemon_pid" -o pid=,args= | awk '/rxjob-shim --blank$/ {print $1}') 2>/dev/null || true
id=$(rx exec -- true)
st=$(rx wait "$id")
[ "$st" = FINISHED ] && ok "killed spares: the next job still ran (FINISHED)" || bad "after killing the spares a job ended $st"
sleep 0.3
n=$(children)
[ "$n" -eq 0 ] && ok "killed spares were reaped" || bad "$n children left after killing the spares: $(ps --ppid "$daemon_pid" -o pid=,stat=,args= | tr '\n' ';')"

# --- 3. a child in a process group of its own ends with its task ------------------------------
# own_group_child NAME: a command whose child moves to a group of its own, writes its pid to
# $tmp/pg.NAME and sleeps; the task itself then runs what follows.
own_group_child() {
    printf '%s' "perl -e 'setpgrp(0, 0); open(my \$f, \">\", \"$tmp/pg.$1\") or die; print \$f \$\$; close \$f; sleep 300' & while [ ! -s '$tmp/pg.$1' ]; do sleep 0.05; done; "
}
for how in cancel timeout exit; do
    case $how in
    cancel) id=$(rx exec -- sh -c "$(own_group_child $how) sleep 300") ;;
    timeout) id=$(rx exec --timeout 1 -- sh -c "$(own_group_child $how) sleep 300") ;;
    exit) id=$(rx exec -- sh -c "$(own_group_child $how) exit 3") ;;
    esac
    for _ in $(seq 1 200); do
        [ -s "$tmp/pg.$how" ] && break
        sleep 0.05
    done
    [ "$how" = cancel ] && rx cancel "$id" >/dev/null
    st=$(rx wait "$id" --timeout 30 2>/dev/null || true)
    pg=$(cat "$tmp/pg.$how" 2>/dev/null || echo 0)
    for _ in $(seq 1 40); do
        [ -e "/proc/$pg" ] || break
        sleep 0.05
    done
    if [ "$pg" -gt 1 ] && [ ! -e "/proc/$pg" ]; then
        ok "$how (job $st): the task's child in its own process group was killed and reaped"
    else
        bad "$how (job $st): the task's child $pg in its own process group is left, state '$(awk '{print $3}' "/proc/$pg/stat" 2>/dev/null)'"
        kill -KILL "$pg" 2>/dev/null || true
    fi
done

# Stopping the daemon takes its spares with it. Its own, by pid: other daemons of this build
# (a user's, another test's) have spares of the same program.
spares=$({ ps --ppid "$daemon_pid" -o pid=,args= 2>/dev/null || true; } | awk '$2 ~ /rxjob-shim$/ && $3 == "--blank" && NF == 3 { print $1 }')
[ -n "$spares" ] || bad "the daemon had no blank spare before it stopped"
kill "$daemon_pid"
wait "$daemon_pid" 2>/dev/null || true
sleep 0.3
left=0
for p in $spares; do
    [ -e "/proc/$p" ] && [ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" != Z ] && left=$((left + 1))
done
[ "$left" -eq 0 ] && ok "no blank spare outlives the daemon" || bad "$left blank spares outlived the daemon"

# --- 4. a supervisor that lingers after "k" is killed -----------------------------------------
cat >"$tmp/proxy.py" <<PROXY
import os, socket, sys, time, select
real = "$shim"
d = socket.socket(fileno=3)
a, b = socket.socketpair()
pid = os.fork()
if pid == 0:
    d.close()
    a.close()
    os.dup2(b.fileno(), 3)
    os.execv(real, [real] + sys.argv[1:])
b.close()
while True:
    r, _, _ = select.select([d, a], [], [])
    if d in r:
        x = d.recv(65536)
        if not x:
            break
        a.sendall(x)
    if a in r:
        x = a.recv(65536)
        if not x:
            break
        d.sendall(x)
        if x[:1] == b"E":
            break
a.close()
os.waitpid(pid, 0)
while True:
    time.sleep(1000)
PROXY
chmod +x "$tmp/proxy.py"
# The daemon executes its supervisor through a close-on-exec fd: a script cannot be one, so a
# binary runs the proxy.
cat >"$tmp/proxy.c" <<PROXYC
#include <unistd.h>
int main(int argc, char **argv) {
    char *v[64] = {"python3", "$tmp/proxy.py"};
    for (int i = 1; i < argc && i < 60; i++) v[i + 1] = argv[i];
    execvp("python3", v);
    return 127;
}
PROXYC
${CC:-cc} -o "$tmp/proxy" "$tmp/proxy.c"
rm -f "$tmp/rxjobd.log"
RXJOBD_SHIM="$tmp/proxy" rx_start_daemon --slots 4
fds_before=$(ls "/proc/$daemon_pid/fd" | wc -l)
id=$(rx exec --times 20 -- true)
st=$(rx wait "$id" --timeout 60 2>/dev/null || true)
[ "$st" = FINISHED ] && ok "20 tasks behind lingering supervisors FINISHED" || bad "20 tasks behind lingering supervisors: job $st"
lingering=0
for _ in $(seq 1 400); do
    lingering=$({ pgrep -f "$tmp/proxy.py" || true; } | wc -l)
    fds_now=$(ls "/proc/$daemon_pid/fd" | wc -l)
    [ "$lingering" -le 4 ] && [ "$fds_now" -le $((fds_before + 8)) ] && break
    sleep 0.1
done
# At most the spares (blank, waiting for a task: they are proxies too) are left.
if [ "$lingering" -le 4 ] && [ "$fds_now" -le $((fds_before + 8)) ]; then
    ok "supervisors lingering after k were killed ($lingering proxies left, daemon fds $fds_before -> $fds_now)"
else
    bad "$lingering proxies linger after their k, daemon fds $fds_before -> $fds_now"
fi
for pid in $(pgrep -f "$tmp/proxy.py" || true); do
    kill -KILL "$pid" 2>/dev/null || true
done

# --- 5. the program is looked up in PATH as posix_spawnp does ------------------------------------
rx_stop "$daemon_pid"
daemon_pid=""
pd="$tmp/pathdirs"
mkdir -p "$pd/p1/sub" "$pd/p2" "$pd/p3" "$pd/p4" "$pd/wd/sub" "$pd/p1/rxdir"
touch "$pd/afile"
# mkprog FILE WORDS: a script that prints WORDS (executable unless MODE says otherwise)
mkprog() { printf '#!/bin/sh\necho %s\n' "$2" >"$1" && chmod "${3:-755}" "$1"; }
mkprog "$pd/p2/rxprog" p2
mkprog "$pd/p4/rxprog" p4
mkprog "$pd/p1/rxboth" p1-noexec 644
mkprog "$pd/p2/rxboth" p2-both
mkprog "$pd/p2/rxdir" p2-dir
mkprog "$pd/wd/rxwhere" cwd
mkprog "$pd/p2/rxwhere" p2-where
mkprog "$pd/p1/rxarg{}" raw
mkprog "$pd/p2/rxarg1" one
mkprog "$pd/p1/sub/rxslash" p1-sub
mkprog "$pd/wd/sub/rxslash" cwd-sub
mkprog "$pd/p3/rxclient" client
mkprog "$pd/p1/rxnox" p1-noexec 644
printf 'echo noshebang\n' >"$pd/p1/rxnoshebang"
chmod 755 "$pd/p1/rxnoshebang"
mkprog "$pd/p2/rxnoshebang" p2-noshebang
PATH="$pd/nodir:$pd/afile:$pd/p1::$pd/p2:$pd/p4:$PATH" rx_start_daemon --slots 2
# path_job WHAT WANT_STATE WANT ARGS...: a job of ARGS submitted from $pd/wd with PATH $pd/p3
# first (the job's PATH, not the supervisor's); WANT is its output (FINISHED) or its error.
path_job() {
    local what=$1 want_state=$2 want=$3 id st got
    shift 3
    id=$(cd "$pd/wd" && PATH="$pd/p3:$PATH" rx exec --no-auto-cleanup "$@")
    st=$(rx wait "$id" --timeout 60 2>/dev/null || true)
    if [ "$want_state" = FINISHED ]; then
        got=$(cat "$state/spool/$id/t0.out" 2>/dev/null || true)
    else
        got=$(rx results --json "$id" 2>/dev/null | sed -n 's/^ *"error": "\(.*\)",$/\1/p' || true)
    fi
    if [ "$st" = "$want_state" ] && [ "$got" = "$want" ]; then
        ok "$what: $want"
    else
        bad "$what: job $st, '$got' (wanted $want_state, '$want')"
    fi
}
path_job "a program in a later PATH entry, past missing ones and a file" FINISHED p2 -- rxprog
path_job "no such program" FAILED "command not found: 'rxnope'" -- rxnope
path_job "not executable in p1, executable in p2" FINISHED p2-both -- rxboth
path_job "a directory of that name in p1, the program in p2" FINISHED p2-dir -- rxdir
path_job "an empty PATH entry is the job's directory" FINISHED cwd -- rxwhere
path_job "\"{}\" in the program's name takes the argument first" FINISHED one --elem 1 -- 'rxarg{}'
path_job "a name with a '/' is not searched" FINISHED cwd-sub -- sub/rxslash
path_job "an absolute name runs as it is" FINISHED p4 -- "$pd/p4/rxprog"
path_job "the supervisor's PATH is searched, not the job's" FAILED \
    "command not found: 'rxclient'" -- rxclient
path_job "a script without #! fails (the later entry is not tried)" FAILED \
    "cannot start 'rxnoshebang': Exec format error" -- rxnoshebang
path_job "found without execute permission only" FAILED \
    "cannot start 'rxnox': Permission denied" -- rxnox
rx_stop "$daemon_pid"
daemon_pid=""
# PATH unset: the C library's default (glibc /bin:/usr/bin; musl /usr/local/bin:/bin:/usr/bin).
env -u PATH "$rxjobd" --foreground --socket "$sock" --state-dir "$state" --slots 2 \
    >>"$tmp/rxjobd.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 400); do
    rx jobs >/dev/null 2>&1 && break
    sleep 0.05
done
path_job "PATH unset: true is found where the C library looks" FINISHED "" -- true
path_job "PATH unset: nothing of ours is searched" FAILED "command not found: 'rxprog'" -- rxprog

rx_test_end
