#!/usr/bin/env bash
# check_system.sh BUILD_DIR - rxjobd --system: one daemon for every user, each task run as its
# submitter, each job visible to its owner and root only (docs/rxjobd.8 "SYSTEM MODE").
#
# Needs root: it creates two real users (useradd), rxtest_a (with the supplementary group
# rxtest_g) and rxtest_b, reuses them if a run before left them, and removes them at exit. It
# starts `rxjobd --system --foreground` on a temporary socket and state directory, and runs the
# rxjob CLI and curl as each user (setpriv --reuid/--regid/--init-groups). It checks:
#   - the socket is 0666, the state directory and its spool/ 0711, a job's directory its owner's;
#   - A's task runs with A's uid, gid and supplementary groups exactly (from the group database,
#     not from the client, which is run without its groups), with A's HOME, USER, LOGNAME and
#     SHELL and nothing of the daemon's environment; an environment the job sets is kept;
#   - user B on A's jobs (a FINISHED one and a RUNNING one), through the CLI (status, wait,
#     output, results, results --keep, cancel, cleanup, cleanup --force, by id and by id with
#     leading zeros) and through raw HTTP on every endpoint of docs/protocol.md (GET, POST,
#     DELETE forms, query variants, a percent-encoded and a zero-padded id, a wrong method):
#     each answer (exit status and output, or HTTP status and body) is byte for byte the answer
#     for an unknown id, the id aside (rxjob output: exit 5, "no such job"); B's listing (CLI
#     and HTTP) holds none of A's jobs; B cannot stop the daemon; a cwd B cannot reach is
#     refused as a missing one (no probing of root's directories); B holding 1100 idle
#     connections locks out neither A nor root (B's own past 64 are refused with 503);
#   - after all that A's jobs are unaffected: the FINISHED one still FINISHED with its results,
#     the RUNNING one still RUNNING until A cancels it;
#   - root sees both users' jobs;
#   - A's task cannot write into B's home, the state directory or the spool; a symlink a task
#     puts in place of its result or output file is not followed by the daemon; a fake pid file
#     naming B's process group, left by a task whose supervisor vanished, does not make the
#     daemon kill B's processes; subdirectories a task made in its job directory are removed with
#     the job, but root's files in a directory A's task moved into its job directory are not
#     (the removal runs as A);
#   - a uid with no passwd entry gets its task failed ("no user with uid ..."), never run as root;
#   - rxjobd --system as a user exits 2 saying it needs root; with a task supervisor other users
#     cannot execute exits 1 saying so; with --executor slurm exits 2; with a
#     state directory other users cannot reach exits 1 saying so;
#   - the client never starts a daemon for a socket under /run/rxjob;
#   - after kill -9 of the daemon mid-job, the next one adopts A's running task and runs the
#     rest as A;
#   - function tasks in chunks run as A and come back whole (bench_rxapi w4fn);
#   - socket activation as systemd does it (fd 3, LISTEN_PID, LISTEN_FDS): served, the socket
#     file left in place at exit, no LISTEN_* in a task's environment;
#   - contrib/systemd/rxjobd.{socket,service} pass systemd-analyze verify (if installed).
# Ends with "check_system: N passed, M failed"; exits non-zero if M > 0.
set -uo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"
rx_test_init check_system "${1:-}"
if [ "$(id -u)" != 0 ]; then
    rx_test_skip "needs root to create users and run rxjobd --system"
fi
for tool in useradd userdel groupadd groupdel setpriv curl; do
    command -v "$tool" >/dev/null || rx_test_skip "$tool is missing"
done

chmod 0755 "$tmp" # the users reach the socket through it
# The socket in a directory that does not exist yet, as /run/rxjob on a fresh host: rxjobd
# makes it 0755 whatever its own umask.
sock=$tmp/run/rxjob/rxjobd.sock
b_sleep=""

# After the daemon (lib.sh stops daemon_pid): B's sleeper, whatever the users still run (a
# task's leftovers), then the users.
rx_test_on_exit() {
    [ -n "$b_sleep" ] && kill -KILL "$b_sleep" 2>/dev/null
    pkill -KILL -u rxtest_a 2>/dev/null
    pkill -KILL -u rxtest_b 2>/dev/null
    sleep 0.2
    userdel -r rxtest_a >/dev/null 2>&1
    userdel -r rxtest_b >/dev/null 2>&1
    groupdel rxtest_g >/dev/null 2>&1
}

# The users (idempotent: a run killed before its trap left them).
getent group rxtest_g >/dev/null || groupadd rxtest_g
id rxtest_a >/dev/null 2>&1 || useradd -m -s /bin/sh -G rxtest_g rxtest_a
id rxtest_b >/dev/null 2>&1 || useradd -m -s /bin/bash rxtest_b
chmod 0755 /home/rxtest_a /home/rxtest_b

# as USER CMD...: run CMD as USER with USER's groups and a bare environment.
as() {
    local user=$1
    shift
    setpriv --reuid="$user" --regid="$user" --init-groups env -i PATH=/usr/bin:/bin LC_ALL=C "$@"
}
# rx USER ARGS...: the rxjob CLI as USER on the system daemon.
rx() {
    local user=$1
    shift
    as "$user" "$build/rxjob" --url "unix:$sock" "$@"
}

# --------------------------------------------------------------------------------------------
# Refusals at start
as rxtest_a "$build/rxjobd" --system --foreground --socket "$tmp/u.sock" \
    --state-dir "$tmp/ustate" >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ "$rc" = 2 ] && grep -q "needs root" "$tmp/err" && [ ! -e "$tmp/u.sock" ]; then
    ok "rxjobd --system as a user exits 2: $(cat "$tmp/err")"
else
    fail "rxjobd --system as a user: exit $rc: $(cat "$tmp/err")"
fi
"$build/rxjobd" --system --executor slurm --foreground --socket "$tmp/s.sock" \
    --state-dir "$tmp/sstate" >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ "$rc" = 2 ] && grep -q "needs --executor local" "$tmp/err"; then
    ok "rxjobd --system --executor slurm exits 2: $(cat "$tmp/err")"
else
    fail "rxjobd --system --executor slurm: exit $rc: $(cat "$tmp/err")"
fi
mkdir -m 0700 "$tmp/closed"
"$build/rxjobd" --system --foreground --socket "$tmp/c.sock" --state-dir "$tmp/closed/state" \
    >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ "$rc" = 1 ] && grep -q "not searchable by other users" "$tmp/err"; then
    ok "a state directory other users cannot reach is refused: $(cat "$tmp/err")"
else
    fail "state directory under a 0700 directory: exit $rc: $(cat "$tmp/err")"
fi

# A task supervisor the users may not execute: refused at start, not task by task.
mkdir -m 0755 "$tmp/noexec"
cp "$build/rxjobd" "$build/rxjob-shim" "$tmp/noexec/"
chmod 0744 "$tmp/noexec/rxjob-shim"
timeout 20 "$tmp/noexec/rxjobd" --system --foreground --socket "$tmp/n.sock" --state-dir "$tmp/nstate" \
    >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ "$rc" = 1 ] && grep -q "not executable by other users" "$tmp/err"; then
    ok "a task supervisor users cannot execute is refused at start: $(cat "$tmp/err")"
else
    fail "supervisor of mode 0744: exit $rc: $(cat "$tmp/err")"
fi
rm -rf "$tmp/noexec" "$tmp/nstate"

# --------------------------------------------------------------------------------------------
# The daemon, with a variable in its environment that no task may see.
RXJOBD_ENV_MARKER=daemon-only "$build/rxjobd" --system --foreground --socket "$sock" \
    --state-dir "$state" --grace-ms 200 >"$tmp/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
if [ ! -S "$sock" ]; then
    fail "the daemon did not start: $(cat "$tmp/daemon.log")"
    rx_test_end
    exit 1
fi
modes="$(stat -c %a "$(dirname "$sock")") $(stat -c %a "$sock") $(stat -c %a "$state") $(stat -c %a "$state/spool") $(stat -c %a "$state/jobs.db")"
if [ "$modes" = "755 666 711 711 600" ]; then
    ok "socket directory (made by rxjobd) 0755, socket 0666, state directory and spool 0711, jobs.db 0600"
else
    fail "modes of socket, state, spool, jobs.db: $modes"
fi

# --------------------------------------------------------------------------------------------
# A's job: its identity. The client runs without its supplementary groups: the task gets them
# from the group database, as login, sudo and Slurm do.
a_uid=$(id -u rxtest_a)
a_gid=$(id -g rxtest_a)
a_groups=$(id -G rxtest_a | tr ' ' '\n' | sort -n | tr '\n' ' ')
ida=$(setpriv --reuid=rxtest_a --regid=rxtest_a --clear-groups env -i PATH=/usr/bin:/bin \
    "$build/rxjob" --url "unix:$sock" exec -- sh -c \
    'echo "uid $(id -u) $(id -ru) gid $(id -g) $(id -rg)"; echo "groups $(id -G | tr " " "\n" | sort -n | tr "\n" " ")";
     env | sort; printf hello > "$RXJOB_RESULT"; stat -c "dir %U %a" "$(dirname "$RXJOB_RESULT")"')
rx rxtest_a wait "$ida" >/dev/null
rx rxtest_a output "$ida" >"$tmp/a.out"
if grep -qx "uid $a_uid $a_uid gid $a_gid $a_gid" "$tmp/a.out" &&
    grep -qx "groups $a_groups" "$tmp/a.out"; then
    ok "A's task runs as uid $a_uid, gid $a_gid, groups $a_groups"
else
    fail "A's task identity (want uid $a_uid gid $a_gid groups $a_groups): $(cat "$tmp/a.out")"
fi
if grep -qx "HOME=/home/rxtest_a" "$tmp/a.out" && grep -qx "USER=rxtest_a" "$tmp/a.out" &&
    grep -qx "LOGNAME=rxtest_a" "$tmp/a.out" && grep -qx "SHELL=/bin/sh" "$tmp/a.out" &&
    ! grep -q "RXJOBD_" "$tmp/a.out" && grep -qx "dir rxtest_a 700" "$tmp/a.out"; then
    ok "A's task has A's HOME, USER, LOGNAME, SHELL, nothing of the daemon's, its own 0700 job directory"
else
    fail "A's task environment: $(cat "$tmp/a.out")"
fi
idenv=$(as rxtest_a env HOME=/custom/home "$build/rxjob" --url "unix:$sock" exec -- \
    sh -c 'echo "home $HOME user $USER"')
rx rxtest_a wait "$idenv" >/dev/null
if rx rxtest_a output "$idenv" | grep -qx "home /custom/home user rxtest_a"; then
    ok "a HOME the job sets is kept; USER is filled in"
else
    fail "job environment: $(rx rxtest_a output "$idenv")"
fi

# A job without PATH: its task gets login's default PATH for users, nothing of the daemon's.
idp=$(setpriv --reuid=rxtest_a --regid=rxtest_a --init-groups env -i "$build/rxjob" \
    --url "unix:$sock" exec -- /bin/sh -c 'echo "path $PATH"; env | grep -c "^RXJOBD_" || true')
rx rxtest_a wait "$idp" >/dev/null
if [ "$(rx rxtest_a output "$idp" | tr '\n' ' ')" = "==> task 0 <== path /usr/local/bin:/usr/bin:/bin 0 " ]; then
    ok "a job without PATH gets /usr/local/bin:/usr/bin:/bin"
else
    fail "job without PATH: $(rx rxtest_a output "$idp")"
fi

# A's running job, and B's own job.
idrun=$(rx rxtest_a exec -- sleep 300)
idb=$(rx rxtest_b exec -- sh -c 'id -u')
rx rxtest_b wait "$idb" >/dev/null
for _ in $(seq 100); do
    [ "$(rx rxtest_a status "$idrun")" = RUNNING ] && break
    sleep 0.1
done
if [ "$(rx rxtest_a status "$ida")" = FINISHED ] && [ "$(rx rxtest_a status "$idrun")" = RUNNING ]; then
    ok "A's jobs $ida FINISHED and $idrun RUNNING"
else
    fail "A's jobs: $(rx rxtest_a status "$ida") $(rx rxtest_a status "$idrun")"
fi

# Root sees both users' jobs.
"$build/rxjob" --url "unix:$sock" jobs >"$tmp/root.jobs" 2>&1
if grep -q "^$ida " "$tmp/root.jobs" && grep -q "^$idb " "$tmp/root.jobs" &&
    [ "$("$build/rxjob" --url "unix:$sock" status "$ida")" = FINISHED ]; then
    ok "root sees A's and B's jobs"
else
    fail "root's listing: $(cat "$tmp/root.jobs")"
fi

# --------------------------------------------------------------------------------------------
# B on A's jobs: exactly what an unknown id gets. unknown ids are far above every real one.
unknown_for() { echo $((900000 + $1)); }

# norm FILE ID: the file with the job id ID (in any of the forms used: 17, 00017, %317, where it
# follows "jobs/", "job ", a space, a colon or a parenthesis) replaced by "ID".
norm() {
    sed -E -e "s/(jobs\/|job |[ :(]|^)(0*$2|%3${2:0:1}${2:1})([^0-9]|$)/\1ID\3/g" "$1"
}

# cli_same DESC ARGS...: B runs `rxjob ARGS` with @ID@ replaced by A's job id and by an unknown
# one (in the same form); exit status, stdout and stderr must agree, the id aside.
cli_same() {
    local desc=$1 id=$2 form=$3
    shift 3
    local unk
    unk=$(unknown_for "$id")
    local args_a=() args_u=() a
    for a in "$@"; do
        args_a+=("${a//@ID@/$(printf "$form" "$id")}")
        args_u+=("${a//@ID@/$(printf "$form" "$unk")}")
    done
    rx rxtest_b "${args_a[@]}" >"$tmp/a1" 2>"$tmp/a2"
    local rca=$?
    rx rxtest_b "${args_u[@]}" >"$tmp/u1" 2>"$tmp/u2"
    local rcu=$?
    if [ "$rca" = "$rcu" ] && [ "$(norm "$tmp/a1" "$id")" = "$(norm "$tmp/u1" "$unk")" ] &&
        [ "$(norm "$tmp/a2" "$id")" = "$(norm "$tmp/u2" "$unk")" ]; then
        ok "B: rxjob ${args_a[*]}: as unknown (exit $rca: $(head -c 100 "$tmp/a2"))"
    else
        fail "B: rxjob ${args_a[*]}: exit $rca, out '$(cat "$tmp/a1")' err '$(cat "$tmp/a2")'; unknown: exit $rcu, out '$(cat "$tmp/u1")' err '$(cat "$tmp/u2")'"
    fi
}

# bcurl METHOD PATH FILE: B's raw request; the body goes to FILE (written by this shell, as
# root), the HTTP status is printed.
bcurl() {
    as rxtest_b curl -s --max-time 20 --unix-socket "$sock" -X "$1" -w '%{stderr}%{http_code}' \
        "http://localhost$2" 2>&1 >"$3"
}

# http_same METHOD PATH(with @ID@) ID FORM: B's raw request on A's job and on an unknown one.
http_same() {
    local method=$1 path=$2 id=$3 form=$4
    local unk
    unk=$(unknown_for "$id")
    local pa=${path//@ID@/$(printf "$form" "$id")} pu=${path//@ID@/$(printf "$form" "$unk")}
    local ca cu
    ca=$(bcurl "$method" "$pa" "$tmp/h1")
    cu=$(bcurl "$method" "$pu" "$tmp/h2")
    if [ "$ca" = "$cu" ] && [ "$(norm "$tmp/h1" "$id")" = "$(norm "$tmp/h2" "$unk")" ]; then
        ok "B: $method $pa: as unknown ($ca $(head -c 100 "$tmp/h1"))"
    else
        fail "B: $method $pa: $ca '$(cat "$tmp/h1")'; unknown $pu: $cu '$(cat "$tmp/h2")'"
    fi
}

for id in "$ida" "$idrun"; do
    for form in '%d' '000%d'; do
        cli_same "" "$id" "$form" status @ID@
        cli_same "" "$id" "$form" wait --timeout 1 @ID@
        cli_same "" "$id" "$form" output @ID@
        cli_same "" "$id" "$form" results --keep @ID@
        cli_same "" "$id" "$form" results @ID@
        cli_same "" "$id" "$form" cancel @ID@
        cli_same "" "$id" "$form" cleanup @ID@
        cli_same "" "$id" "$form" cleanup --force @ID@
        cli_same "" "$id" "$form" --json status @ID@
    done
    # pct: the id's first digit percent-encoded (3 -> %33): the same path, encoded.
    for form in '%d' '000%d' 'pct'; do
        for req in "GET /v1/jobs/@ID@" "GET /v1/jobs/@ID@/wait?timeout_s=0" \
            "GET /v1/jobs/@ID@/wait" "GET /v1/jobs/@ID@/output" \
            "GET /v1/jobs/@ID@/output?follow=0" "GET /v1/jobs/@ID@/output?follow=1" \
            "GET /v1/jobs/@ID@/results" "GET /v1/jobs/@ID@/results?auto_cleanup=0" \
            "GET /v1/jobs/@ID@/results?auto_cleanup=1" "POST /v1/jobs/@ID@/cancel" \
            "DELETE /v1/jobs/@ID@" "DELETE /v1/jobs/@ID@?force=0" \
            "DELETE /v1/jobs/@ID@?force=1" "PUT /v1/jobs/@ID@" "POST /v1/jobs/@ID@" \
            "GET /v1/jobs/@ID@/cancel" "GET /v1/jobs/@ID@/" "GET /v1/jobs/@ID@/nothing"; do
            if [ "$form" = pct ]; then
                # The encoded form of each id, built apart (printf cannot encode a digit).
                pa=${req#* }
                pa=${pa//@ID@/%3${id:0:1}${id:1}}
                unk=$(unknown_for "$id")
                pu=${req#* }
                pu=${pu//@ID@/%3${unk:0:1}${unk:1}}
                ca=$(bcurl "${req%% *}" "$pa" "$tmp/h1")
                cu=$(bcurl "${req%% *}" "$pu" "$tmp/h2")
                if [ "$ca" = "$cu" ] && [ "$(norm "$tmp/h1" "$id")" = "$(norm "$tmp/h2" "$unk")" ]; then
                    ok "B: ${req%% *} $pa: as unknown ($ca $(head -c 100 "$tmp/h1"))"
                else
                    fail "B: ${req%% *} $pa: $ca '$(cat "$tmp/h1")'; unknown: $cu '$(cat "$tmp/h2")'"
                fi
            else
                http_same "${req%% *}" "${req#* }" "$id" "$form"
            fi
        done
    done
done

# The answer the comparisons above found equal, for output: an unknown id's, which is exit 5 and
# one line "no such job" on stderr (rx_get_job_output gives an empty output; the CLI asks the
# status), and nothing on stdout, for the FINISHED job and the RUNNING one alike.
for id in "$ida" "$idrun"; do
    rx rxtest_b output "$id" >"$tmp/bo.out" 2>"$tmp/bo.err"
    rc=$?
    if [ "$rc" = 5 ] && [ ! -s "$tmp/bo.out" ] && [ "$(wc -l <"$tmp/bo.err")" = 1 ] &&
        grep -q "^rxjob: output $id: no such job: .*(UNDETERMINED)$" "$tmp/bo.err"; then
        ok "B: rxjob output $id: exit 5, no such job"
    else
        fail "B: rxjob output $id: exit $rc, out '$(head -c 100 "$tmp/bo.out")' err '$(cat "$tmp/bo.err")'"
    fi
done

# Listings: B sees its own job and none of A's.
rx rxtest_b jobs >"$tmp/b.jobs" 2>&1
as rxtest_b curl -s --unix-socket "$sock" "http://localhost/v1/jobs" >"$tmp/b.http"
as rxtest_b curl -s --unix-socket "$sock" "http://localhost/v1/jobs?state=RUNNING,FINISHED,QUEUED" \
    >"$tmp/b.http2"
if grep -q "^$idb " "$tmp/b.jobs" && ! grep -qE "^($ida|$idrun|$idenv) " "$tmp/b.jobs" &&
    grep -q "\"id\": *$idb[,}]" "$tmp/b.http" &&
    ! grep -qE "\"id\": *($ida|$idrun|$idenv)[,}]" "$tmp/b.http" "$tmp/b.http2"; then
    ok "B's listings (CLI and HTTP, with a state filter) hold B's job and none of A's"
else
    fail "B's listings: $(cat "$tmp/b.jobs") / $(cat "$tmp/b.http") / $(cat "$tmp/b.http2")"
fi

# B cannot stop the daemon.
code=$(bcurl POST /v1/daemon/stop "$tmp/h1")
sleep 0.3
if [ "$code" = 403 ] && kill -0 "$daemon_pid" 2>/dev/null; then
    ok "B cannot stop the daemon (403)"
else
    fail "B's POST /v1/daemon/stop: $code $(cat "$tmp/h1")"
fi

# A cwd is checked with B's rights: a directory B cannot reach (under a 0700 one of root's) is
# refused just as one that does not exist, so submitting tells B nothing of what is there.
mkdir -p -m 0700 "$tmp/rootonly"
mkdir -p "$tmp/rootonly/exists"
for d in exists absent; do
    as rxtest_b curl -s --max-time 20 --unix-socket "$sock" -H 'Content-Type: application/json' \
        -d '{"work":{"kind":"command","argv_b64":["'"$(printf true | base64)"'"],"cwd_b64":"'"$(printf '%s' "$tmp/rootonly/$d" | base64 -w0)"'"}}' \
        -w ' %{http_code}' http://localhost/v1/jobs >"$tmp/cwd_$d" 2>&1
done
if grep -q ' 400$' "$tmp/cwd_exists" &&
    [ "$(sed "s/exists/X/g" "$tmp/cwd_exists")" = "$(sed "s/absent/X/g" "$tmp/cwd_absent")" ]; then
    ok "a cwd B cannot reach is refused as one that does not exist: $(cat "$tmp/cwd_exists")"
else
    fail "cwd probe: existing: $(cat "$tmp/cwd_exists"); absent: $(cat "$tmp/cwd_absent")"
fi

# A user who stops the daemon's helper removing their job's directory as them (SIGSTOP: it is
# theirs) delays no one else's tasks: the removal runs on the remover thread, not the scheduler's
# (which waited up to 30 s for it). The directory is big, so the helper lives long enough to stop.
idbig=$(rx rxtest_a exec -- sh -c 'd=$(dirname "$RXJOB_RESULT")/many; mkdir "$d" && cd "$d" && seq 1 60000 | xargs touch && echo made; exec sleep 600')
for _ in $(seq 600); do grep -q made "$state/spool/$idbig/t0.out" 2>/dev/null && break; sleep 0.1; done
mkdir -m 0777 "$tmp/stopper"
as rxtest_a sh -c 'while [ ! -e "$1/end" ]; do
    for p in $(pgrep -u rxtest_a -P "$2" -x rxjobd); do kill -STOP "$p" && echo "$p" >>"$1/stopped"; done
done' stopper "$tmp/stopper" "$daemon_pid" &
stopper_pid=$!
rx rxtest_a cancel "$idbig" >/dev/null 2>&1
for _ in $(seq 300); do [ -s "$tmp/stopper/stopped" ] && break; sleep 0.05; done
t0=$(date +%s.%N)
idq=$(rx rxtest_b exec -- true 2>"$tmp/q.err")
as rxtest_b timeout 60 "$build/rxjob" --url "unix:$sock" wait "$idq" >/dev/null 2>&1
t1=$(date +%s.%N)
took=$(echo "$t1 - $t0" | bc)
qstate=$(rx rxtest_b status "$idq")
touch "$tmp/stopper/end"
wait "$stopper_pid" 2>/dev/null
for p in $(cat "$tmp/stopper/stopped" 2>/dev/null); do kill -CONT "$p" 2>/dev/null; done
if [ -s "$tmp/stopper/stopped" ] && [ "$qstate" = FINISHED ] && [ "$(echo "$took < 10" | bc)" = 1 ]; then
    ok "a stopped as-user removal helper of A does not delay B's task (B's job done in ${took}s)"
else
    fail "B's job behind A's stopped removal helper: $qstate in ${took}s, stopped: $(cat "$tmp/stopper/stopped" 2>&1), exec: $(cat "$tmp/q.err")"
fi

# B cannot lock the others out by holding connections open: 1100 idle ones (the daemon takes
# 1024 at most), sending nothing.
: >"$tmp/held"
chown rxtest_b "$tmp/held"
as rxtest_b python3 -c '
import resource, socket, sys, time
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
held = []
for _ in range(1100):
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(sys.argv[1])
    except OSError:
        break
    held.append(s)
open(sys.argv[2], "w").write("%d" % len(held))
time.sleep(60)
' "$sock" "$tmp/held" &
flood=$!
for _ in $(seq 100); do [ -s "$tmp/held" ] && break; sleep 0.1; done
sleep 1
# (A few tries: the daemon refuses B's extra connections one by one, and until it has, its
# listen queue may be full; without a per-user cap A stays locked out for the whole minute.)
a_ok=0
root_ok=0
for _ in $(seq 10); do
    [ "$a_ok" = 1 ] || { rx rxtest_a jobs >/dev/null 2>"$tmp/flood.err" && a_ok=1; }
    [ "$root_ok" = 1 ] ||
        { "$build/rxjob" --url "unix:$sock" jobs >/dev/null 2>>"$tmp/flood.err" && root_ok=1; }
    [ "$a_ok$root_ok" = 11 ] && break
    sleep 1
done
for _ in $(seq 10); do
    rx rxtest_b jobs >/dev/null 2>"$tmp/flood_b.err"
    b_rc=$?
    grep -q "connections" "$tmp/flood_b.err" && break
    sleep 1
done
# $flood is the subshell running `as`; the python holding the connections is its child.
pkill -KILL -P "$flood" 2>/dev/null
kill -KILL "$flood" 2>/dev/null
wait "$flood" 2>/dev/null
if [ "$a_ok" = 1 ] && [ "$root_ok" = 1 ] && [ "$b_rc" != 0 ] && grep -q "connections" "$tmp/flood_b.err"; then
    ok "B's idle connections ($(cat "$tmp/held")) lock out neither A nor root; B's next one is refused: $(head -c 160 "$tmp/flood_b.err")"
else
    fail "B holding $(cat "$tmp/held" 2>/dev/null) connections: A ok $a_ok, root ok $root_ok, B rc $b_rc: $(head -c 300 "$tmp/flood.err") / $(head -c 200 "$tmp/flood_b.err")"
fi
# Once B's connections are closed, B is served again at once (its count goes down with them).
b_back=0
for _ in $(seq 50); do
    rx rxtest_b jobs >/dev/null 2>&1 && { b_back=1; break; }
    sleep 0.1
done
[ "$b_back" = 1 ] && ok "B is served again within 5 s of closing its connections" ||
    fail "B still refused 5 s after its connections closed"

# A's jobs are unaffected.
if [ "$(rx rxtest_a status "$idrun")" = RUNNING ] && [ "$(rx rxtest_a status "$ida")" = FINISHED ] &&
    [ "$(rx rxtest_a results "$ida")" = hello ]; then
    ok "after B's attempts A's job $ida is FINISHED with its result and $idrun still RUNNING"
else
    fail "A's jobs after B: $(rx rxtest_a status "$ida") $(rx rxtest_a status "$idrun")"
fi
rx rxtest_a cancel "$idrun" >/dev/null 2>&1
for _ in $(seq 100); do
    [ "$(rx rxtest_a status "$idrun")" = CANCELED ] && break
    sleep 0.1
done
if [ "$(rx rxtest_a status "$idrun")" = CANCELED ]; then
    ok "A cancels its running job"
else
    fail "A's cancel: $(rx rxtest_a status "$idrun")"
fi

# --------------------------------------------------------------------------------------------
# What a task of A cannot do.
idw=$(rx rxtest_a exec -- sh -c "for f in /home/rxtest_b/pwned $state/pwned $state/spool/pwned; do
    if touch \"\$f\" 2>/dev/null; then echo \"WROTE \$f\"; else echo \"refused \$f\"; fi; done")
rx rxtest_a wait "$idw" >/dev/null
rx rxtest_a output "$idw" >"$tmp/w.out"
if [ "$(grep -c '^refused' "$tmp/w.out")" = 3 ] && [ ! -e /home/rxtest_b/pwned ] &&
    [ ! -e "$state/pwned" ] && [ ! -e "$state/spool/pwned" ]; then
    ok "A's task cannot write into B's home, the state directory or the spool"
else
    fail "A's task writes: $(cat "$tmp/w.out")"
fi

# Symlinks in place of the result and of the output file.
ids=$(rx rxtest_a exec -- sh -c 'ln -s /etc/shadow "$RXJOB_RESULT"')
ido=$(rx rxtest_a exec -- sh -c 'echo before; ln -sf /etc/shadow "$(dirname "$RXJOB_RESULT")/t0.out"')
rx rxtest_a wait "$ids" >/dev/null
rx rxtest_a wait "$ido" >/dev/null
rx rxtest_a results "$ids" >"$tmp/s.out" 2>&1
rx rxtest_a output "$ido" >"$tmp/o.out" 2>&1
if ! grep -q "^root:" "$tmp/s.out" "$tmp/o.out" && grep -q "not a regular file" "$tmp/s.out"; then
    ok "symlinks a task puts in place of its result and output are not followed: $(head -c 120 "$tmp/s.out" | tr '\n' ' ')"
else
    fail "symlinked result/output: $(cat "$tmp/s.out") / $(cat "$tmp/o.out")"
fi

# A task writes a pid file naming B's process group (older daemons read t<i>.pid) and kills its
# own supervisor: the daemon finds the supervisor gone without an exit record and kills what is
# left of its session, as A only; nothing the task wrote names whom.
setpriv --reuid=rxtest_b --regid=rxtest_b --init-groups setsid sleep 300 </dev/null >/dev/null 2>&1 &
b_sleep=$!
sleep 0.3
b_pgrp=$(awk '{print $5}' "/proc/$b_sleep/stat" 2>/dev/null)
b_start=$(awk '{print $22}' "/proc/$b_sleep/stat" 2>/dev/null)
if [ "$b_pgrp" != "$b_sleep" ]; then
    fail "B's sleep is not a group leader ($b_pgrp vs $b_sleep)"
fi
idk=$(rx rxtest_a exec -- sh -c "sleep 1; printf '%s %s\n' $b_sleep $b_start > \"\$(dirname \"\$RXJOB_RESULT\")/t0.pid\"; kill -KILL \$PPID; sleep 1")
for _ in $(seq 150); do
    st=$(rx rxtest_a status "$idk")
    [ "$st" = FAILED ] && break
    sleep 0.1
done
sleep 0.5
b_state=$(awk '{print $3}' "/proc/$b_sleep/stat" 2>/dev/null)
rx rxtest_a results "$idk" >"$tmp/k.out" 2>&1
if [ "$st" = FAILED ] && [ "$b_state" = S ] && grep -q "lost" "$tmp/k.out"; then
    ok "a pid file naming B's process group does not make the daemon kill it (task: $(head -c 90 "$tmp/k.out" | tr '\n' ' '))"
else
    fail "fake pid file: job $st, B's sleep state '$b_state', results: $(cat "$tmp/k.out")"
fi
kill -KILL "$b_sleep" 2>/dev/null
b_sleep=""

# A's task leaves a child in its supervisor's session and kills its supervisor: the daemon finds
# the supervisor gone without a record and kills the child (A's process, signalled by the root
# daemon only because A could have: real or saved uid A), in its own thread.
: >"$tmp/orphan.pid"
chown rxtest_a "$tmp/orphan.pid"
ido=$(rx rxtest_a exec -- sh -c "sleep 300 & echo \$! > '$tmp/orphan.pid'; sleep 0.5; kill -KILL \$PPID; sleep 1")
for _ in $(seq 150); do
    st=$(rx rxtest_a status "$ido")
    [ "$st" = FAILED ] && break
    sleep 0.1
done
o_pid=$(cat "$tmp/orphan.pid" 2>/dev/null)
o_state=gone
for _ in $(seq 40); do
    o_state=$(awk '{print $3}' "/proc/$o_pid/stat" 2>/dev/null || echo gone)
    case $o_state in Z | gone) break ;; esac
    sleep 0.05
done
if [ "$st" = FAILED ] && [ -n "$o_pid" ] && { [ "$o_state" = Z ] || [ "$o_state" = gone ]; }; then
    ok "the orphan ($o_pid) of A's vanished supervisor is killed (job $st)"
else
    fail "orphan of A's vanished supervisor: job $st, its child $o_pid state '$o_state'"
    [ -n "$o_pid" ] && kill -KILL "$o_pid" 2>/dev/null
fi

# Subdirectories a task made go with its job.
idd=$(rx rxtest_a exec -- sh -c 'd=$(dirname "$RXJOB_RESULT"); mkdir -p "$d/x/y/z"; touch "$d/x/y/z/f" "$d/x/g"; chmod 0500 "$d/x/y/z" "$d/x/y"')
rx rxtest_a wait "$idd" >/dev/null
[ -d "$state/spool/$idd/x/y/z" ] && had_dirs=1 || had_dirs=0
rx rxtest_a results "$idd" >/dev/null 2>&1
# Renamed to $idd.gone at once, removed by the remover thread soon after.
for _ in $(seq 100); do [ -e "$state/spool/$idd" ] || [ -e "$state/spool/$idd.gone" ] || break; sleep 0.1; done
if [ "$had_dirs" = 1 ] && [ ! -e "$state/spool/$idd" ] && [ ! -e "$state/spool/$idd.gone" ]; then
    ok "a job directory with a task's subdirectories is removed with the job"
else
    fail "job directory of $idd: had dirs $had_dirs, left: $(ls -R "$state/spool/$idd" 2>&1 | head -5)"
fi

# A directory of A's holding root's files, moved by A's task into its job directory: removing
# the job removes what A could remove, never root's files (the removal runs as A).
mkdir -m 0755 "$tmp/apub" "$tmp/apub/P" "$tmp/apub/P/X"
chown rxtest_a "$tmp/apub" "$tmp/apub/P"
echo root-only >"$tmp/apub/P/X/rootfile"
idm=$(rx rxtest_a exec -- sh -c 'mv "$0/P" "$(dirname "$RXJOB_RESULT")/P"' "$tmp/apub")
rx rxtest_a wait "$idm" >/dev/null
[ -e "$state/spool/$idm/P/X/rootfile" ] && moved=1 || moved=0
rx rxtest_a results "$idm" >/dev/null 2>&1
# What A could not remove stays in the renamed directory ($idm.gone), which the next start retries.
for _ in $(seq 100); do [ -e "$state/spool/$idm.gone/t0.exit" ] || [ -e "$state/spool/$idm/t0.exit" ] || break; sleep 0.1; done
sleep 0.5
if [ "$moved" = 1 ] && [ -e "$state/spool/$idm.gone/P/X/rootfile" ] && [ ! -e "$state/spool/$idm.gone/t0.exit" ] &&
    [ ! -e "$state/spool/$idm" ]; then
    ok "removing a job does not delete root's files a task moved into its directory"
else
    fail "root's file moved into job $idm: moved $moved, left: $(ls -R "$state/spool/$idm" "$state/spool/$idm.gone" 2>&1 | head -8)"
fi
rm -rf "${state:?}/spool/$idm" "${state:?}/spool/$idm.gone" "$tmp/apub"

# A uid with no passwd entry: its task fails, and nothing runs as root.
idn=$(setpriv --reuid=54321 --regid=54321 --clear-groups env -i PATH=/usr/bin:/bin \
    "$build/rxjob" --url "unix:$sock" exec -- touch "$tmp/made-by-nobody")
setpriv --reuid=54321 --regid=54321 --clear-groups "$build/rxjob" --url "unix:$sock" \
    wait "$idn" >/dev/null 2>&1
setpriv --reuid=54321 --regid=54321 --clear-groups "$build/rxjob" --url "unix:$sock" \
    results "$idn" >"$tmp/n.out" 2>&1
if [ ! -e "$tmp/made-by-nobody" ] && grep -q "no user with uid 54321" "$tmp/n.out"; then
    ok "a uid with no passwd entry gets its task failed: $(grep -o 'no user with uid 54321[^;]*' "$tmp/n.out" | head -1)"
else
    fail "uid without passwd entry: $(cat "$tmp/n.out"); file: $(ls "$tmp/made-by-nobody" 2>&1)"
fi

# --------------------------------------------------------------------------------------------
# The client never starts a daemon for the system socket.
if [ ! -e /run/rxjob ]; then
        RXJOB_SOCKET=/run/rxjob/rxjobd.sock "$build/rxjob" jobs >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ "$rc" = 3 ] && [ ! -e /run/rxjob ] && grep -q "root's to start: 'rxjobd --system'" "$tmp/err"; then
        ok "no daemon is started for \$RXJOB_SOCKET=/run/rxjob/rxjobd.sock, and root's is named (exit 3: $(head -c 300 "$tmp/err"))"
    else
        fail "RXJOB_SOCKET=/run/rxjob/rxjobd.sock: exit $rc, $(cat "$tmp/err"); /run/rxjob: $(ls -la /run/rxjob 2>&1)"
        [ -e /run/rxjob/rxjobd.sock ] && "$build/rxjob" --url unix:/run/rxjob/rxjobd.sock daemon stop
        rm -rf /run/rxjob
    fi
    as rxtest_a "$build/rxjob" --system jobs >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ "$rc" = 3 ] && grep -q "/run/rxjob/rxjobd.sock" "$tmp/err" && [ ! -e /run/rxjob ]; then
        ok "rxjob --system names /run/rxjob/rxjobd.sock and starts nothing (exit 3)"
    else
        fail "rxjob --system: exit $rc, $(cat "$tmp/err")"
    fi
else
    echo "skip: /run/rxjob exists (a system daemon here?): the no-autostart check needs it absent"
fi

# The daemon stops cleanly.
kill -TERM "$daemon_pid"
for _ in $(seq 100); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
wait "$daemon_pid" 2>/dev/null
rc=$?
if [ "$rc" = 0 ] && grep -q "system mode" "$tmp/daemon.log"; then
    ok "the system daemon stops on SIGTERM (exit 0)"
else
    fail "daemon exit $rc: $(cat "$tmp/daemon.log")"
fi
daemon_pid=""

# Tasks outlive the daemon: kill -9 it while the first of three one-at-a-time tasks runs; the
# next daemon adopts that task and starts the other two, rewriting the job's files in the user's
# directory and giving them to the user again.
"$build/rxjobd" --system --foreground --socket "$sock" --state-dir "$state" \
    >>"$tmp/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 100); do [ -S "$sock" ] && rx rxtest_a jobs >/dev/null 2>&1 && break; sleep 0.05; done
idr=$(rx rxtest_a exec --times 3 --num-tasks 1 -- sh -c 'sleep 2; echo "task $RXJOB_TASK_INDEX $(id -u)"')
for _ in $(seq 100); do [ "$(rx rxtest_a status "$idr")" = RUNNING ] && break; sleep 0.1; done
kill -KILL "$daemon_pid"
wait "$daemon_pid" 2>/dev/null
"$build/rxjobd" --system --foreground --socket "$sock" --state-dir "$state" \
    >>"$tmp/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 100); do rx rxtest_a status "$idr" >/dev/null 2>&1 && break; sleep 0.05; done
rx rxtest_a wait --timeout 60 "$idr" >/dev/null 2>&1
st=$(rx rxtest_a status "$idr")
out=$(rx rxtest_a output "$idr" | grep '^task' | tr '\n' ' ')
if [ "$st" = FINISHED ] && [ "$out" = "task 0 $a_uid task 1 $a_uid task 2 $a_uid " ]; then
    ok "after kill -9 of the daemon A's job finishes as A: $out"
else
    fail "restart: job $st, output '$out'; log: $(tail -5 "$tmp/daemon.log")"
fi
# Function tasks in chunks (docs/engine.md "Chunks") run as the job's user too: A's program,
# exec'd once per chunk of 50, writes its tasks' output and results into A's job directory;
# bench_rxapi checks that every task FINISHED with its own index as its result.
if out=$(as rxtest_a "$build/bench/bench_rxapi" --url "unix:$sock" w4fn 200 50 2>&1); then
    ok "200 function tasks in chunks of 50 as A: $out"
else
    fail "function tasks in chunks as A: $out; log: $(tail -5 "$tmp/daemon.log")"
fi
kill -TERM "$daemon_pid"
wait "$daemon_pid" 2>/dev/null
daemon_pid=""

# Socket activation as systemd does it (sd_listen_fds(3)): a listening socket on fd 3,
# LISTEN_PID = the daemon's pid, LISTEN_FDS = 1. The daemon serves it and leaves its file.
asock=$tmp/act.sock
python3 -c '
import os, socket, sys
path = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path); os.chmod(path, 0o666); s.listen(64)
if s.fileno() == 3:
    os.set_inheritable(3, True)  # a socket is born close-on-exec
else:
    os.dup2(s.fileno(), 3)
os.environ["LISTEN_PID"] = str(os.getpid()); os.environ["LISTEN_FDS"] = "1"
os.execv(sys.argv[2], [sys.argv[2]] + sys.argv[3:])
' "$asock" "$build/rxjobd" --system --foreground --state-dir "$state" >"$tmp/act.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 100); do grep -q started "$tmp/act.log" 2>/dev/null && break; sleep 0.05; done
ida2=$(as rxtest_a "$build/rxjob" --url "unix:$asock" exec -- sh -c 'id -u; env | grep -c "^LISTEN_" || true')
as rxtest_a "$build/rxjob" --url "unix:$asock" wait "$ida2" >/dev/null 2>&1
out=$(as rxtest_a "$build/rxjob" --url "unix:$asock" output "$ida2" 2>&1 | tr '\n' ' ')
kill -TERM "$daemon_pid"
for _ in $(seq 100); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
wait "$daemon_pid" 2>/dev/null
rc=$?
daemon_pid=""
if grep -q "(from systemd)" "$tmp/act.log" && [ "$out" = "==> task 0 <== $a_uid 0 " ] &&
    [ "$rc" = 0 ] && [ -S "$asock" ]; then
    ok "socket activation: the daemon serves fd 3, its tasks see no LISTEN_*, the socket file stays"
else
    fail "socket activation: exit $rc, output '$out', socket $(ls -la "$asock" 2>&1), log: $(cat "$tmp/act.log")"
fi

# The units (contrib/systemd) pass systemd-analyze verify, with ExecStart at this build's rxjobd.
if command -v systemd-analyze >/dev/null; then
    src=$(cd "$(dirname "$0")/.." && pwd)
    mkdir -p "$tmp/units"
    sed "s#^ExecStart=[^ ]*#ExecStart=$build/rxjobd#" "$src/contrib/systemd/rxjobd.service" \
        >"$tmp/units/rxjobd.service"
    cp "$src/contrib/systemd/rxjobd.socket" "$tmp/units/rxjobd.socket"
    if (cd "$tmp/units" && systemd-analyze verify --man=no rxjobd.socket rxjobd.service) \
        >"$tmp/verify" 2>&1 && [ ! -s "$tmp/verify" ]; then
        ok "systemd-analyze verify: rxjobd.socket and rxjobd.service are clean"
    else
        fail "systemd-analyze verify: $(cat "$tmp/verify")"
    fi
else
    echo "skip: systemd-analyze is not installed (package systemd): units not verified"
fi

rx_test_end
